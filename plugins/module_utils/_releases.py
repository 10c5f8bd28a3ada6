# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Release directories (Capistrano / ansistrano / deploy_helper style) with an atomic ``current``.

Python API::

    rr = ReleaseRoot(release_root)
    rr.create_release(deployment_id, archive_dir, appspec=None, sha256=None, shared_paths=(),
                      link_unchanged=True, check_mode=False, checkpoint=None) -> dict
    rr.switch(deployment_id, check_mode=False, checkpoint=None) -> {"changed", "current", "previous"}
    rr.mark(deployment_id, "good" | "bad", check_mode=False) -> {"changed", "status"}
    rr.prune(keep, protect=(), check_mode=False) -> {"changed", "removed", "warnings"}
    rr.rollback_target(explicit=None) -> deployment id (DeployError when there is none)
    rr.rollback(explicit=None, check_mode=False) -> switch() result plus "target"
    rr.current_release() / rr.previous_release() -> Optional[deployment id]
    rr.release_dir(deployment_id) -> path;  rr.releases() -> [dict] in creation order

Layout::

    <release_root>/releases/<deployment-id>/   one release; holds .appspec-unfinished until complete
    <release_root>/shared/                     shared_paths live here, linked into every release
    <release_root>/current -> releases/<id>    relative link, replaced by rename(2) only
    <release_root>/.appspec-releases.json      release log: id, sha256, status, times, order

Rules:
- a release directory appears under its final name already holding the unfinished marker (it is
  made under a temp name and renamed), and the marker goes only after everything is in place and
  synced: any ``releases/<id>`` without the marker is complete;
- files identical to the previous release's (same size, mode, owner and byte-for-byte content)
  are hardlinked from it when ``link_unchanged`` is on (default). Hardlinked files share their
  inode across releases, so THE APPLICATION MUST NOT WRITE IN PLACE INTO ITS RELEASE FILES (writing
  a new file and renaming it over is fine): keep writable data in ``shared/``, or turn
  ``link_unchanged`` off;
- order is the log's creation order (``seq``), never mtime; the rollback target is the release
  before ``current`` marked good;
- pruning counts finished releases only, never removes ``current``, the previous good release or
  an unfinished one, and turns its failures into warnings;
