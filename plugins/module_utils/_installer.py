# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The reserved Install event: AppSpec ``files`` and ``permissions``, planned first, then applied.

Python API::

    install_revision(archive_dir, appspec, *, root: DeploymentRoot, group_id, file_exists_behavior="DISALLOW",
                     check_mode=False, checkpoint=None) -> dict
        # {"changed", "file_exists_behavior", "plan": {...}, "warnings", "diff", "cleanup_file"}
        # raises InstallPlanError (details["errors"]: every problem) before touching any file
    plan_install(...)  -> InstallPlan   (the same, without acting)
    expand_files(archive_dir, files) -> (entries, errors)   # [(src, dest, kind)], kind mkdir|file|symlink
    read_cleanup(path) -> [str]; write_cleanup(path, entries)

Differences from the agent, on purpose:
- nothing is deleted before the whole plan is known to succeed (the agent cleans up the previous
  install first, so a DISALLOW conflict leaves the destination half empty);
- every conflict, permission overlap and unknown owner/group is reported at once;
- symlinks in the revision are installed as symlinks, directory links included (the agent copies a
  linked directory's contents, issue #152; we never follow a link out of the revision);
- a file or link we installed last time is ours: it is replaced in place (by rename) whatever the
  file_exists_behavior, and left alone when unchanged (so a re-run reports no change);
- a directory this group created and still provides stays recorded in the cleanup list;
- ``destination`` must be absolute; ``source`` may not leave the revision.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
import typing as t

from ansible_collections.appspec.deploy.plugins.module_utils import _permissions
from ansible_collections.appspec.deploy.plugins.module_utils._archive import remove_tree, walk_tree
from ansible_collections.appspec.deploy.plugins.module_utils._errors import DeployError, disk_error, free_bytes, host_name, is_disk_error
from ansible_collections.appspec.deploy.plugins.module_utils._fileutil import atomic_write_text, read_text
from ansible_collections.appspec.deploy.plugins.module_utils._layout import DeploymentRoot
from ansible_collections.appspec.deploy.plugins.module_utils._spec import FILE_EXISTS_BEHAVIORS

SEMANAGE_PREFIX = "semanage\0"

Checkpoint = t.Optional[t.Callable[[str], None]]


class InstallPlanError(DeployError):
    """The plan found problems; ``details["errors"]`` lists all of them. Nothing was touched."""


class Entry:
    """One planned path. ``action``: mkdir | file | symlink. ``disposition``:

    create (new), overwrite (a foreign file replaced, OVERWRITE), update (ours, content changed),
    unchanged (ours, identical), keep (a foreign file left alone, RETAIN), exists (a directory
    that is already there and not ours).
    """

    __slots__ = ("action", "src", "dest", "disposition", "replace_dir", "mode")

    def __init__(self, action: str, src: t.Optional[str], dest: str, mode: t.Optional[int] = None) -> None:
        self.action = action
        self.src = src
        self.dest = dest
        self.disposition = "create"
        self.replace_dir = False
        self.mode = mode

    @property
    def recorded(self) -> bool:
        """Goes into the new cleanup list (installed by this deployment)."""
        return self.disposition in ("create", "overwrite", "update", "unchanged")

    @property
    def kind(self) -> str:
        return "directory" if self.action == "mkdir" else ("symlink" if self.action == "symlink" else "file")


def _appspec_dict(appspec: t.Any) -> t.Dict[str, t.Any]:
    if appspec is None:
        return {}
    if hasattr(appspec, "appspec"):
        appspec = appspec.appspec
    if not isinstance(appspec, dict):
        raise DeployError("appspec must be a mapping, got %s" % type(appspec).__name__)
    return appspec


def effective_behavior(appspec: t.Any, deployment_value: t.Optional[str]) -> str:
    """The AppSpec's file_exists_behavior wins over the deployment's (agent precedence)."""
    value = _appspec_dict(appspec).get("file_exists_behavior") or deployment_value or "DISALLOW"
    value = str(value).upper()
    if value not in FILE_EXISTS_BEHAVIORS:
        raise DeployError("invalid file_exists_behavior %r: valid are %s" % (value, ", ".join(FILE_EXISTS_BEHAVIORS)))
    return value


def read_cleanup(path: str) -> t.List[str]:
    """The agent's cleanup list: one entry per line; a last line without newline is torn: ignored."""
    text = read_text(path)
    if not text:
        return []
    lines = text.split("\n")
    lines.pop()  # "" after a final newline, or a torn last line
    seen = set()
    result = []
    for line in lines:
        if line and line not in seen:
            seen.add(line)
            result.append(line)
    return result


def write_cleanup(path: str, entries: t.Sequence[str]) -> None:
    atomic_write_text(path, "".join(e + "\n" for e in entries))


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _missing_ancestors(dest: str) -> t.List[str]:
    """``dest`` and its ancestors that are not directories yet, top-down."""
    missing = []
    path = dest
    while path not in ("/", "") and not os.path.isdir(path):
        missing.append(path)
        path = os.path.dirname(path)
    return list(reversed(missing))


def expand_files(archive_dir: str, files: t.Optional[t.List[t.Dict[str, t.Any]]]) -> t.Tuple[t.List[t.Tuple[t.Optional[str], str, str]], t.List[str]]:
    """The AppSpec ``files`` as (src, dest, action) triples, action mkdir | file | symlink.

    A file source lands inside its destination directory; a directory source copies its
    contents; ``/`` is the whole revision. Missing destination directories come as mkdir entries.
    """
    archive = os.path.normpath(os.path.abspath(archive_dir))
    real_archive = os.path.realpath(archive)
    result = []  # type: t.List[t.Tuple[t.Optional[str], str, str]]
    errors = []  # type: t.List[str]
    for index, item in enumerate(files or []):
        label = "files[%d]" % index
        if not isinstance(item, dict) or not item.get("source") or not item.get("destination"):
            errors.append("%s needs a source and a destination" % label)
            continue
        source = str(item["source"]).strip()
        dest = str(item["destination"]).strip()
        if not os.path.isabs(dest):
            errors.append("%s: destination %r must be an absolute path" % (label, dest))
            continue
        dest = os.path.normpath(dest)
        rel = source.strip("/")
        src = os.path.normpath(os.path.join(archive, rel)) if rel else archive
        if not _inside(src, archive) or not _inside(os.path.realpath(os.path.dirname(src)) if src != archive else real_archive, real_archive):
            errors.append("%s: source %r leaves the revision" % (label, source))
            continue
        if not os.path.lexists(src):
            errors.append("%s: source %r does not exist in the revision" % (label, source))
            continue
        st = os.lstat(src)
        if stat.S_ISDIR(st.st_mode):
            result.extend((None, d, "mkdir") for d in _missing_ancestors(dest))
            for dirpath, dirnames, filenames in walk_tree(src):
                dirnames.sort()
                rel_dir = os.path.relpath(dirpath, src)
                target_dir = dest if rel_dir == "." else os.path.join(dest, rel_dir)
                keep = []
                for name in dirnames:
                    path = os.path.join(dirpath, name)
                    if os.path.islink(path):
                        result.append((path, os.path.join(target_dir, name), "symlink"))
                    else:
                        result.append((path, os.path.join(target_dir, name), "mkdir"))
                        keep.append(name)
                dirnames[:] = keep
                for name in sorted(filenames):
                    path = os.path.join(dirpath, name)
                    mode = os.lstat(path).st_mode
                    if stat.S_ISLNK(mode):
                        result.append((path, os.path.join(target_dir, name), "symlink"))
                    elif stat.S_ISREG(mode):
                        result.append((path, os.path.join(target_dir, name), "file"))
                    else:
                        errors.append("%s: %s is neither a file, a directory nor a symlink" % (label, os.path.relpath(path, archive)))
        elif stat.S_ISLNK(st.st_mode) or stat.S_ISREG(st.st_mode):
            result.extend((None, d, "mkdir") for d in _missing_ancestors(dest))
            result.append((src, os.path.join(dest, os.path.basename(src)), "symlink" if stat.S_ISLNK(st.st_mode) else "file"))
        else:
            errors.append("%s: source %r is neither a file, a directory nor a symlink" % (label, source))
    return result, errors


def _same_file(src: str, dest: str, action: str) -> bool:
    """Whether ``dest`` already holds what installing ``src`` would put there (content or link target)."""
    try:
        dst = os.lstat(dest)
        sst = os.lstat(src)
    except OSError:
        return False
    if action == "symlink":
        return stat.S_ISLNK(dst.st_mode) and os.readlink(src) == os.readlink(dest)
    if not stat.S_ISREG(dst.st_mode) or dst.st_size != sst.st_size:
        return False
    return files_equal(src, dest)


def files_equal(a: str, b: str, bufsize: int = 1 << 16) -> bool:
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            ca = fa.read(bufsize)
            cb = fb.read(bufsize)
            if ca != cb:
                return False
            if not ca:
                return True


class InstallPlan:
    """Everything ``install_revision`` will do; ``errors`` must be empty to act."""

    def __init__(self) -> None:
        self.behavior = "DISALLOW"
        self.entries = []  # type: t.List[Entry]
        self.previous = []  # type: t.List[str]
        self.remove = []  # type: t.List[str]
        self.permissions = {}  # type: t.Dict[str, _permissions.PermissionRule]
        self.permission_changes = {}  # type: t.Dict[str, t.Dict[str, t.Any]]
        self.errors = []  # type: t.List[str]
        self.warnings = []  # type: t.List[str]
        self.cleanup_file = ""

    @property
    def recorded(self) -> t.List[str]:
        out = [e.dest for e in self.entries if e.recorded]
        out += [SEMANAGE_PREFIX + os.path.realpath(p) for p, r in self.permissions.items() if r.context and _permissions.selinux_enabled()]
        return out

    def summary(self) -> t.Dict[str, t.Any]:
        def of(action: t.Optional[str], *dispositions: str) -> t.List[str]:
            return [e.dest for e in self.entries if e.disposition in dispositions and (action is None or (e.action == "mkdir") == (action == "mkdir"))]

        return {
            "file_exists_behavior": self.behavior,
            "mkdir": of("mkdir", "create"),
            "create": of("file", "create"),
            "overwrite": of("file", "overwrite"),
            "update": of("file", "update"),
            "keep": of("file", "keep"),
            "conflict": of(None, "conflict"),
            "unchanged": len(of(None, "unchanged")),
            "remove": list(self.remove),
            "permissions": [{"path": p, "changes": c} for p, c in sorted(self.permission_changes.items())],
        }

    @property
    def changed(self) -> bool:
        return bool(
            self.remove
            or self.permission_changes
            or any(e.disposition in ("create", "overwrite", "update") for e in self.entries)
            or self.recorded != self.previous
        )


def plan_install(
    archive_dir: str,
    appspec: t.Any,
    *,
    root: DeploymentRoot,
    group_id: str,
    file_exists_behavior: t.Optional[str] = "DISALLOW",
) -> InstallPlan:
    """Look at the revision, the previous cleanup list and the disk; decide everything; touch nothing."""
    spec = _appspec_dict(appspec)
    plan = InstallPlan()
    plan.behavior = effective_behavior(spec, file_exists_behavior)
    plan.cleanup_file = root.cleanup_file(group_id)
    plan.previous = read_cleanup(plan.cleanup_file)
    ours = set(p for p in plan.previous if not p.startswith(SEMANAGE_PREFIX))

    expanded, errors = expand_files(archive_dir, spec.get("files"))
    plan.errors.extend(errors)

    by_dest = {}  # type: t.Dict[str, Entry]
    for src, dest, action in expanded:
        other = by_dest.get(dest)
        if other is not None:
            if action == "mkdir" and other.action == "mkdir":
                continue  # duplicate mkdirs merge
            if action != "mkdir" and other.action != "mkdir":
                plan.errors.append("two sources, %s and %s, for the same destination %s" % (other.src, src, dest))
            else:
                plan.errors.append("%s is both a directory and a file to install" % dest)
            continue
        # Directories of ours above this path stay ours (or they would be removed as not provided).
        ancestors = []
        parent = os.path.dirname(dest)
        while parent not in ("/", "") and parent in ours and parent not in by_dest:
            ancestors.append(parent)
            parent = os.path.dirname(parent)
        for path in reversed(ancestors):
            by_dest[path] = Entry("mkdir", None, path)
            plan.entries.append(by_dest[path])
        mode = stat.S_IMODE(os.lstat(src).st_mode) if (src and action == "mkdir") else None
        entry = Entry(action, src, dest, mode)
        by_dest[dest] = entry
        plan.entries.append(entry)

    for entry in plan.entries:
        dest = entry.dest
        exists = os.path.lexists(dest)
        is_real_dir = exists and os.path.isdir(dest) and not os.path.islink(dest)
        if entry.action == "mkdir":
            if os.path.isdir(dest):
                entry.disposition = "unchanged" if dest in ours else "exists"
            elif exists and dest in ours:
                entry.disposition = "create"  # our old file or link becomes a directory
            elif exists:
                entry.disposition = "conflict"
                plan.errors.append("%s exists and is not a directory" % dest)
            continue
        if not exists:
            entry.disposition = "create"
        elif dest in ours:
            if is_real_dir:
                foreign = _foreign_content(dest, ours)
                if foreign:
                    entry.disposition = "conflict"
                    plan.errors.append(
                        "%s was a directory of the previous install and now holds other files (%s); it cannot become a file" % (dest, ", ".join(foreign[:3]))
                    )
                    continue
                entry.replace_dir = True
                entry.disposition = "update"
            else:
                entry.disposition = "unchanged" if _same_file(entry.src or "", dest, entry.action) else "update"
        elif plan.behavior == "DISALLOW":
            entry.disposition = "conflict"
            plan.errors.append("a file already exists at %s (file_exists_behavior DISALLOW)" % dest)
        elif plan.behavior == "RETAIN":
            entry.disposition = "keep"
        elif is_real_dir:
            entry.disposition = "conflict"
            plan.errors.append("a directory exists at %s where a file is to be installed; OVERWRITE does not replace directories" % dest)
        else:
            entry.disposition = "overwrite"

    # What the previous install made and this one no longer provides (or provides as another type).
    provided = {e.dest: e for e in plan.entries if e.recorded}
    for path in reversed(plan.previous):
        if path.startswith(SEMANAGE_PREFIX):
            continue
        entry = provided.get(path)
        if entry is None or entry.replace_dir or (entry.action == "mkdir" and entry.disposition == "create" and os.path.lexists(path)):
            if os.path.lexists(path):
                plan.remove.append(path)

    rules, errors = _permissions.parse_rules(spec.get("permissions"))
    plan.errors.extend(errors)
    installed = [(e.dest, e.kind) for e in plan.entries if e.recorded]
    planned_dirs = set(e.dest for e in plan.entries if e.action == "mkdir")
    assignments, errors, warnings = _permissions.plan_permissions(rules, installed, lambda p: p in planned_dirs or os.path.isdir(p))
    plan.errors.extend(errors)
    plan.warnings.extend(warnings)
    plan.permissions = assignments
    if any(r.context for r in rules) and not _permissions.selinux_enabled():
        plan.warnings.append("SELinux is not enabled on this host: permission contexts are skipped")
    # An unchanged file of ours whose mode or owner drifted from what this install gives it is
    # installed again (content equal is not enough).
    for entry in plan.entries:
        if entry.disposition == "unchanged" and entry.action == "file" and entry.src:
            if _drifted(entry.src, entry.dest, assignments.get(entry.dest)):
                entry.disposition = "update"
    kinds = dict(installed)
    for path, rule in assignments.items():
        fresh = by_dest[path].disposition in ("create", "overwrite", "update") if path in by_dest else False
        probe = "/nonexistent/%s" % path if fresh else path
        changes = _permissions.pending_changes(probe, kinds[path], rule)
        if changes:
            plan.permission_changes[path] = changes
    return plan


def _drifted(src: str, dest: str, rule: t.Optional[_permissions.PermissionRule]) -> bool:
    sst = os.lstat(src)
    dst = os.lstat(dest)
    want_mode = rule.mode if rule is not None and rule.mode is not None else stat.S_IMODE(sst.st_mode)
    if stat.S_IMODE(dst.st_mode) != want_mode:
        return True
    if os.geteuid() == 0:
        want_uid = rule.uid if rule is not None and rule.uid != -1 else sst.st_uid
        want_gid = rule.gid if rule is not None and rule.gid != -1 else sst.st_gid
        if (dst.st_uid, dst.st_gid) != (want_uid, want_gid):
            return True
    return False


def _foreign_content(directory: str, ours: t.Set[str]) -> t.List[str]:
    found = []
    for dirpath, dirnames, filenames in walk_tree(directory):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            if path not in ours:
                found.append(path)
    return found


def _copy_into_place(src: str, dest: str) -> None:
    """Copy ``src`` next to ``dest`` under a temp name (mode, times, owner when root), then rename."""
    directory = os.path.dirname(dest)
    fd, tmp = tempfile.mkstemp(prefix=".appspec-tmp-", dir=directory)
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        shutil.copystat(src, tmp)
        if os.geteuid() == 0:
            st = os.lstat(src)
            os.chown(tmp, st.st_uid, st.st_gid)
            os.chmod(tmp, stat.S_IMODE(st.st_mode))
        os.replace(tmp, dest)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise


def _link_into_place(src: str, dest: str) -> None:
    directory = os.path.dirname(dest)
    tmp = os.path.join(directory, ".appspec-tmp-%d-%s" % (os.getpid(), os.path.basename(dest)))
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(os.readlink(src), tmp)
    try:
        if os.geteuid() == 0:
            st = os.lstat(src)
            os.lchown(tmp, st.st_uid, st.st_gid)
        os.replace(tmp, dest)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise


def _remove(path: str, warnings: t.List[str]) -> None:
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            os.rmdir(path)
        else:
            os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as err:
        if err.errno in (errno.ENOTEMPTY, errno.EEXIST):
            warnings.append("%s holds files of other origin: kept" % path)
        else:
            raise DeployError("cannot remove %s of the previous install: %s" % (path, err), path=path)


def install_revision(
    archive_dir: str,
    appspec: t.Any,
    *,
    root: DeploymentRoot,
    group_id: str,
    file_exists_behavior: t.Optional[str] = "DISALLOW",
    check_mode: bool = False,
    checkpoint: Checkpoint = None,
) -> t.Dict[str, t.Any]:
    """Plan, then (unless ``check_mode``) apply. See the module docstring.

    Crash safety: before the first change, the cleanup list is rewritten as the union of the
    previous list and everything this install will create, so a crash at any point leaves a list
    that covers every file of ours on disk; it is narrowed to this install's files at the end.
    ``checkpoint(name)`` is called between steps (tests use it to kill the process there).
    """
    plan = plan_install(archive_dir, appspec, root=root, group_id=group_id, file_exists_behavior=file_exists_behavior)
    if plan.errors:
        raise InstallPlanError(
            "Install of %s: %d problem(s), nothing was changed: %s" % (archive_dir, len(plan.errors), "; ".join(plan.errors)),
            errors=plan.errors,
            plan=plan.summary(),
        )
    result = {
        "changed": plan.changed,
        "file_exists_behavior": plan.behavior,
        "plan": plan.summary(),
        "warnings": list(plan.warnings),
        "cleanup_file": plan.cleanup_file,
        "diff": {
            "before_header": plan.cleanup_file,
            "after_header": plan.cleanup_file,
            "before": "".join(p.replace("\0", " ") + "\n" for p in plan.previous),
            "after": "".join(p.replace("\0", " ") + "\n" for p in plan.recorded),
        },
    }  # type: t.Dict[str, t.Any]
    if check_mode or not plan.changed:
        return result
    _check_room(plan)
    _apply(plan, result, checkpoint)
    return result


def _check_room(plan: "InstallPlan") -> None:
    """Refuse before the first change when the files to write do not fit their file systems.

    Each file is written beside its destination and renamed over the old one, which is freed then:
    a file system needs the new sizes minus the old ones, and never less than its largest file."""
    needs = {}  # type: t.Dict[int, t.List[t.Any]]  # st_dev -> [directory, bytes, largest]
    for entry in plan.entries:
        if entry.action != "file" or entry.disposition not in ("create", "overwrite", "update"):
            continue
        try:
            size = os.path.getsize(entry.src or "")
            old = os.lstat(entry.dest).st_size if os.path.isfile(entry.dest) and not os.path.islink(entry.dest) else 0
        except OSError:
            continue
        parent = os.path.dirname(entry.dest)
        while not os.path.isdir(parent) and os.path.dirname(parent) != parent:
            parent = os.path.dirname(parent)
        need = needs.setdefault(os.stat(parent).st_dev, [parent, 0, 0])
        need[1] += size - old
        need[2] = max(need[2], size)
    for directory, total, largest in needs.values():
        wanted = max(total, largest)
        free = free_bytes(directory)
        if free is not None and wanted > free:
            raise DeployError("on host %s, Install needs about %d bytes for the files under %s but only %d bytes are free: "
                              "nothing was changed" % (host_name(), wanted, directory, free),
                              host=host_name(), path=directory, needed_bytes=wanted, free_bytes=free)


def _apply_entry(entry: Entry) -> None:
    if entry.action == "mkdir":
        if os.path.lexists(entry.dest) and not os.path.isdir(entry.dest):
            os.unlink(entry.dest)
        os.mkdir(entry.dest, 0o700)
        os.chmod(entry.dest, entry.mode if entry.mode is not None else 0o755)
        if entry.src and os.geteuid() == 0:
            st = os.lstat(entry.src)
            os.chown(entry.dest, st.st_uid, st.st_gid)
        return
    if entry.replace_dir and os.path.isdir(entry.dest) and not os.path.islink(entry.dest):
        remove_tree(entry.dest)
    if entry.action == "symlink":
        _link_into_place(entry.src or "", entry.dest)
    else:
        _copy_into_place(entry.src or "", entry.dest)


def _apply(plan: "InstallPlan", result: t.Dict[str, t.Any], checkpoint: Checkpoint) -> None:
    tick = checkpoint or (lambda _name: None)

    recorded = plan.recorded
    previous = set(plan.previous)
    union = list(plan.previous) + [p for p in recorded if p not in previous]
    if union != plan.previous:
        write_cleanup(plan.cleanup_file, union)
    tick("cleanup-union")

    warnings = result["warnings"]
    recorded_set = set(recorded)
    for line in plan.previous:
        if line.startswith(SEMANAGE_PREFIX) and line not in recorded_set:
            _permissions.remove_context(line[len(SEMANAGE_PREFIX) :])
    for path in plan.remove:
        _remove(path, warnings)
        tick("remove")

    for entry in plan.entries:
        if entry.disposition not in ("create", "overwrite", "update"):
            continue
        try:
            _apply_entry(entry)
        except OSError as err:  # a bare [Errno 28] / [Errno 36] says nothing: where, how much
            if is_disk_error(err):
                raise disk_error(err, "Install (copying the revision's files)", os.path.dirname(entry.dest), aftermath=(
                    "the files written so far stay, listed in %s for the next deployment to replace or remove; free "
                    "some space and deploy again" % plan.cleanup_file))
            raise
        tick(entry.action)

    kinds = {e.dest: e.kind for e in plan.entries}
    applied = []
    for path, rule in sorted(plan.permissions.items()):
        changes = _permissions.apply_rule(path, kinds[path], rule, warnings)
        if changes:
            applied.append({"path": path, "changes": changes})
        tick("permission")
    result["plan"]["permissions"] = applied

    if recorded != union:
        write_cleanup(plan.cleanup_file, recorded)
    tick("cleanup-final")
