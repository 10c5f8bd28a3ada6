# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parse and validate an AWS CodeDeploy AppSpec file (EC2/on-premises, ECS, Lambda).

The YAML is *composed* (``yaml.compose``), not loaded: every check works on the node tree, so each
error carries the line and column (1-based) of the node at fault, duplicate keys are seen (a YAML
loader silently keeps the last one), and ``mode`` is read from the scalar's text (``mode: 0644``
means 0644, not the YAML 1.1 integer 420). Every error found is reported, not only the first.

Where this parser is stricter or more lenient than the CodeDeploy agent, the choice is deliberate
and listed in ``docs/appspec-reference.md``.
"""

from __future__ import annotations

import os
import posixpath
import re
import typing as t

import yaml

from ansible_collections.appspec.deploy.plugins.module_utils._errors import DeployError
from ansible_collections.appspec.deploy.plugins.module_utils._permissions import reaches
from ansible_collections.appspec.deploy.plugins.module_utils._spec import (  # noqa: F401  pylint: disable=unused-import
    COMPUTE_PLATFORMS,
    DEFAULT_FILENAMES,
    ECS_EVENTS,
    FILE_EXISTS_BEHAVIORS,
    IN_PLACE_EVENTS,
    LAMBDA_EVENTS,
    LAST_SUCCESSFUL_EVENTS,
    RESERVED_EVENTS,
    SERVER_HOOK_EVENTS,
    ParsedAppSpec,
)

PERMISSION_TYPES = ("file", "directory")
DEFAULT_TIMEOUT = 3600
DEFAULT_MAX_EVENT_TIMEOUT = 3600
MAX_APPSPEC_BYTES = 4 * 1024 * 1024
MINIMUM_APPSPEC = "the minimum AppSpec is the two lines 'version: 0.0' and 'os: linux'"

ECS_RESOURCE_TYPE = "AWS::ECS::Service"
LAMBDA_RESOURCE_TYPE = "AWS::Lambda::Function"

_SERVER_KEYS = ("version", "os", "files", "permissions", "hooks", "file_exists_behavior")
_FILE_KEYS = ("source", "destination")
_PERMISSION_KEYS = ("object", "pattern", "except", "owner", "group", "mode", "acls", "context", "type")
_SCRIPT_KEYS = ("location", "timeout", "runas", "sudo")
_CONTEXT_KEYS = ("name", "type", "range")

_TAG_NULL = "tag:yaml.org,2002:null"
_TAG_STR = "tag:yaml.org,2002:str"
_TAG_INT = "tag:yaml.org,2002:int"
_TAG_FLOAT = "tag:yaml.org,2002:float"
_TAG_BOOL = "tag:yaml.org,2002:bool"
_TAG_MERGE = "tag:yaml.org,2002:merge"
_MAX_NODES = 100000  # alias bombs ("billion laughs") stop here
# Hosts keep installed paths one per line (the cleanup list): a newline in a path would add a line of its own.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

_Pos = t.Tuple[t.Optional[int], t.Optional[int]]
_Node = t.Any  # a yaml.Node


class AppSpecError(DeployError):
    """An invalid AppSpec. ``errors`` lists every problem as ``{message, path, line, column}``."""

    def __init__(self, source: str, errors: t.List[t.Dict[str, t.Any]]) -> None:
        self.source = source
        self.errors = errors
        super().__init__(_summarize(source, errors), errors=errors)


def _summarize(source: str, errors: t.List[t.Dict[str, t.Any]]) -> str:
    parts = []
    for err in errors:
        where = []
        if err.get("line") is not None:
            where.append("line %d col %d" % (err["line"], err["column"] or 0))
        if err.get("path"):
            where.append(err["path"])
        parts.append("%s: %s" % (" ".join(where), err["message"]) if where else err["message"])
    if len(errors) == 1:
        return "%s: %s" % (source, parts[0])
    return "%s: %d errors: %s" % (source, len(errors), "; ".join(parts))


# --- Reading files -----------------------------------------------------------------------------


def appspec_candidates(appspec_filename: t.Optional[str] = None) -> t.List[str]:
    """The names tried in a revision, in order: ``appspec_filename``, ``appspec.yml``, ``appspec.yaml``."""
    candidates = []  # type: t.List[str]
    if appspec_filename:
        normalized = posixpath.normpath(appspec_filename)
        if posixpath.isabs(normalized) or normalized == ".." or normalized.startswith("../"):
            raise DeployError("appspec_filename %r must be a path inside the revision" % appspec_filename)
        candidates.append(normalized)
    candidates.extend(name for name in DEFAULT_FILENAMES if name not in candidates)
    return candidates


def find_appspec(revision_dir: str, appspec_filename: t.Optional[str] = None) -> str:
    """Return the AppSpec path in a revision directory.

    Tries ``appspec_filename`` (CodeDeploy's AppSpecFilename), then ``appspec.yml``, then
    ``appspec.yaml``.
    """
    if not os.path.isdir(revision_dir):
        raise DeployError("revision directory %s does not exist or is not a directory" % revision_dir)
    candidates = appspec_candidates(appspec_filename)
    for name in candidates:
        path = os.path.join(revision_dir, name)
        if os.path.isfile(path):
            return path
    hint = ""
    entries = [e for e in os.listdir(revision_dir) if not e.startswith(".")]
    if len(entries) == 1 and os.path.isdir(os.path.join(revision_dir, entries[0])):
        for name in candidates:
            if os.path.isfile(os.path.join(revision_dir, entries[0], name)):
                hint = " (%s/%s exists: the AppSpec must be at the root of the revision)" % (entries[0], name)
                break
    raise DeployError(
        "no AppSpec file in %s: looked for %s%s" % (revision_dir, ", ".join(candidates), hint),
        revision_dir=revision_dir,
    )


def _decode(data: bytes, source: str) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        encoding = "utf-16"
    else:
        encoding = "utf-8-sig"
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise AppSpecError(
            source,
            [_err("the file is not valid %s text (byte 0x%02x); save it as UTF-8"
                  % (encoding.replace("-sig", ""), data[exc.start]), "", line, column)],
        )


def load_appspec(
    path: str,
    *,
    appspec_filename: t.Optional[str] = None,
    strict: bool = False,
    max_event_timeout: int = DEFAULT_MAX_EVENT_TIMEOUT,
) -> ParsedAppSpec:
    """Parse the AppSpec at ``path``: a file, or a revision directory (see :func:`find_appspec`)."""
    if os.path.isdir(path):
        path = find_appspec(path, appspec_filename)
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_APPSPEC_BYTES + 1)
    except FileNotFoundError:
        raise DeployError("AppSpec file %s does not exist" % path)
    except OSError as exc:
        raise DeployError("cannot read AppSpec file %s: %s" % (path, exc.strerror or exc))
    if len(data) > MAX_APPSPEC_BYTES:
        raise DeployError("AppSpec file %s is larger than %d bytes" % (path, MAX_APPSPEC_BYTES))
    return parse_appspec_bytes(data, path, strict=strict, max_event_timeout=max_event_timeout)


def parse_appspec_bytes(data: bytes, source: str, *, strict: bool = False,
                        max_event_timeout: int = DEFAULT_MAX_EVENT_TIMEOUT) -> ParsedAppSpec:
    """Parse the raw bytes of an AppSpec file (UTF-8, UTF-16 with BOM) named ``source`` in errors."""
    return parse_appspec(_decode(data, source), source, strict=strict, max_event_timeout=max_event_timeout)


# --- Parsing -----------------------------------------------------------------------------------


def _err(message: str, path: str, line: t.Optional[int], column: t.Optional[int]) -> t.Dict[str, t.Any]:
    return {"message": message, "path": path, "line": line, "column": column}


def _pos(node: t.Optional[_Node]) -> _Pos:
    if node is None or node.start_mark is None:
        return (None, None)
    return (node.start_mark.line + 1, node.start_mark.column + 1)


def _join(path: str, key: str) -> str:
    return key if not path else "%s.%s" % (path, key)


def _describe(node: _Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return {
        _TAG_NULL: "empty (null)",
        _TAG_STR: "a string",
        _TAG_INT: "an integer",
        _TAG_FLOAT: "a number",
        _TAG_BOOL: "a boolean",
    }.get(node.tag, "a %s value" % node.tag.rsplit(":", 1)[-1])


def _is_null(node: t.Optional[_Node]) -> bool:
    return node is None or (isinstance(node, yaml.ScalarNode) and node.tag == _TAG_NULL)


class _Entry(t.NamedTuple):
    key: _Node
    value: _Node


class _Checker:
    """Walks the composed node tree, collecting errors, warnings and the normalized value."""

    def __init__(self, source: str, strict: bool, max_event_timeout: int) -> None:
        self.source = source
        self.strict = strict
        self.max_event_timeout = max_event_timeout
        self.errors = []  # type: t.List[t.Dict[str, t.Any]]
        self.warnings = []  # type: t.List[str]
        self._constructor = yaml.SafeLoader("")
        self._visited = 0

    # reporting
    def error(self, path: str, node: t.Optional[_Node], message: str) -> None:
        line, column = _pos(node)
        self.errors.append(_err(message, path, line, column))

    def warn(self, path: str, node: t.Optional[_Node], message: str) -> None:
        """A warning; with ``strict`` every warning is an error."""
        if self.strict:
            self.error(path, node, message + " (an error in strict mode)")
            return
        line, _column = _pos(node)
        where = " ".join(p for p in (path, "(line %d)" % line if line else "") if p)
        self.warnings.append("%s: %s" % (where, message) if where else message)

    # node helpers
    def scalar(self, node: _Node) -> t.Any:
        return self._constructor.construct_object(node, deep=True)

    def mapping(self, node: _Node, path: str, what: str = "") -> t.Optional[t.Dict[str, _Entry]]:
        """Keys (as text) to entries; errors for a non-mapping, duplicate or non-scalar keys."""
        self._visited += 1
        if self._visited > _MAX_NODES:
            raise AppSpecError(self.source, [_err("the document has too many nodes (alias expansion?)", path, *_pos(node))])
        if not isinstance(node, yaml.MappingNode):
            self.error(path, node, "must be %s, not %s" % (what or "a mapping", _describe(node)))
            return None
        result = {}  # type: t.Dict[str, _Entry]
        merged = {}  # type: t.Dict[str, _Entry]
        for key_node, value_node in node.value:
            if key_node.tag == _TAG_MERGE:
                sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                for source in sources:
                    inner = self.mapping(source, path, "a mapping to merge ('<<')")
                    for name, entry in (inner or {}).items():
                        merged.setdefault(name, entry)
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.error(path, key_node, "keys must be plain names, not %s" % _describe(key_node))
                continue
            name = key_node.value
            if name in result:
                first = _pos(result[name].key)[0]
                self.error(
                    _join(path, name), key_node,
                    "duplicate key %r (first at line %s): YAML loaders silently keep the last one, "
                    "so it is refused" % (name, first),
                )
                continue
            result[name] = _Entry(key_node, value_node)
        for name, entry in merged.items():
            result.setdefault(name, entry)
        return result

    def sequence(self, node: _Node, path: str, what: str) -> t.Optional[t.List[_Node]]:
        self._visited += 1
        if not isinstance(node, yaml.SequenceNode):
            self.error(path, node, "must be %s, not %s" % (what, _describe(node)))
            return None
        return list(node.value)

    def string(self, node: t.Optional[_Node], path: str, parent: t.Optional[_Node] = None, *,
               required: bool = True, strip: bool = True) -> t.Optional[str]:
        """A non-empty string scalar, or None (with an error when required)."""
        if _is_null(node):
            if required:
                self.error(path, node if node is not None else parent, "is required")
            return None
        if not isinstance(node, yaml.ScalarNode) or node.tag != _TAG_STR:
            self.error(path, node, "must be a string, not %s%s" % (
                _describe(node), " (quote it)" if isinstance(node, yaml.ScalarNode) else ""))
            return None
        value = node.value.strip() if strip else node.value
        if not value:
            self.error(path, node, "must not be empty")
            return None
        return value

    def no_control(self, value: str, path: str, node: _Node) -> bool:
        """False, with an error, when a path ``value`` holds a control character (newline, tab, NUL...)."""
        found = _CONTROL.search(value)
        if found is None:
            return True
        self.error(path, node, "%r contains the control character %r: paths may not hold control characters"
                   % (value, found.group()))
        return False

    def path(self, node: t.Optional[_Node], path: str, parent: t.Optional[_Node] = None, *,
             required: bool = True) -> t.Optional[str]:
        """A string naming a file (see :meth:`string`) without control characters, or None."""
        value = self.string(node, path, parent, required=required)
        return value if value is not None and self.no_control(value, path, node) else None

    def unknown_keys(self, entries: t.Dict[str, _Entry], known: t.Sequence[str], path: str,
                     what: str) -> None:
        lowered = {k.lower(): k for k in known}
        for name, entry in entries.items():
            if name in known:
                continue
            if name.lower() in lowered:
                self.error(_join(path, name), entry.key,
                           "unknown key %r: keys are case-sensitive, did you mean %r?"
                           % (name, lowered[name.lower()]))
            else:
                self.warn(_join(path, name), entry.key,
                          "unknown key %r in %s is ignored (known: %s)" % (name, what, ", ".join(known)))

    def inside_revision(self, value: str, path: str, node: _Node) -> None:
        normalized = posixpath.normpath("./" + value.lstrip("/"))
        if normalized == ".." or normalized.startswith("../"):
            self.error(path, node, "%r points outside the revision" % value)


# --- version / os -----------------------------------------------------------------------------


def _check_version(ck: _Checker, root: t.Dict[str, _Entry], root_node: _Node, agent_rules: bool = True) -> str:
    """``version`` must be 0.0. The agent (server AppSpecs) also refuses the string '0.0': warn about it."""
    entry = root.get("version")
    if entry is None or _is_null(entry.value):
        ck.error("version", entry.value if entry else root_node, "is required and must be 0.0")
        return "0.0"
    node = entry.value
    if isinstance(node, yaml.ScalarNode) and node.tag in (_TAG_INT, _TAG_FLOAT):
        if ck.scalar(node) == 0:
            return "0.0"
    elif isinstance(node, yaml.ScalarNode) and node.tag == _TAG_STR and node.value.strip() in ("0.0", "0"):
        if agent_rules:
            ck.warn("version", node, "is the string %r: the CodeDeploy agent rejects a quoted version, "
                    "write it unquoted (version: 0.0)" % node.value)
        return "0.0"
    ck.error("version", node, "must be 0.0 (the only AppSpec version), not %s"
             % (repr(node.value) if isinstance(node, yaml.ScalarNode) else _describe(node)))
    return "0.0"


def _check_os(ck: _Checker, root: t.Dict[str, _Entry], root_node: _Node) -> str:
    entry = root.get("os")
    if entry is None or _is_null(entry.value):
        ck.error("os", entry.value if entry else root_node, "is required and must be linux")
        return "linux"
    node = entry.value
    value = node.value if isinstance(node, yaml.ScalarNode) else None
    if value == "linux" and node.tag == _TAG_STR:
        return "linux"
    if isinstance(value, str) and value.lower() == "windows":
        ck.error("os", node, "windows is not supported by this collection (Linux hosts only)")
    elif isinstance(value, str) and value.lower() == "linux":
        ck.error("os", node, "must be 'linux' in lower case, not %r (the CodeDeploy agent compares "
                 "case-sensitively)" % value)
    else:
        ck.error("os", node, "must be linux, not %s" % (repr(value) if value is not None else _describe(node)))
    return "linux"


# --- files ------------------------------------------------------------------------------------


def _section_entries(ck: _Checker, root: t.Dict[str, _Entry], section: str, what: str, needs: str,
                     keys: t.Sequence[str]) -> t.Iterator[t.Tuple[str, _Node, t.Dict[str, _Entry]]]:
    """(path, node, fields) of each well-formed mapping in a list section; errors for the others."""
    entry = root.get(section)
    if entry is None or _is_null(entry.value):
        return
    for index, item in enumerate(ck.sequence(entry.value, section, what) or []):
        path = "%s[%d]" % (section, index)
        if _is_null(item):
            ck.error(path, item, "is an empty entry: each '-' needs %s" % needs)
            continue
        fields = ck.mapping(item, path, "a mapping with %s" % needs)
        if fields is None:
            continue
        ck.unknown_keys(fields, keys, path, "a %s entry" % section)
        yield path, item, fields


def _check_files(ck: _Checker, root: t.Dict[str, _Entry]) -> t.List[t.Dict[str, str]]:
    result = []
    for path, item, fields in _section_entries(ck, root, "files", "a list of {source, destination}",
                                               "source and destination", _FILE_KEYS):
        src_entry, dst_entry = fields.get("source"), fields.get("destination")
        source = ck.path(src_entry.value if src_entry else None, path + ".source", item)
        destination = ck.path(dst_entry.value if dst_entry else None, path + ".destination", item)
        if source is not None:
            ck.inside_revision(source, path + ".source", src_entry.value)
        if destination is not None and not destination.startswith("/"):
            ck.error(path + ".destination", dst_entry.value,
                     "must be an absolute path, not %r" % destination)
        if source is not None and destination is not None:
            result.append({"source": source, "destination": destination})
    return result


# --- permissions ------------------------------------------------------------------------------

_MODE_RE = re.compile(r"^[0-7]{1,4}$")
_ACE_TYPES = {"u": "user", "user": "user", "g": "group", "group": "group", "m": "mask",
              "mask": "mask", "o": "other", "other": "other"}
_ACE_PERMS_RE = re.compile(r"^(?:[0-7]|[rwx-]{1,3})$")
_RANGE_PART_RE = re.compile(r"^s(\d+)(?:-s(\d+))?(?::(.+))?$")
_CATEGORY_RE = re.compile(r"^c(\d+)(?:\.c(\d+))?$")


def _check_mode(ck: _Checker, node: _Node, path: str) -> t.Optional[str]:
    if _is_null(node):
        return None
    if not isinstance(node, yaml.ScalarNode) or node.tag not in (_TAG_INT, _TAG_STR):
        ck.error(path, node, "must be octal digits such as 644 or '0755', not %s" % _describe(node))
        return None
    text = node.value.strip()
    if not _MODE_RE.match(text):
        bad = [c for c in text if c not in "01234567"]
        reason = ("contains %r, which is not an octal digit" % bad[0]) if bad else "must be 1 to 4 octal digits"
        ck.error(path, node, "%r is not a file mode: %s" % (text, reason))
        return None
    if node.tag == _TAG_INT and len(text) > 1 and text.startswith("0"):
        # YAML 1.1 reads 0644 as the integer 420; the agent then applies mode 0420.
        agent = str(int(text, 8)).rjust(3, "0")
        if _MODE_RE.match(agent):
            agent_view = "would apply mode %s" % agent.rjust(4, "0")
        else:
            agent_view = "would refuse it as mode %s" % agent
        ck.warn(path, node, "unquoted %s is the YAML integer %d: the CodeDeploy agent %s; appspec.deploy "
                "applies %s as written. Quote it ('%s') to mean the same everywhere"
                % (text, int(text, 8), agent_view, text.rjust(4, "0"), text))
    return text.rjust(4, "0")


def _check_acl(ck: _Checker, node: _Node, path: str) -> t.Optional[str]:
    text = ck.string(node, path)
    if text is None:
        return None
    parts = text.split(":")
    if parts[0] in ("d", "default"):
        parts = parts[1:]
    if len(parts) == 2:
        parts = ["user"] + parts
    if len(parts) != 3 or parts[0] not in _ACE_TYPES:
        ck.error(path, node, "invalid ACL entry %r: write [d:][u|g|m|o:]name:perms, e.g. 'u:deploy:rwx'" % text)
        return None
    kind, name, perms = _ACE_TYPES[parts[0]], parts[1], parts[2]
    if not _ACE_PERMS_RE.match(perms):
        ck.error(path, node, "invalid permissions %r in ACL entry %r: use one octal digit or r, w, x, -"
                 % (perms, text))
        return None
    if not name and kind in ("user", "group", "other"):
        ck.error(path, node, "ACL entry %r is a base entry: use mode to set it" % text)
        return None
    if name and kind in ("other", "mask"):
        ck.error(path, node, "ACL entry %r: %s entries take no name" % (text, kind))
        return None
    return text


def _check_range(ck: _Checker, node: _Node, path: str, text: str) -> None:
    match = _RANGE_PART_RE.match(text)
    if not match:
        ck.error(path, node, "invalid SELinux range %r: write s0[-s1][:c0[.c5][,c7]]" % text)
        return
    low, high, categories = match.group(1), match.group(2), match.group(3)
    if high is not None and int(high) < int(low):
        ck.error(path, node, "invalid SELinux range %r: s%s is below s%s" % (text, high, low))
    if categories is None:
        return
    seen = set()  # type: t.Set[int]
    for part in categories.split(","):
        cat = _CATEGORY_RE.match(part)
        if not cat:
            ck.error(path, node, "invalid SELinux category %r in range %r" % (part, text))
            return
        first = int(cat.group(1))
        last = int(cat.group(2)) if cat.group(2) is not None else first
        if last > 1023 or first > 1023 or last < first:
            ck.error(path, node, "invalid SELinux category %r in range %r (0-1023, ascending)" % (part, text))
            return
        numbers = set(range(first, last + 1))
        if seen & numbers:
            ck.error(path, node, "duplicate SELinux categories in range %r" % text)
            return
        seen |= numbers


def _check_context(ck: _Checker, node: _Node, path: str) -> t.Optional[t.Dict[str, t.Optional[str]]]:
    if _is_null(node):
        return None
    fields = ck.mapping(node, path, "a mapping with type (and optional name, range)")
    if fields is None:
        return None
    ck.unknown_keys(fields, _CONTEXT_KEYS, path, "a context")
    values = {}  # type: t.Dict[str, t.Optional[str]]
    for key in _CONTEXT_KEYS:
        entry = fields.get(key)
        values[key] = ck.string(entry.value if entry else None, _join(path, key), node, required=(key == "type"))
    if values["range"] is not None:
        entry = fields["range"]
        _check_range(ck, entry.value, path + ".range", values["range"])
    return values


def _string_list(ck: _Checker, node: _Node, path: str, what: str, *, paths: bool = False) -> t.List[str]:
    """A list of strings (``paths``: without control characters); a single string is accepted with a
    warning (the agent needs a list)."""
    if _is_null(node):
        return []
    if isinstance(node, yaml.ScalarNode) and node.tag == _TAG_STR:
        ck.warn(path, node, "is a single string: the CodeDeploy agent needs a list, write [%s]" % node.value)
        return [node.value] if not paths or ck.no_control(node.value, path, node) else []
    items = ck.sequence(node, path, what)
    result = []
    for index, item in enumerate(items or []):
        value = (ck.path if paths else ck.string)(item, "%s[%d]" % (path, index))
        if value is not None:
            result.append(value)
    return result


def _check_permissions(ck: _Checker, root: t.Dict[str, _Entry], destinations: t.Sequence[str]) -> t.List[t.Dict[str, t.Any]]:
    """``permissions``; ``destinations``: those of ``files`` (an object elsewhere matches nothing installed)."""
    result = []
    for path, item, fields in _section_entries(ck, root, "permissions", "a list of permission entries",
                                               "at least object", _PERMISSION_KEYS):

        def value(key: str) -> t.Optional[_Node]:
            found = fields.get(key)
            return found.value if found else None

        obj = ck.path(value("object"), path + ".object", item)
        if obj is not None and not obj.startswith("/"):
            ck.error(path + ".object", value("object"), "must be an absolute path on the host, not %r" % obj)
        elif obj is not None and not any(reaches(obj, destination) for destination in destinations):
            # The agent ignores it: so do hosts (permissions touch only what a deployment installs). Not an error,
            # so that a revision that deploys with the agent deploys here unchanged.
            ck.warn(path + ".object", value("object"),
                    "%r is not a files destination, nor below or above one: it matches nothing a deployment "
                    "installs and is ignored (as by the CodeDeploy agent)" % obj)
        pattern = "**"
        if not _is_null(value("pattern")):
            pattern = ck.path(value("pattern"), path + ".pattern", item) or "**"
        excepts = _string_list(ck, value("except"), path + ".except", "a list of patterns", paths=True)
        owner = ck.string(value("owner"), path + ".owner", item, required=False)
        group = ck.string(value("group"), path + ".group", item, required=False)
        mode = _check_mode(ck, value("mode"), path + ".mode")
        acls = []  # type: t.List[str]
        acl_node = value("acls")
        if not _is_null(acl_node):
            for acl_index, acl_item in enumerate(ck.sequence(acl_node, path + ".acls", "a list of ACL entries") or []):
                acl = _check_acl(ck, acl_item, "%s.acls[%d]" % (path, acl_index))
                if acl is not None:
                    acls.append(acl)
        context = _check_context(ck, value("context"), path + ".context")
        types = list(PERMISSION_TYPES)
        if value("type") is not None and not _is_null(value("type")):
            types = _string_list(ck, value("type"), path + ".type", "a list drawn from file, directory")
            for type_index, name in enumerate(types):
                if name not in PERMISSION_TYPES:
                    ck.error("%s.type[%d]" % (path, type_index), value("type"),
                             "%r is not a permission type: use file or directory" % name)
            if not types:
                ck.error(path + ".type", value("type"), "must name at least one of file, directory")
        if obj is not None:
            result.append({
                "object": obj, "pattern": pattern, "except": excepts, "owner": owner, "group": group,
                "mode": mode, "acls": acls, "context": context, "type": types,
            })
    return result


# --- hooks (server) ---------------------------------------------------------------------------


def _check_timeout(ck: _Checker, node: t.Optional[_Node], path: str) -> int:
    if _is_null(node):
        return DEFAULT_TIMEOUT
    if isinstance(node, yaml.ScalarNode) and node.tag == _TAG_INT:
        number = ck.scalar(node)
    elif isinstance(node, yaml.ScalarNode) and node.tag == _TAG_STR and node.value.strip().isdigit():
        number = int(node.value.strip())
    else:
        shown = repr(node.value) if isinstance(node, yaml.ScalarNode) else _describe(node)
        ck.error(path, node, "must be a whole number of seconds such as 300, not %s" % shown)
        return DEFAULT_TIMEOUT
    if number <= 0:
        ck.error(path, node, "must be a positive number of seconds, not %d" % number)
        return DEFAULT_TIMEOUT
    return number


def _check_script(ck: _Checker, node: _Node, path: str) -> t.Optional[t.Dict[str, t.Any]]:
    if _is_null(node):
        ck.error(path, node, "is an empty hook entry: each '-' needs location (and optional timeout, runas, sudo)")
        return None
    fields = ck.mapping(node, path, "a mapping with location, timeout, runas, sudo")
    if fields is None:
        return None
    ck.unknown_keys(fields, _SCRIPT_KEYS, path, "a hook script")
    entry = fields.get("location")
    location = ck.path(entry.value if entry else None, path + ".location", node)
    if location is not None:
        ck.inside_revision(location, path + ".location", entry.value)
        if location.startswith("/"):
            ck.warn(path + ".location", entry.value,
                    "%r starts with '/' but is relative to the revision root (as in CodeDeploy)" % location)
    entry = fields.get("timeout")
    timeout = _check_timeout(ck, entry.value if entry else None, path + ".timeout")
    entry = fields.get("runas")
    runas = ck.string(entry.value if entry else None, path + ".runas", node, required=False)
    entry = fields.get("sudo")
    sudo = False
    if entry is not None and not _is_null(entry.value):
        if isinstance(entry.value, yaml.ScalarNode) and entry.value.tag == _TAG_BOOL:
            sudo = bool(ck.scalar(entry.value))
        else:
            shown = repr(entry.value.value) if isinstance(entry.value, yaml.ScalarNode) else _describe(entry.value)
            ck.error(path + ".sudo", entry.value,
                     "must be true or false (unquoted), not %s: the CodeDeploy agent would treat any such "
                     "value, even \"false\", as true" % shown)
    if location is None:
        return None
    return {"location": location, "timeout": timeout, "runas": runas, "sudo": sudo}


def _has_key(node: _Node, key: str) -> bool:
    return isinstance(node, yaml.MappingNode) and any(k.value == key for k, dummy in node.value)


def _event_name_problem(name: str, known: t.Sequence[str]) -> t.Optional[str]:
    for candidate in known:
        if candidate.lower() == name.lower():
            return "did you mean %r? (event names are case-sensitive)" % candidate
    return None


def _check_server_hooks(ck: _Checker, root: t.Dict[str, _Entry]) -> t.Dict[str, t.List[t.Dict[str, t.Any]]]:
    entry = root.get("hooks")
    if entry is None or _is_null(entry.value):
        return {}
    events = ck.mapping(entry.value, "hooks", "a mapping of lifecycle event to a list of scripts")
    found = {}  # type: t.Dict[str, t.List[t.Dict[str, t.Any]]]
    for name, event_entry in (events or {}).items():
        path = _join("hooks", name)
        if name in RESERVED_EVENTS:
            ck.error(path, event_entry.key, "%s is run by CodeDeploy itself: no script can be attached to it "
                     "(events that take scripts: %s)" % (name, ", ".join(SERVER_HOOK_EVENTS)))
            continue
        if name not in SERVER_HOOK_EVENTS:
            hint = _event_name_problem(name, SERVER_HOOK_EVENTS + RESERVED_EVENTS)
            if hint:
                ck.error(path, event_entry.key, "unknown lifecycle event %r: %s" % (name, hint))
            else:
                ck.warn(path, event_entry.key, "unknown lifecycle event %r: its scripts never run (known: %s)"
                        % (name, ", ".join(SERVER_HOOK_EVENTS)))
        if _is_null(event_entry.value):
            continue  # as the agent: an event with no value is dropped
        items = ck.sequence(event_entry.value, path, "a list of scripts (each item starts with '- location:')")
        if items is None:
            continue
        scripts = []
        for index, item in enumerate(items):
            script = _check_script(ck, item, "%s[%d]" % (path, index))
            if script is not None:
                scripts.append(script)
        total = sum(s["timeout"] for s in scripts)
        if total > ck.max_event_timeout:
            # Timeouts the author wrote are held to the limit; a sum reached only through the
            # 3600 s default (two scripts without a timeout) deploys on CodeDeploy, so it warns.
            explicit = all(_has_key(item, "timeout") for item in items)
            report = ck.error if explicit else ck.warn
            report(path, event_entry.key,
                   "the scripts of %s may run %d s together (timeouts %s), more than the %d s an event may "
                   "take; shorten the timeouts or raise max_event_timeout"
                   % (name, total, "+".join(str(s["timeout"]) for s in scripts), ck.max_event_timeout))
        found[name] = scripts
    ordered = {name: found[name] for name in SERVER_HOOK_EVENTS if name in found}
    ordered.update((name, scripts) for name, scripts in found.items() if name not in ordered)
    return ordered


def _check_file_exists_behavior(ck: _Checker, root: t.Dict[str, _Entry]) -> t.Optional[str]:
    entry = root.get("file_exists_behavior")
    if entry is None or _is_null(entry.value):
        return None
    node = entry.value
    value = node.value if isinstance(node, yaml.ScalarNode) and node.tag == _TAG_STR else None
    if value in FILE_EXISTS_BEHAVIORS:
        return value
    hint = ""
    if value is not None and value.upper() in FILE_EXISTS_BEHAVIORS:
        hint = " (write it in upper case: %s)" % value.upper()
    ck.error("file_exists_behavior", node, "must be one of %s, not %s%s" % (
        ", ".join(FILE_EXISTS_BEHAVIORS), repr(value) if value is not None else _describe(node), hint))
    return None


def _check_server(ck: _Checker, root: t.Dict[str, _Entry], root_node: _Node) -> t.Dict[str, t.Any]:
    files = _check_files(ck, root)
    appspec = {
        "version": _check_version(ck, root, root_node),
        "os": _check_os(ck, root, root_node),
        "files": files,
        "permissions": _check_permissions(ck, root, [item["destination"] for item in files]),
        "hooks": _check_server_hooks(ck, root),
        "file_exists_behavior": _check_file_exists_behavior(ck, root),
    }
    ck.unknown_keys(root, _SERVER_KEYS, "", "the AppSpec")
    return appspec


# --- ECS and Lambda ---------------------------------------------------------------------------


def _ci_fields(ck: _Checker, node: _Node, path: str, known: t.Sequence[str], what: str,
               ) -> t.Optional[t.Dict[str, _Entry]]:
    """A mapping whose keys match ``known`` case-insensitively (CodeDeploy's docs mix the cases)."""
    fields = ck.mapping(node, path, what)
    if fields is None:
        return None
    canonical = {k.lower(): k for k in known}
    result = {}  # type: t.Dict[str, _Entry]
    for name, entry in fields.items():
        key = canonical.get(name.lower())
        if key is None:
            ck.warn(_join(path, name), entry.key, "unknown key %r in %s is ignored (known: %s)"
                    % (name, what, ", ".join(known)))
        elif key in result:
            ck.error(_join(path, name), entry.key, "duplicate key %r (also written as %r)" % (name, key))
        else:
            result[key] = entry
    return result


def _kp(path: str, fields: t.Dict[str, _Entry], key: str) -> str:
    """The path of ``key`` as the file writes it (keys here match case-insensitively)."""
    entry = fields.get(key)
    return _join(path, entry.key.value if entry else key)


def _get(fields: t.Dict[str, _Entry], key: str) -> t.Optional[_Node]:
    entry = fields.get(key)
    return entry.value if entry else None


def _check_port(ck: _Checker, node: t.Optional[_Node], path: str, parent: _Node) -> t.Optional[int]:
    if _is_null(node):
        ck.error(path, node if node is not None else parent, "is required")
        return None
    if isinstance(node, yaml.ScalarNode) and (node.tag == _TAG_INT or
                                              (node.tag == _TAG_STR and node.value.isdigit())):
        port = int(ck.scalar(node))
        if 1 <= port <= 65535:
            return port
    ck.error(path, node, "must be a port number 1-65535, not %s"
             % (repr(node.value) if isinstance(node, yaml.ScalarNode) else _describe(node)))
    return None


def _check_ecs_properties(ck: _Checker, node: _Node, path: str) -> t.Dict[str, t.Any]:
    known = ("TaskDefinition", "LoadBalancerInfo", "PlatformVersion", "NetworkConfiguration",
             "CapacityProviderStrategy")
    props = _ci_fields(ck, node, path, known, "ECS service properties") or {}
    result = {key: None for key in known}  # type: t.Dict[str, t.Any]
    result["TaskDefinition"] = ck.string(_get(props, "TaskDefinition"), _kp(path, props, "TaskDefinition"), node)
    lb_node = _get(props, "LoadBalancerInfo")
    lb_path = _kp(path, props, "LoadBalancerInfo")
    if _is_null(lb_node):
        ck.error(lb_path, lb_node if lb_node is not None else node, "is required (ContainerName, ContainerPort)")
    else:
        lb = _ci_fields(ck, lb_node, lb_path, ("ContainerName", "ContainerPort"), "LoadBalancerInfo")
        if lb is not None:
            result["LoadBalancerInfo"] = {
                "ContainerName": ck.string(_get(lb, "ContainerName"), _kp(lb_path, lb, "ContainerName"), lb_node),
                "ContainerPort": _check_port(ck, _get(lb, "ContainerPort"), _kp(lb_path, lb, "ContainerPort"), lb_node),
            }
    result["PlatformVersion"] = ck.string(_get(props, "PlatformVersion"), _kp(path, props, "PlatformVersion"), node,
                                          required=False)
    net_node = _get(props, "NetworkConfiguration")
    net_path = _kp(path, props, "NetworkConfiguration")
    if not _is_null(net_node):
        net = _ci_fields(ck, net_node, net_path, ("AwsvpcConfiguration",), "NetworkConfiguration")
        vpc_node = _get(net or {}, "AwsvpcConfiguration")
        vpc_path = _kp(net_path, net or {}, "AwsvpcConfiguration")
        if net is not None and _is_null(vpc_node):
            ck.error(vpc_path, vpc_node if vpc_node is not None else net_node, "is required")
        elif vpc_node is not None:
            vpc = _ci_fields(ck, vpc_node, vpc_path, ("Subnets", "SecurityGroups", "AssignPublicIp"),
                             "AwsvpcConfiguration")
            if vpc is not None:
                missing = [k for k in ("Subnets", "SecurityGroups", "AssignPublicIp") if _is_null(_get(vpc, k))]
                for key in missing:
                    ck.error(_kp(vpc_path, vpc, key), vpc_node,
                             "is required: give all of Subnets, SecurityGroups and AssignPublicIp, or none")
                subnets = _string_list(ck, _get(vpc, "Subnets"), _kp(vpc_path, vpc, "Subnets"), "a list of subnet ids")
                groups = _string_list(ck, _get(vpc, "SecurityGroups"), _kp(vpc_path, vpc, "SecurityGroups"),
                                      "a list of security group ids")
                assign = ck.string(_get(vpc, "AssignPublicIp"), _kp(vpc_path, vpc, "AssignPublicIp"), vpc_node,
                                   required=False)
                if assign is not None and assign not in ("ENABLED", "DISABLED"):
                    ck.error(_kp(vpc_path, vpc, "AssignPublicIp"), _get(vpc, "AssignPublicIp"),
                             "must be ENABLED or DISABLED, not %r" % assign)
                result["NetworkConfiguration"] = {"AwsvpcConfiguration": {
                    "Subnets": subnets, "SecurityGroups": groups, "AssignPublicIp": assign}}
    cps_node = _get(props, "CapacityProviderStrategy")
    cps_path = _kp(path, props, "CapacityProviderStrategy")
    if not _is_null(cps_node):
        strategies = []
        for index, item in enumerate(ck.sequence(cps_node, cps_path, "a list of capacity providers") or []):
            item_path = "%s[%d]" % (cps_path, index)
            fields = _ci_fields(ck, item, item_path, ("CapacityProvider", "Base", "Weight"), "a capacity provider")
            if fields is None:
                continue
            strategy = {"CapacityProvider": ck.string(_get(fields, "CapacityProvider"),
                                                      _kp(item_path, fields, "CapacityProvider"), item)}  # type: t.Dict[str, t.Any]
            for key in ("Base", "Weight"):
                value = _get(fields, key)
                strategy[key] = None
                if _is_null(value):
                    continue
                if isinstance(value, yaml.ScalarNode) and value.tag == _TAG_INT and ck.scalar(value) >= 0:
                    strategy[key] = ck.scalar(value)
                else:
                    ck.error(_kp(item_path, fields, key), value, "must be a whole number >= 0")
            strategies.append(strategy)
        result["CapacityProviderStrategy"] = strategies
    return result


def _check_lambda_properties(ck: _Checker, node: _Node, path: str) -> t.Dict[str, t.Any]:
    known = ("Name", "Alias", "CurrentVersion", "TargetVersion")
    props = _ci_fields(ck, node, path, known, "Lambda function properties") or {}
    result = {}  # type: t.Dict[str, t.Any]
    for key in known:
        value = _get(props, key)
        key_path = _kp(path, props, key)
        if key in ("CurrentVersion", "TargetVersion") and isinstance(value, yaml.ScalarNode) \
                and value.tag == _TAG_INT:
            text = value.value  # type: t.Optional[str]
        else:
            text = ck.string(value, key_path, node)
        if text is not None and key in ("CurrentVersion", "TargetVersion") and \
                not (text.isdigit() and int(text) > 0):
            ck.error(key_path, value, "must be a published version number (1, 2, ...), not %r" % text)
        result[key] = text
    if result["CurrentVersion"] is not None and result["CurrentVersion"] == result["TargetVersion"]:
        ck.warn(_kp(path, props, "TargetVersion"), _get(props, "TargetVersion"),
                "is the same as CurrentVersion: the deployment shifts no traffic")
    return result


def _check_resources(ck: _Checker, node: _Node, path: str) -> t.Tuple[str, t.List[t.Dict[str, t.Any]]]:
    platform = "ecs"
    items = ck.sequence(node, path, "a list with one resource")
    if items is None:
        return platform, []
    if len(items) != 1:
        ck.error(path, node, "must hold exactly one resource (an ECS service or a Lambda function), not %d"
                 % len(items))
    resources = []
    for index, item in enumerate(items):
        item_path = "%s[%d]" % (path, index)
        outer = ck.mapping(item, item_path, "a mapping of one resource name to its Type and Properties")
        if outer is None:
            continue
        if len(outer) != 1:
            ck.error(item_path, item, "must hold one resource name, not %d" % len(outer))
            continue
        name, entry = next(iter(outer.items()))
        res_path = _join(item_path, name)
        fields = _ci_fields(ck, entry.value, res_path, ("Type", "Properties"), "a resource")
        if fields is None:
            continue
        rtype = ck.string(_get(fields, "Type"), _kp(res_path, fields, "Type"), entry.value)
        props_node = _get(fields, "Properties")
        if rtype == LAMBDA_RESOURCE_TYPE:
            platform = "lambda"
        elif rtype != ECS_RESOURCE_TYPE:
            if rtype is not None:
                ck.error(_kp(res_path, fields, "Type"), _get(fields, "Type"), "must be %s or %s, not %r"
                         % (ECS_RESOURCE_TYPE, LAMBDA_RESOURCE_TYPE, rtype))
            continue
        if _is_null(props_node):
            ck.error(_kp(res_path, fields, "Properties"), props_node if props_node is not None else entry.value, "is required")
            continue
        if platform == "lambda":
            props = _check_lambda_properties(ck, props_node, _kp(res_path, fields, "Properties"))
        else:
            props = _check_ecs_properties(ck, props_node, _kp(res_path, fields, "Properties"))
        resources.append({"name": name, "type": rtype, "properties": props})
    return platform, resources


def _check_function_hooks(ck: _Checker, node: t.Optional[_Node], path: str, platform: str) -> t.Dict[str, str]:
    if _is_null(node):
        return {}
    events = ECS_EVENTS if platform == "ecs" else LAMBDA_EVENTS
    label = "ECS" if platform == "ecs" else "Lambda"
    items = ck.sequence(node, path, "a list of '- Event: FunctionName' items")
    result = {}  # type: t.Dict[str, str]
    for index, item in enumerate(items or []):
        item_path = "%s[%d]" % (path, index)
        if _is_null(item):
            ck.error(item_path, item, "is an empty hook entry: write '- Event: FunctionName'")
            continue
        fields = ck.mapping(item, item_path, "a mapping of one event to a Lambda function name")
        if fields is None:
            continue
        if len(fields) != 1:
            ck.error(item_path, item, "must map exactly one event to a function, not %d keys" % len(fields))
            continue
        event, entry = next(iter(fields.items()))
        event_path = _join(item_path, event)
        if event not in events:
            hint = _event_name_problem(event, events)
            if hint:
                ck.error(event_path, entry.key, "unknown %s lifecycle event %r: %s" % (label, event, hint))
            else:
                ck.warn(event_path, entry.key, "unknown %s lifecycle event %r (known: %s)"
                        % (label, event, ", ".join(events)))
        function = ck.string(entry.value, event_path, item)
        if function is None:
            continue
        if event in result:
            ck.error(event_path, entry.key, "event %s is listed twice" % event)
            continue
        result[event] = function
    return result


def _check_function_platform(ck: _Checker, root: t.Dict[str, _Entry], root_node: _Node,
                             ) -> t.Tuple[str, t.Dict[str, t.Any]]:
    fields = {}  # type: t.Dict[str, _Entry]
    for name, entry in root.items():
        canonical = {"resources": "Resources", "hooks": "Hooks", "version": "version"}.get(name.lower())
        if canonical is None:
            if name in ("os", "files", "permissions", "file_exists_behavior"):
                ck.error(name, entry.key, "%r belongs to EC2/on-premises AppSpecs, not to one with Resources"
                         % name)
            else:
                ck.warn(name, entry.key, "unknown key %r is ignored" % name)
        elif canonical in fields:
            ck.error(name, entry.key, "duplicate key %r (also written as %r)" % (name, canonical))
        else:
            fields[canonical] = entry
    version = _check_version(ck, fields, root_node, agent_rules=False)
    res_entry = fields["Resources"]
    platform, resources = _check_resources(ck, res_entry.value, res_entry.key.value)
    hooks_entry = fields.get("Hooks")
    hooks = _check_function_hooks(ck, hooks_entry.value if hooks_entry else None,
                                  hooks_entry.key.value if hooks_entry else "Hooks", platform)
    return platform, {"version": version, "resources": resources, "hooks": hooks}


# --- Entry point ------------------------------------------------------------------------------


def _lines(text: str) -> t.List[str]:
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _tab_at(text: str, mark: t.Any) -> bool:
    if mark is None:
        return False
    lines = _lines(text)
    return mark.line < len(lines) and lines[mark.line][mark.column:mark.column + 1] == "\t"


def _in_indentation(text: str, mark: t.Any) -> bool:
    return not _lines(text)[mark.line][:mark.column].strip()


def _yaml_error(exc: t.Any, text: str) -> t.List[t.Dict[str, t.Any]]:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = mark.line + 1 if mark is not None else None
    column = mark.column + 1 if mark is not None else None
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    if _tab_at(text, mark) or "tab" in problem or "'\\t'" in problem:
        errors = []
        for number, raw in enumerate(_lines(text), 1):
            indent = raw[: len(raw) - len(raw.lstrip(" \t"))]
            if "\t" in indent:
                errors.append(_err("a tab is used for indentation: YAML allows only spaces there", "", number,
                                   indent.index("\t") + 1))
        if line not in [e["line"] for e in errors]:
            errors.insert(0, _err("a tab character cannot be used here: YAML allows only spaces for indentation",
                                  "", line, column))
        return errors
    message = "invalid YAML: %s" % problem
    if context:
        message += " (%s)" % context
    return [_err(message, "", line, column)]


def _compose(text: str) -> t.List[t.Any]:
    """All documents' node trees. libyaml (CSafeLoader) is the parser the CodeDeploy agent uses too
    (Ruby Psych); pure-Python PyYAML refuses a tab used as a separator inside a line (``os:<TAB>linux``),
    which libyaml accepts: such a tab is read as a space there, so both give the same result."""
    loader = getattr(yaml, "CSafeLoader", None)
    if loader is not None:
        return list(yaml.compose_all(text, Loader=loader))
    for _attempt in range(10000):
        try:
            return list(yaml.compose_all(text, Loader=yaml.SafeLoader))
        except yaml.scanner.ScannerError as exc:
            mark = exc.problem_mark
            if not _tab_at(text, mark) or _in_indentation(text, mark) or mark.index >= len(text) \
                    or text[mark.index] != "\t":
                raise
            text = text[:mark.index] + " " + text[mark.index + 1:]
    return list(yaml.compose_all(text, Loader=yaml.SafeLoader))


def _untab_json(text: str) -> str:
    """JSON may indent with tabs, YAML may not: turn indentation tabs into spaces for JSON input."""
    if not text.lstrip("\ufeff \t\r\n").startswith("{"):
        return text
    lines = text.split("\n")
    for index, raw in enumerate(lines):
        stripped = raw.lstrip(" \t")
        indent = raw[: len(raw) - len(stripped)]
        if "\t" in indent:
            lines[index] = indent.replace("\t", " ") + stripped
    return "\n".join(lines)


def parse_appspec(
    text: str,
    source: str = "<content>",
    *,
    strict: bool = False,
    max_event_timeout: int = DEFAULT_MAX_EVENT_TIMEOUT,
) -> ParsedAppSpec:
    """Parse and validate AppSpec ``text`` (YAML or JSON); raise :class:`AppSpecError` listing all errors.

    ``strict`` turns every warning (unknown event or key, agent incompatibilities) into an error.
    ``max_event_timeout`` caps the sum of the script timeouts of one event (CodeDeploy: 3600 s).
    """
    if isinstance(max_event_timeout, bool) or not isinstance(max_event_timeout, int) or max_event_timeout <= 0:
        raise DeployError("max_event_timeout must be a positive number of seconds, not %r" % (max_event_timeout,))
    if text.startswith("\ufeff"):
        text = text[1:]
    text = _untab_json(text)
    try:
        documents = _compose(text)
    except yaml.YAMLError as exc:
        raise AppSpecError(source, _yaml_error(exc, text))
    # A trailing '---' with nothing after it yields an empty document: ignore those.
    documents = [doc for doc in documents if not (_is_null(doc) and not doc.value.strip())]
    if not documents:
        raise AppSpecError(source, [_err("the AppSpec is empty: " + MINIMUM_APPSPEC, "", 1, 1)])
    if len(documents) > 1:
        raise AppSpecError(source, [_err(
            "the file holds %d YAML documents (separated by '---'); an AppSpec is exactly one" % len(documents),
            "", *_pos(documents[1]))])
    root_node = documents[0]
    ck = _Checker(source, strict, max_event_timeout)
    root = ck.mapping(root_node, "", "a mapping of AppSpec sections (version, os, files, hooks...)")
    if root is None:
        if ck.errors and not isinstance(root_node, yaml.CollectionNode):
            ck.errors[0]["message"] += "; " + MINIMUM_APPSPEC
        raise AppSpecError(source, ck.errors)
    if any(name.lower() == "resources" for name in root):
        platform, appspec = _check_function_platform(ck, root, root_node)
    else:
        platform, appspec = "server", _check_server(ck, root, root_node)
    if ck.errors:
        errors = sorted(ck.errors, key=lambda e: (e["line"] or 0, e["column"] or 0))
        raise AppSpecError(source, errors)
    reason = None
    if platform != "server":
        reason = ("this AppSpec is for %s deployments, which the CodeDeploy service runs; appspec.deploy "
                  "deploys EC2/on-premises revisions to Linux hosts only"
                  % ("Amazon ECS" if platform == "ecs" else "AWS Lambda"))
    return ParsedAppSpec(
        appspec=appspec,
        compute_platform=platform,
        warnings=ck.warnings,
        source=source,
        deployable=platform == "server",
        not_deployable_reason=reason,
    )