- a release that fails while it is made (a full disk, say) is removed at once: no ``releases/<id>``
  is left holding its unfinished marker, ``current`` is never touched, and the error names the host,
  the release root and the bytes needed and free. What the revision takes on disk (each file rounded up to
  the file system's block, plus a block per entry, as for unpacking) is checked against the free
  space before the first file is copied. Unfinished releases left by a killed run (their creator's
  pid is gone) are removed when the next release is made.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import stat
import time
import typing as t

from ansible_collections.appspec.deploy.plugins.module_utils import _permissions
from ansible_collections.appspec.deploy.plugins.module_utils._archive import block_size, disk_usage, remove_tree, walk_tree
from ansible_collections.appspec.deploy.plugins.module_utils._errors import DeployError, disk_error, free_bytes, host_name, is_disk_error
from ansible_collections.appspec.deploy.plugins.module_utils._installer import _appspec_dict, expand_files, files_equal
from ansible_collections.appspec.deploy.plugins.module_utils._fileutil import atomic_write_text, read_text, replace_symlink
from ansible_collections.appspec.deploy.plugins.module_utils._layout import check_id

UNFINISHED_MARKER = ".appspec-unfinished"
RELEASE_LOG = ".appspec-releases.json"
STATUSES = ("unfinished", "complete", "good", "bad")
MAX_LOG_ENTRIES = 200

Checkpoint = t.Optional[t.Callable[[str], None]]


def _now() -> float:
    return round(time.time(), 3)


def _check_rel(path: str, what: str) -> str:
    norm = os.path.normpath(str(path).strip())
    if not norm or norm == "." or os.path.isabs(norm) or norm == ".." or norm.startswith("../"):
        raise DeployError("%s %r must be a relative path inside the release" % (what, path))
    return norm


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ReleaseRoot:
    """One ``release_root``; see the module docstring."""

    def __init__(self, release_root: str) -> None:
        if not release_root:
            raise DeployError("release_root must be set")
        self.root = os.path.normpath(os.path.abspath(release_root))
        self.releases_dir = os.path.join(self.root, "releases")
        self.shared_dir = os.path.join(self.root, "shared")
        self.current_link = os.path.join(self.root, "current")
        self.log_path = os.path.join(self.root, RELEASE_LOG)

    # ----------------------------------------------------------------- log and listing
    def release_dir(self, deployment_id: str) -> str:
        return os.path.join(self.releases_dir, check_id(deployment_id, "deployment id"))

    def _read_log(self) -> t.Dict[str, t.Any]:
        text = read_text(self.log_path)
        if text is None:
            return {"version": 1, "releases": []}
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or not isinstance(data.get("releases"), list):
                raise ValueError("not a release log")
        except ValueError:
            # The log is written atomically, so this is foreign damage: keep it aside, start again.
            os.replace(self.log_path, self.log_path + ".corrupt")
            return {"version": 1, "releases": []}
        return data

    def _write_log(self, data: t.Dict[str, t.Any]) -> None:
        entries = data["releases"]
        if len(entries) > MAX_LOG_ENTRIES:
            live = set(self._dir_names())
            drop = len(entries) - MAX_LOG_ENTRIES
            kept = []
            for entry in entries:
                if drop and entry.get("id") not in live:
                    drop -= 1
                    continue
                kept.append(entry)
            data["releases"] = kept
        atomic_write_text(self.log_path, json.dumps(data, indent=1, sort_keys=True) + "\n")

    def _update(self, deployment_id: str, **fields: t.Any) -> t.Dict[str, t.Any]:
        data = self._read_log()
        for entry in data["releases"]:
            if entry.get("id") == deployment_id:
                entry.update(fields)
                break
        else:
            seq = max([e.get("seq", 0) for e in data["releases"]] + [0]) + 1
            entry = dict({"id": deployment_id, "seq": seq}, **fields)
            data["releases"].append(entry)
        self._write_log(data)
        return entry

    def _dir_names(self) -> t.List[str]:
        try:
            names = os.listdir(self.releases_dir)
        except FileNotFoundError:
            return []
        return sorted(
            n
            for n in names
            if not n.startswith(".") and os.path.isdir(os.path.join(self.releases_dir, n)) and not os.path.islink(os.path.join(self.releases_dir, n))
        )

    def is_finished(self, deployment_id: str) -> bool:
        path = self.release_dir(deployment_id)
        return os.path.isdir(path) and not os.path.lexists(os.path.join(path, UNFINISHED_MARKER))

    def releases(self) -> t.List[t.Dict[str, t.Any]]:
        """Releases on disk, oldest first (log order; releases unknown to the log come first)."""
        log = {e.get("id"): e for e in self._read_log()["releases"]}
        out = []
        for name in self._dir_names():
            entry = dict(log.get(name) or {"id": name, "seq": 0, "status": "unknown"})
            finished = self.is_finished(name)
            entry["finished"] = finished
            if finished and entry.get("status") in ("unfinished", None):
                entry["status"] = "complete"  # crashed between removing the marker and the log
            if not finished:
                entry["status"] = "unfinished"
            entry["path"] = self.release_dir(name)
            out.append(entry)
        out.sort(key=lambda e: (e.get("seq", 0), e["id"]))
        return out

    def current_release(self) -> t.Optional[str]:
        """The deployment id ``current`` points at (None when absent or pointing elsewhere)."""
        try:
            target = os.readlink(self.current_link)
        except (FileNotFoundError, OSError):
            return None
        full = os.path.normpath(os.path.join(self.root, target))
        if os.path.dirname(full) != self.releases_dir:
            return None
        return os.path.basename(full)

    def previous_release(self) -> t.Optional[str]:
        """The finished release created just before ``current`` (None when there is none)."""
        current = self.current_release()
        finished = [r["id"] for r in self.releases() if r["finished"]]
        if current not in finished:
            return finished[-1] if finished and current is None else None
        index = finished.index(current)
        return finished[index - 1] if index > 0 else None

    def rollback_target(self, explicit: t.Optional[str] = None) -> str:
        """``explicit`` when given (must be a finished release); else the release before current marked good."""
        listing = [r for r in self.releases() if r["finished"]]
        if explicit:
            check_id(explicit, "release")
            if not any(r["id"] == explicit for r in listing):
                raise DeployError("release %s does not exist or is unfinished under %s" % (explicit, self.releases_dir))
            return explicit
        current = self.current_release()
        ids = [r["id"] for r in listing]
        before = listing[: ids.index(current)] if current in ids else listing
        for entry in reversed(before):
            if entry.get("status") == "good":
                return entry["id"]
        raise DeployError(
            "no release before %s is marked good under %s: name one explicitly" % (current or "(no current)", self.root),
            current=current,
        )

    # ----------------------------------------------------------------- create
    def _link_base(self, exclude: str) -> t.Optional[str]:
        current = self.current_release()
        if current and current != exclude and self.is_finished(current):
            return self.release_dir(current)
        finished = [r["id"] for r in self.releases() if r["finished"] and r["id"] != exclude]
        return self.release_dir(finished[-1]) if finished else None

    def _entries(self, archive_dir: str, appspec: t.Any) -> t.Tuple[t.List[t.Tuple[str, str, str]], t.List[str]]:
        """(src, rel, action) to materialize, parents first; and files entries outside the release."""
        files = _appspec_dict(appspec).get("files") if appspec is not None else None
        prefix = self.current_link + "/"
        outside = []
        selected = []
        for item in files or []:
            dest = os.path.normpath(str(item.get("destination", "")).strip()) if isinstance(item, dict) else ""
            if dest == self.current_link or dest.startswith(prefix):
                selected.append(item)
            else:
                outside.append(dest)
        if selected:
            expanded, errors = expand_files(archive_dir, selected)
            if errors:
                raise DeployError("files under %s: %s" % (self.current_link, "; ".join(errors)), errors=errors)
            out = []  # type: t.List[t.Tuple[str, str, str]]
            seen = {}  # type: t.Dict[str, str]
            for src, dest, action in expanded:
                if dest == self.current_link or not dest.startswith(prefix):
                    continue
                rel = dest[len(prefix) :]
                # Parents are made in the new release whatever exists under the old `current`.
                missing = []
                parent = os.path.dirname(rel)
                while parent and parent not in seen:
                    missing.append(parent)
                    parent = os.path.dirname(parent)
                for directory in reversed(missing):
                    seen[directory] = "mkdir"
                    out.append(("", directory, "mkdir"))
                if rel in seen:
                    if action != "mkdir" or seen[rel] != "mkdir":
                        raise DeployError("two sources for the same release path %s" % rel)
                    continue
                seen[rel] = action
                out.append((src or "", rel, action))
            return out, outside
        out = []
        archive = os.path.abspath(archive_dir)
        if not os.path.isdir(archive):
            raise DeployError("revision directory %s does not exist" % archive_dir)
        for dirpath, dirnames, filenames in walk_tree(archive):
            dirnames.sort()
            keep = []
            for name in dirnames:
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, archive)
                if os.path.islink(path):
                    out.append((path, rel, "symlink"))
                else:
                    out.append((path, rel, "mkdir"))
                    keep.append(name)
            dirnames[:] = keep
            for name in sorted(filenames):
                path = os.path.join(dirpath, name)
                mode = os.lstat(path).st_mode
                rel = os.path.relpath(path, archive)
                if stat.S_ISLNK(mode):
                    out.append((path, rel, "symlink"))
                elif stat.S_ISREG(mode):
                    out.append((path, rel, "file"))
                else:
                    raise DeployError("%s in the revision is neither a file, a directory nor a symlink" % rel)
        return out, outside

    def create_release(
        self,
        deployment_id: str,
        archive_dir: str,
        appspec: t.Any = None,
        sha256: t.Optional[str] = None,
        shared_paths: t.Sequence[str] = (),
        *,
        link_unchanged: bool = True,
        check_mode: bool = False,
        checkpoint: Checkpoint = None,
    ) -> t.Dict[str, t.Any]:
        """Materialize the revision as ``releases/<deployment_id>`` (see the module docstring).

        Idempotent: an existing finished release of the same id (and sha256, when known) is left
        alone. An unfinished one of the same id is a crashed attempt: it is rebuilt.
        """
        tick = checkpoint or (lambda _name: None)
        path = self.release_dir(deployment_id)
        shared = [_check_rel(p, "shared path") for p in shared_paths]
        if os.path.lexists(self.current_link) and not os.path.islink(self.current_link):
            raise DeployError("%s is a real directory or file, not a link: move it away first; it is never deleted" % self.current_link)
        entry = {e.get("id"): e for e in self._read_log()["releases"]}.get(deployment_id, {})
        result = {
            "changed": False,
            "release_dir": path,
            "deployment_id": deployment_id,
            "linked": 0,
            "copied": 0,
            "files_outside_release": [],
        }  # type: t.Dict[str, t.Any]
        if self.is_finished(deployment_id):
            if sha256 and entry.get("sha256") and entry["sha256"] != sha256:
                raise DeployError("release %s already exists with another revision (sha256 %s, not %s)" % (deployment_id, entry["sha256"], sha256))
            return result
        entries, outside = self._entries(archive_dir, appspec)
        rules = self._permission_plan(appspec, entries)
        result["files_outside_release"] = outside
        result["changed"] = True
        result["rebuilt"] = os.path.isdir(path)
        if check_mode:
            result["files"] = sum(1 for e in entries if e[2] != "mkdir")
            return result

        base = self._link_base(deployment_id) if link_unchanged else None
        result["pruned_unfinished"] = self._prune_abandoned(deployment_id)
        needed = self._check_room(entries, base)
        try:
            self._make_release(deployment_id, path, archive_dir, sha256, entries, rules, base, shared, result, tick)
        except BaseException as err:
            self._abandon(deployment_id, path)
            if isinstance(err, OSError) and is_disk_error(err):
                raise disk_error(err, "Install (making the release %s)" % deployment_id, self.root, needed,
                                 aftermath="the unfinished release was removed, %s was not touched" % self.current_link)
            raise
        result["files"] = result["linked"] + result["copied"]
        return result

    def _check_room(self, entries: t.List[t.Tuple[str, str, str]], base: t.Optional[str]) -> int:
        """About the bytes the new release takes on the release root's file system, counted as the archive
        check does (:func:`_archive.disk_usage`): each file rounded up to the file system's block, plus a block
        per entry (directories, links); a file that will be hardlinked from ``base`` costs its entry only.
        Refuse before anything is written when the file system has less free."""
        parent = self.releases_dir if os.path.isdir(self.releases_dir) else self.root
        sizes = []  # type: t.List[int]
        for src, rel, action in entries:
            if action != "file":
                continue
            try:
                size = os.lstat(src).st_size
            except OSError:
                continue
            try:
                if base and os.lstat(os.path.join(base, rel)).st_size == size:
                    continue  # probably linked: costs no data
            except OSError:
                pass
            sizes.append(size)
        needed = disk_usage(sizes, len(entries), block_size(parent))
        free = free_bytes(parent)
        if free is not None and needed > free:
            raise DeployError("on host %s, Install needs about %d bytes for the release in %s but only %d bytes are free: "
                              "refused before anything was written, %s was not touched"
                              % (host_name(), needed, self.root, free, self.current_link),
                              host=host_name(), path=self.root, needed_bytes=needed, free_bytes=free)
        return needed

    def _abandon(self, deployment_id: str, path: str) -> None:
        """A release that failed while being made: gone at once (first, it frees the space), then logged."""
        for leftover in (path, os.path.join(self.releases_dir, ".%s.new-%d" % (deployment_id, os.getpid()))):
            try:
                if os.path.lexists(leftover):
                    self._discard(leftover) if leftover == path else remove_tree(leftover)
            except OSError:
                pass  # pruned by the next release (its creator is gone by then)
        try:
            self._update(deployment_id, status="unfinished", failed_at=_now())
        except (OSError, DeployError):
            pass

    def _prune_abandoned(self, deployment_id: str) -> t.List[str]:
        """Remove the unfinished releases of runs that are over (their creator pid is gone), but this one's
        own, which is rebuilt. Failures are left for next time."""
        removed = []
        for name in self._dir_names():
            if name == deployment_id or self.is_finished(name):
                continue
            if _creator_alive(os.path.join(self.releases_dir, name, UNFINISHED_MARKER)):
                continue
            try:
                self._discard(os.path.join(self.releases_dir, name))
            except OSError:
                continue
            removed.append(name)
        return removed

    def _make_release(self, deployment_id: str, path: str, archive_dir: str, sha256: t.Optional[str],
                      entries: t.List[t.Tuple[str, str, str]], rules: t.Dict[str, _permissions.PermissionRule],
                      base: t.Optional[str], shared: t.List[str], result: t.Dict[str, t.Any],
                      tick: t.Callable[[str], None]) -> None:
        os.makedirs(self.releases_dir, mode=0o755, exist_ok=True)
        self._update(deployment_id, sha256=sha256, status="unfinished", created=_now(), finished_at=None, archive_dir=archive_dir)
        tick("log-unfinished")
        if os.path.isdir(path):
            self._discard(path)
            tick("discarded-unfinished")
        staging = os.path.join(self.releases_dir, ".%s.new-%d" % (deployment_id, os.getpid()))
        if os.path.lexists(staging):
            remove_tree(staging)
        os.mkdir(staging, 0o755)
        with open(os.path.join(staging, UNFINISHED_MARKER), "w", encoding="utf-8") as handle:
            handle.write("%s %d\n" % (deployment_id, os.getpid()))
        tick("staged")
        os.rename(staging, path)
        tick("renamed")

        dir_modes = []
        for src, rel, action in entries:
            dest = os.path.join(path, rel)
            if action == "mkdir":
                os.mkdir(dest, 0o755)
                if src:
                    dir_modes.append((dest, src))
            elif action == "symlink":
                os.symlink(os.readlink(src), dest)
                if os.geteuid() == 0:
                    st = os.lstat(src)
                    os.lchown(dest, st.st_uid, st.st_gid)
            else:
                previous = os.path.join(base, rel) if base else None
                rule = rules.get(rel)
                if previous and (rule is None or not (rule.acls or rule.context)) and _linkable(src, previous, rule):
                    os.link(previous, dest)
                    result["linked"] += 1
                else:
                    shutil.copy2(src, dest)
                    if os.geteuid() == 0:
                        st = os.lstat(src)
                        os.chown(dest, st.st_uid, st.st_gid)
                    result["copied"] += 1
            tick("file")
        for dest, src in reversed(dir_modes):
            st = os.lstat(src)
            if os.geteuid() == 0:
                os.chown(dest, st.st_uid, st.st_gid)
            os.chmod(dest, stat.S_IMODE(st.st_mode))

        actions = dict((e[1], e[2]) for e in entries) if rules else {}
        for rel, rule in sorted(rules.items()):
            kind = {"mkdir": "directory", "symlink": "symlink"}.get(actions.get(rel, ""), "file")
            full = os.path.join(path, rel)
            if kind == "file" and os.lstat(full).st_nlink > 1 and not _permissions.pending_changes(full, kind, rule):
                continue  # a hardlinked file already right: never touch the shared inode
            _permissions.apply_rule(full, kind, rule, result.setdefault("warnings", []))
        tick("permissions")
        for rel in shared:
            self._link_shared(path, rel)
            tick("shared")
        os.sync()
        tick("synced")
        os.unlink(os.path.join(path, UNFINISHED_MARKER))
        _fsync_dir(path)
        tick("marker-removed")
        self._update(deployment_id, status="complete", finished_at=_now())
        tick("log-complete")

    def _permission_plan(self, appspec: t.Any, entries: t.List[t.Tuple[str, str, str]]) -> t.Dict[str, _permissions.PermissionRule]:
        """The AppSpec permissions that reach what is installed under ``current``, per release-relative path.

        Their object is ``current``, below it, or above it (``/opt/app`` over ``/opt/app/current``: the agent applies
        such a rule to every installed file it matches, so does a release).
        """
        spec = _appspec_dict(appspec) if appspec is not None else {}
        prefix = self.current_link + "/"
        wanted = [p for p in spec.get("permissions") or []
                  if isinstance(p, dict) and _permissions.reaches(str(p.get("object") or "/"), self.current_link)]
        if not wanted:
            return {}
        rules, errors = _permissions.parse_rules(wanted)
        kinds = {"mkdir": "directory", "symlink": "symlink", "file": "file"}
        installed = [(prefix + rel, kinds[action]) for _src, rel, action in entries]
        dirs = set(p for p, k in installed if k == "directory") | {self.current_link}
        assignments, more, _warnings = _permissions.plan_permissions(
            rules, installed, lambda p: p in dirs or prefix.startswith(p.rstrip("/") + "/"))  # current's parents exist
        errors += more
        if errors:
            raise DeployError("permissions for the release: %s" % "; ".join(errors), errors=errors)
        return {path[len(prefix) :]: rule for path, rule in assignments.items()}

    def _link_shared(self, release: str, rel: str) -> None:
        shared = os.path.join(self.shared_dir, rel)
        inside = os.path.join(release, rel)
        if not os.path.lexists(shared):
            os.makedirs(os.path.dirname(shared), mode=0o755, exist_ok=True)
            if os.path.isdir(inside) and not os.path.islink(inside):
                _copy_tree(inside, shared)
            elif os.path.lexists(inside):
                shutil.copy2(inside, shared, follow_symlinks=False)
            else:
                os.mkdir(shared, 0o755)
        if os.path.isdir(inside) and not os.path.islink(inside):
            remove_tree(inside)
        elif os.path.lexists(inside):
            os.unlink(inside)
        parent = os.path.dirname(inside)
        os.makedirs(parent, mode=0o755, exist_ok=True)
        os.symlink(os.path.relpath(shared, parent), inside)

    def _discard(self, path: str) -> None:
        """Rename away (the release disappears at once), then delete."""
        aside = os.path.join(self.releases_dir, ".%s.delete-%d" % (os.path.basename(path), os.getpid()))
        if os.path.lexists(aside):
            remove_tree(aside)
        os.rename(path, aside)
        remove_tree(aside)

    # ----------------------------------------------------------------- switch, mark, rollback
    def switch(self, deployment_id: str, *, check_mode: bool = False, checkpoint: Checkpoint = None) -> t.Dict[str, t.Any]:
        """Point ``current`` at the release: a temp link renamed over the old one, never rm + ln."""
        tick = checkpoint or (lambda _name: None)
        path = self.release_dir(deployment_id)
        if not os.path.isdir(path):
            raise DeployError("release %s does not exist under %s" % (deployment_id, self.releases_dir))
        if not self.is_finished(deployment_id):
            raise DeployError("release %s is unfinished (%s present): refusing to make it current" % (deployment_id, UNFINISHED_MARKER))
        if os.path.lexists(self.current_link) and not os.path.islink(self.current_link):
            raise DeployError("%s is a real directory or file, not a link: move it away first; it is never deleted" % self.current_link)
        previous = self.current_release()
        result = {
            "changed": previous != deployment_id,
            "current": path,
            "previous": previous,
            "previous_dir": self.release_dir(previous) if previous else None,
        }  # type: t.Dict[str, t.Any]
        if not result["changed"] or check_mode:
            return result
        for stale in glob.glob(os.path.join(self.root, ".current.tmp-*")):
            try:
                os.unlink(stale)
            except OSError:
                pass
        tick("before-switch")
        replace_symlink(os.path.join("releases", deployment_id), self.current_link)
        _fsync_dir(self.root)
        tick("switched")
        self._update(deployment_id, switched_at=_now(), previous=previous)
        tick("log-switched")
        return result

    def mark(self, deployment_id: str, status: str, *, check_mode: bool = False) -> t.Dict[str, t.Any]:
        """Record a finished release as ``good`` or ``bad``."""
        if status not in ("good", "bad"):
            raise DeployError("release status must be good or bad, not %r" % status)
        if not self.is_finished(deployment_id):
            raise DeployError("release %s does not exist or is unfinished" % deployment_id)
        entry = {e.get("id"): e for e in self._read_log()["releases"]}.get(deployment_id) or {}
        changed = entry.get("status") != status
        if changed and not check_mode:
            self._update(deployment_id, status=status, marked_at=_now())
        return {"changed": changed, "status": status, "deployment_id": deployment_id}

    def rollback(self, explicit: t.Optional[str] = None, *, check_mode: bool = False) -> t.Dict[str, t.Any]:
        target = self.rollback_target(explicit)
        result = self.switch(target, check_mode=check_mode)
        result["target"] = target
        return result

    # ----------------------------------------------------------------- prune
    def prune(self, keep: int, protect: t.Sequence[str] = (), *, check_mode: bool = False) -> t.Dict[str, t.Any]:
        """Keep the ``keep`` newest finished releases plus current, the previous good one and ``protect``.

        Unfinished releases are neither counted nor removed. Failures become warnings.
        """
        if keep < 1:
            raise DeployError("keep_releases must be at least 1, got %r" % keep)
        listing = self.releases()
        finished = [r["id"] for r in listing if r["finished"]]
        current = self.current_release()
        keep_ids = set(finished[-keep:]) | set(protect)
        if current:
            keep_ids.add(current)
        try:
            keep_ids.add(self.rollback_target())
        except DeployError:
            pass
        doomed = [rid for rid in finished if rid not in keep_ids]
        result = {"changed": bool(doomed), "removed": [], "kept": [r for r in finished if r in keep_ids], "warnings": []}  # type: t.Dict[str, t.Any]
        if check_mode:
            result["removed"] = doomed
            return result
        for rid in doomed:
            try:
                self._discard(self.release_dir(rid))
                result["removed"].append(rid)
            except OSError as err:
                result["warnings"].append("could not remove release %s: %s" % (rid, err))
        # Leftovers of crashed runs: staging dirs of dead processes and half-deleted releases.
        for leftover in glob.glob(os.path.join(self.releases_dir, ".*.new-*")) + glob.glob(os.path.join(self.releases_dir, ".*.delete-*")):
            try:
                pid = int(leftover.rsplit("-", 1)[1])
            except ValueError:
                continue
            if pid != os.getpid() and _pid_alive(pid):
                continue
            try:
                remove_tree(leftover)
                result["changed"] = True
            except OSError as err:
                result["warnings"].append("could not remove %s: %s" % (leftover, err))
        if result["removed"]:
            try:
                data = self._read_log()
                stamp = _now()
                for entry in data["releases"]:
                    if entry.get("id") in result["removed"]:
                        entry["pruned_at"] = stamp
                self._write_log(data)
            except (OSError, DeployError) as err:
                result["warnings"].append("could not update the release log: %s" % err)
        return result


