# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The AppSpec ``permissions`` section, as the CodeDeploy agent applies it, planned before acting.

Python API::

    rules, errors = parse_rules(appspec_permissions)          # PermissionRule list + error list
    assignments, errors, warnings = plan_permissions(rules, installed, existing_dirs=None)
        # installed: [(path, kind)] with kind "file" | "directory" | "symlink", the paths THIS
        # deployment installs; returns {path: PermissionRule}
    changes = pending_changes(path, kind, rule)                # what apply_rule would change
    apply_rule(path, kind, rule, warnings)                     # lchown, chmod, setfacl, SELinux

Matching (agent semantics): ``pattern`` ``**`` (the default) matches everything below ``object``
at any depth but not ``object`` itself; any other pattern matches *direct children* only, with
``*`` as the only wildcard (it matches dot files; ``?`` and ``[`` are literal). ``except`` globs
are tested against direct children only. ``type`` limits to ``file`` / ``directory``; a symlink
installed from the revision counts as a ``file`` and only gets its owner/group (``lchown``):
modes, ACLs and contexts are never applied through a link.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import shutil
import stat
import subprocess
import typing as t

from ansible_collections.appspec.deploy.plugins.module_utils._errors import DeployError

VALID_TYPES = ("file", "directory")
_ACL_TYPES = {"u": "user", "user": "user", "g": "group", "group": "group", "m": "mask", "mask": "mask", "o": "other", "other": "other"}


class PermissionRule:
    """One ``permissions`` entry, validated."""

    def __init__(self, index: int, entry: t.Dict[str, t.Any]) -> None:
        self.index = index
        self.entry = entry
        self.object = os.path.normpath(str(entry.get("object") or "")) if entry.get("object") else ""
        self.pattern = str(entry.get("pattern") if entry.get("pattern") is not None else "**")
        self.excepts = [str(x) for x in (entry.get("except") or [])]
        types = entry.get("type") or list(VALID_TYPES)
        self.types = [str(x) for x in (types if isinstance(types, list) else [types])]
        self.owner = entry.get("owner")
        self.group = entry.get("group")
        self.mode = None  # type: t.Optional[int]
        self.acls = []  # type: t.List[t.Tuple[bool, str, str, str]]
        self.context = entry.get("context") or None
        self.uid = -1
        self.gid = -1

    @property
    def label(self) -> str:
        return "permissions[%d] (object %s)" % (self.index, self.object or "?")

    def describe(self) -> t.Dict[str, t.Any]:
        return {
            "owner": self.owner,
            "group": self.group,
            "mode": "%04o" % self.mode if self.mode is not None else None,
            "acls": [format_ace(a) for a in self.acls],
            "context": self.context,
        }


def parse_mode(value: t.Any) -> int:
    """``"644"``, ``"0644"``, ``"4755"`` -> int. An int is read as its decimal digits (agent)."""
    text = str(value).strip()
    if not text or len(text) > 4:
        raise DeployError("mode %r must be one to four octal digits" % (value,))
    bad = [c for c in text if c not in "01234567"]
    if bad:
        raise DeployError("mode %r contains an invalid character (%s)" % (value, bad[0]))
    return int(text, 8)


def parse_ace(text: str) -> t.Tuple[bool, str, str, str]:
    """``[d:][u|g|m|o:]name:perms`` -> (default, kind, name, perms as rwx)."""
    raw = str(text).strip()
    parts = raw.split(":")
    default = False
    if parts and parts[0] in ("d", "default"):
        default = True
        parts = parts[1:]
    if len(parts) == 3:
        kind, name, perms = parts
        if kind not in _ACL_TYPES:
            raise DeployError("invalid acl entry (%s)" % raw)
        kind = _ACL_TYPES[kind]
    elif len(parts) == 2:
        if parts[0] in ("o", "other", "m", "mask"):
            kind, name, perms = _ACL_TYPES[parts[0]], "", parts[1]
        else:
            kind, name, perms = "user", parts[0], parts[1]
    else:
        raise DeployError("invalid acl entry (%s)" % raw)
    if kind in ("user", "group", "other") and not name:
        raise DeployError("use mode to set the base acl entry (%s)" % raw)
    if kind in ("mask", "other") and name:
        raise DeployError("invalid acl entry (%s)" % raw)
    if len(perms) == 1 and perms in "01234567":
        bits = int(perms)
        perms = ("r" if bits & 4 else "-") + ("w" if bits & 2 else "-") + ("x" if bits & 1 else "-")
    else:
        if not perms or len(perms) > 3:
            raise DeployError("invalid acl entry (%s)" % raw)
        for char in perms:
            if char not in "rwx-":
                raise DeployError("the acl entry %s contains an invalid character (%s)" % (raw, char))
        perms = ("r" if "r" in perms else "-") + ("w" if "w" in perms else "-") + ("x" if "x" in perms else "-")
    return default, kind, name, perms


def format_ace(ace: t.Tuple[bool, str, str, str]) -> str:
    default, kind, name, perms = ace
    return "%s%s:%s:%s" % ("default:" if default else "", kind, name, perms)


def parse_rules(permissions: t.Optional[t.List[t.Dict[str, t.Any]]]) -> t.Tuple[t.List[PermissionRule], t.List[str]]:
    """Validate every entry; return the rules and ALL problems found (owners/groups included)."""
    rules = []  # type: t.List[PermissionRule]
    errors = []  # type: t.List[str]
    for index, entry in enumerate(permissions or []):
        if not isinstance(entry, dict):
            errors.append("permissions[%d] must be a mapping" % index)
            continue
        rule = PermissionRule(index, entry)
        if not rule.object:
            errors.append("%s has no object value" % rule.label)
        elif not os.path.isabs(rule.object):
            errors.append("%s: object must be an absolute path" % rule.label)
        for typ in rule.types:
            if typ not in VALID_TYPES:
                errors.append("%s: type %r is not supported (file, directory)" % (rule.label, typ))
        if "/" in rule.pattern and rule.pattern != "**":
            errors.append("%s: pattern %r may not contain '/'" % (rule.label, rule.pattern))
        if entry.get("mode") is not None:
            try:
                rule.mode = parse_mode(entry["mode"])
            except DeployError as err:
                errors.append("%s: %s" % (rule.label, err))
        for ace in entry.get("acls") or []:
            try:
                rule.acls.append(parse_ace(ace))
            except DeployError as err:
                errors.append("%s: %s" % (rule.label, err))
        if rule.owner is not None:
            try:
                rule.uid = pwd.getpwnam(str(rule.owner)).pw_uid
            except KeyError:
                errors.append("%s: unknown owner %r on this host" % (rule.label, rule.owner))
        if rule.group is not None:
            try:
                rule.gid = grp.getgrnam(str(rule.group)).gr_gid
            except KeyError:
                errors.append("%s: unknown group %r on this host" % (rule.label, rule.group))
        if rule.context is not None and (not isinstance(rule.context, dict) or not rule.context.get("type")):
            errors.append("%s: context needs a type" % rule.label)
        if rule.context and selinux_enabled() and not (shutil.which("semanage") and shutil.which("restorecon")):
            errors.append("%s: context needs semanage and restorecon (policycoreutils), which are not installed" % rule.label)
        if rule.acls and not shutil.which("setfacl"):
            errors.append("%s: acls need the setfacl command (package acl), which is not installed" % rule.label)
        rules.append(rule)
    return rules, errors


def _glob_regex(glob: str) -> t.Pattern[str]:
    return re.compile("^" + "[^/]*".join(re.escape(part) for part in glob.split("*")) + "$", re.S)


def reaches(obj: str, destination: str) -> bool:
    """Whether a rule on ``obj`` can touch what a deployment installs at ``destination``: the same path, a path
    below it, or one above it (``/opt/app`` over ``/opt/app/current``, as the agent applies it)."""
    obj, destination = os.path.normpath(obj), os.path.normpath(destination)
    return obj == destination or obj.startswith(destination.rstrip("/") + "/") or destination.startswith(obj.rstrip("/") + "/")


def matches(rule: PermissionRule, path: str, kind: str) -> bool:
    """Whether ``rule`` applies to ``path`` (installed as ``kind``), ignoring the object-is-file case."""
    typ = "directory" if kind == "directory" else "file"
    if typ not in rule.types:
        return False
    obj = rule.object.rstrip("/") or "/"
    prefix = obj if obj.endswith("/") else obj + "/"
    if not path.startswith(prefix):
        return False
    rel = path[len(prefix) :]
    if not rel:
        return False
    direct = "/" not in rel
    if rule.pattern == "**":
        if direct and any(_glob_regex(e).match(rel) for e in rule.excepts):
            return False
        return True
    if not direct or not _glob_regex(rule.pattern).match(rel):
        return False
    return not any(_glob_regex(e).match(rel) for e in rule.excepts)


def plan_permissions(
    rules: t.List[PermissionRule],
    installed: t.Sequence[t.Tuple[str, str]],
    existing_dir: t.Optional[t.Callable[[str], bool]] = None,
) -> t.Tuple[t.Dict[str, PermissionRule], t.List[str], t.List[str]]:
    """Which installed path gets which rule. Overlaps (one path, two rules) are errors.

    ``installed`` lists what THIS deployment installs; nothing else is ever touched, and the
    ``object`` directory itself only when it is a file installed now (agent semantics).
    """
    existing_dir = existing_dir or os.path.isdir
    kinds = dict(installed)
    assignments = {}  # type: t.Dict[str, PermissionRule]
    errors = []  # type: t.List[str]
    warnings = []  # type: t.List[str]

    def assign(path: str, rule: PermissionRule) -> None:
        other = assignments.get(path)
        if other is not None:
            errors.append("the permissions for %s are specified more than once (permissions[%d] and permissions[%d])" % (path, other.index, rule.index))
            return
        assignments[path] = rule

    for rule in rules:
        if not rule.object:
            continue
        kind = kinds.get(rule.object)
        if kind in ("file", "symlink"):
            if "file" not in rule.types:
                warnings.append("%s is a file installed now but its type excludes file: ignored" % rule.label)
                continue
            if rule.pattern != "**":
                errors.append("%s: pattern %r cannot apply to a file" % (rule.label, rule.pattern))
                continue
            if rule.excepts:
                errors.append("%s: except %r cannot apply to a file" % (rule.label, rule.excepts))
                continue
            for ace in rule.acls:
                if ace[0]:
                    errors.append("%s: default acl entry %s is for directories only" % (rule.label, format_ace(ace)))
            assign(rule.object, rule)
            continue
        if kind == "directory" or existing_dir(rule.object):
            hit = False
            for path, path_kind in installed:
                if matches(rule, path, path_kind):
                    hit = True
                    assign(path, rule)
            if not hit:
                warnings.append("%s matched nothing installed by this deployment" % rule.label)
            continue
        warnings.append("%s: object is neither installed now nor an existing directory: ignored" % rule.label)
    return assignments, errors, warnings


def selinux_enabled() -> bool:
    if not os.path.exists("/sys/fs/selinux/enforce"):
        return False
    tool = shutil.which("selinuxenabled")
    if tool:
        return subprocess.call([tool]) == 0
    return True


def _acl_entries(rule: PermissionRule, kind: str) -> t.List[t.Tuple[bool, str, str, str]]:
    if kind == "directory":
        return list(rule.acls)
    return [a for a in rule.acls if not a[0]]


def _desired_acl(path: str, mode: int, entries: t.List[t.Tuple[bool, str, str, str]]) -> t.List[str]:
    def bits(shift: int) -> str:
        value = (mode >> shift) & 7
        return ("r" if value & 4 else "-") + ("w" if value & 2 else "-") + ("x" if value & 1 else "-")

    base = [(False, "user", "", bits(6)), (False, "group", "", bits(3)), (False, "other", "", bits(0))]
    acl = base + [a for a in entries if not a[0]]
    defaults = [a for a in entries if a[0]]
    if defaults:
        acl += [(True, k, n, p) for (_d, k, n, p) in base if not any(d[1] == k and not d[2] for d in defaults)] + defaults
    return [format_ace(a) for a in acl]


def _current_acl(path: str) -> t.Set[str]:
    out = subprocess.run(
        ["getfacl", "--omit-header", "--absolute-names", "--no-effective", "--numeric", "--", path],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        universal_newlines=True,
        check=False,
    )
    if out.returncode != 0:
        return set()
    return {line.strip() for line in out.stdout.splitlines() if line.strip() and not line.startswith("#")}


def _numeric_acl(entries: t.List[str]) -> t.Set[str]:
    result = set()
    for entry in entries:
        default = entry.startswith("default:")
        body = entry[len("default:") :] if default else entry
        kind, name, perms = body.split(":")
        if name and kind == "user":
            try:
                name = str(pwd.getpwnam(name).pw_uid) if not name.isdigit() else name
            except KeyError:
                pass
        elif name and kind == "group":
            try:
                name = str(grp.getgrnam(name).gr_gid) if not name.isdigit() else name
            except KeyError:
                pass
        result.add("%s%s:%s:%s" % ("default:" if default else "", kind, name, perms))
    return result


def pending_changes(path: str, kind: str, rule: PermissionRule) -> t.Dict[str, t.Any]:
    """What ``apply_rule`` would change on ``path`` now (all of it when the path does not exist)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    changes = {}  # type: t.Dict[str, t.Any]
    if rule.uid != -1 and (st is None or st.st_uid != rule.uid):
        changes["owner"] = rule.owner
    if rule.gid != -1 and (st is None or st.st_gid != rule.gid):
        changes["group"] = rule.group
    if kind == "symlink":
        return changes
    if rule.mode is not None and (st is None or stat.S_IMODE(st.st_mode) != rule.mode):
        changes["mode"] = "%04o" % rule.mode
    entries = _acl_entries(rule, kind)
    if entries:
        mode = rule.mode if rule.mode is not None else (stat.S_IMODE(st.st_mode) if st else 0o644)
        desired = _desired_acl(path, mode, entries)
        if st is None or _numeric_acl(_with_mask(desired)) != _current_acl(path):
            changes["acls"] = desired
    if rule.context and selinux_enabled() and (st is None or not _context_matches(path, rule.context)):
        changes["context"] = rule.context
    return changes


def _context_matches(path: str, context: t.Dict[str, t.Any]) -> bool:
    try:
        raw = os.getxattr(path, "security.selinux").rstrip(b"\0").decode("utf-8", "replace")
    except (OSError, AttributeError):
        return False
    parts = raw.split(":", 3)
    if len(parts) < 3:
        return False
    if parts[2] != str(context.get("type")):
        return False
    if context.get("name") and parts[0] != str(context["name"]):
        return False
    if context.get("range") and (len(parts) < 4 or parts[3] != str(context["range"])):
        return False
    return True


def _with_mask(entries: t.List[str]) -> t.List[str]:
    """Add the mask setfacl computes (union of group-class entries) when entries need one."""
    out = list(entries)
    for default in (False, True):
        prefix = "default:" if default else ""
        mine = [e[len(prefix) :] if default else e for e in entries if e.startswith("default:") == default]
        if not mine:
            continue
        named = [e for e in mine if (e.startswith("user:") or e.startswith("group:")) and e.split(":")[1]]
        if named and not any(e.startswith("mask:") for e in mine):
            union = set()
            for e in mine:
                kind, name, perms = e.split(":")
                if kind == "group" or (kind == "user" and name):
                    union.update(c for c in perms if c != "-")
            out.append(prefix + "mask::" + "".join(c if c in union else "-" for c in "rwx"))
    return out


def apply_rule(path: str, kind: str, rule: PermissionRule, warnings: t.List[str]) -> t.Dict[str, t.Any]:
    """Apply one rule to one path: lchown, chmod, setfacl, SELinux context. Returns the changes.

    chown comes first so that a setuid/setgid mode survives (the agent chowns last, which clears
    those bits); setfacl comes after chmod because chmod rewrites the ACL mask.
    """
    changes = pending_changes(path, kind, rule)
    if "owner" in changes or "group" in changes:
        os.lchown(path, rule.uid, rule.gid)
    if kind == "symlink":
        return changes
    if "mode" in changes:
        os.chmod(path, rule.mode)  # type: ignore[arg-type]
    if "acls" in changes:
        cmd = ["setfacl", "--set", ",".join(changes["acls"]), "--", path]
        out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
        if out.returncode != 0:
            raise DeployError("%s failed: %s" % (" ".join(cmd), out.stdout.strip()), path=path)
    if rule.context and not selinux_enabled():
        warnings.append("SELinux is not enabled on this host: context of %s skipped" % path)
    elif "context" in changes:
        set_context(path, rule.context)  # type: ignore[arg-type]
    return changes


def set_context(path: str, context: t.Dict[str, t.Any]) -> None:
    real = os.path.realpath(path)
    cmd = ["semanage", "fcontext", "-a"]
    if context.get("name"):
        cmd += ["-s", str(context["name"])]
    cmd += ["-t", str(context["type"])]
    if context.get("range"):
        cmd += ["-r", str(context["range"])]
    cmd.append(real)
    for command in (cmd, ["restorecon", "-v", real]):
        out = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
        if out.returncode != 0:
            raise DeployError("%s failed: %s" % (" ".join(command), out.stdout.strip()), path=path)


def remove_context(path: str) -> None:
    """Undo ``set_context`` (cleanup list ``semanage\\0<path>`` lines). Errors are ignored."""
    if selinux_enabled() and shutil.which("semanage"):
        subprocess.call(["semanage", "fcontext", "-d", path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