def _creator_alive(marker: str) -> bool:
    """Is the process that wrote this unfinished marker (``<id> <pid>``) still making it? Not when the pid
    is gone, is ours (one release at a time per process), or started after the marker was written (the
    number was reused)."""
    try:
        with open(marker, encoding="utf-8") as handle:
            pid = int(handle.read().split()[1])
        written = os.lstat(marker).st_mtime
    except (OSError, ValueError, IndexError):
        return False  # no marker or no pid in it: nobody to wait for
    if pid == os.getpid() or not _pid_alive(pid):
        return False
    started = _process_start(pid)
    return started is None or started <= written + 1


def _process_start(pid: int) -> t.Optional[float]:
    """When ``pid`` started (epoch seconds), from /proc; None when unknown."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as handle:
            ticks = int(handle.read().rsplit(b")", 1)[1].split()[19])
        with open("/proc/stat", "rb") as handle:
            boot = next(int(line.split()[1]) for line in handle if line.startswith(b"btime "))
        return boot + ticks / float(os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def _linkable(src: str, previous: str, rule: t.Optional[_permissions.PermissionRule] = None) -> bool:
    """Hardlink rule: a regular file of the same size, final mode and owner with identical bytes."""
    try:
        a = os.lstat(src)
        b = os.lstat(previous)
    except OSError:
        return False
    if not (stat.S_ISREG(a.st_mode) and stat.S_ISREG(b.st_mode)):
        return False
    want_mode = rule.mode if rule is not None and rule.mode is not None else stat.S_IMODE(a.st_mode)
    if a.st_size != b.st_size or stat.S_IMODE(b.st_mode) != want_mode:
        return False
    if os.geteuid() == 0 or rule is not None:
        want_uid = rule.uid if rule is not None and rule.uid != -1 else (a.st_uid if os.geteuid() == 0 else b.st_uid)
        want_gid = rule.gid if rule is not None and rule.gid != -1 else (a.st_gid if os.geteuid() == 0 else b.st_gid)
        if (b.st_uid, b.st_gid) != (want_uid, want_gid):
            return False
    return files_equal(src, previous)


def _copy_tree(src: str, dest: str) -> None:
    """``shutil.copytree(src, dest, symlinks=True)`` without recursion: it recurses once per level
    before Python 3.12, and a deep revision raised RecursionError."""
    os.mkdir(dest, 0o700)
    dirs = [(src, dest)]
    for here, subdirs, files in walk_tree(src):
        rel = os.path.relpath(here, src)
        target_dir = dest if rel == "." else os.path.join(dest, rel)
        for name in subdirs + files:
            source = os.path.join(here, name)
            target = os.path.join(target_dir, name)
            if os.path.islink(source):
                os.symlink(os.readlink(source), target)
            elif os.path.isdir(source):
                os.mkdir(target, 0o700)
                dirs.append((source, target))
            else:
                shutil.copy2(source, target)
    # Deepest first, so a read-only directory is made so after its content.
    for source, target in reversed(dirs):
        shutil.copystat(source, target)


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
