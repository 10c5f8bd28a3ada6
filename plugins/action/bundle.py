# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of appspec.deploy.bundle: brings controller revisions to the host, only when needed.

URL, S3 and git revisions (and O(remote_src)) go straight to the module. For a directory or archive
on the controller:

1. a directory is packed into a deterministic tar (sorted, owner 0, real mtimes), cached on the
   controller by a signature of the tree, so every host and every fork shares one pack;
2. its sha256 is computed once and cached by (path, size, mtime, inode);
3. a small controller-side cache remembers which sha256s each host (per root_dir and deployment
   group) has staged:
   - sha256 known to be staged there -> ONE module run with no file (it reuses the staged copy);
   - host known but sha256 new -> transfer, then ONE module run;
   - host unknown (fresh controller, AWX) -> one module run with no file first; only when it
     answers ``revision_missing`` is the file transferred and the module run again.
   So a new revision costs one transfer + one module run on a warm controller, an unchanged one a
   single module run and zero bytes, and no transfer is ever wasted on a cold controller.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import stat
import tarfile
import tempfile
import typing as t

from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase

from ansible_collections.appspec.deploy.plugins.module_utils._errors import DeployError
from ansible_collections.appspec.deploy.plugins.module_utils._layout import DEFAULT_ROOT_DIR, deployment_group_id
from ansible_collections.appspec.deploy.plugins.module_utils._sources import classify, normalize_sha256

MODULE = "appspec.deploy.bundle"
_KEEP_PACKS = 4
_KEEP_SHAS_PER_HOST = 32


def cache_dir() -> str:
    """Controller-side cache: ``$APPSPEC_DEPLOY_CACHE_DIR`` or ``~/.cache/appspec.deploy``."""
    path = os.environ.get("APPSPEC_DEPLOY_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "appspec.deploy")
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


def _atomic_json(path: str, data: t.Any) -> None:
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=os.path.dirname(path))
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle)
    os.replace(tmp, path)


def _read_json(path: str) -> t.Any:
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def file_sha256(path: str, cache: t.Optional[str] = None) -> str:
    """sha256 of a controller file, cached by its path, size, mtime and inode."""
    st = os.stat(path)
    text = "%s\0%d\0%d\0%d\0%d" % (os.path.realpath(path), st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)
    key = hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()
    record = os.path.join(cache or cache_dir(), "sha256", key + ".json")
    known = _read_json(record)
    if isinstance(known, dict) and known.get("sha256"):
        return known["sha256"]
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(chunk)
    _atomic_json(record, {"path": path, "sha256": digest.hexdigest()})
    return digest.hexdigest()


def _walk(root: str) -> t.Iterator[t.Tuple[str, str]]:
    """(relative path, full path) of every entry below ``root``, sorted, not following symlinks."""
    for here, dirs, files in os.walk(root):
        dirs.sort()
        rel_here = os.path.relpath(here, root)
        for name in sorted(dirs + files):
            rel = name if rel_here == "." else os.path.join(rel_here, name)
            yield rel, os.path.join(here, name)


def tree_signature(root: str) -> str:
    digest = hashlib.sha256(os.path.realpath(root).encode("utf-8", "surrogateescape"))
    for rel, full in _walk(root):
        st = os.lstat(full)
        link = os.readlink(full) if stat.S_ISLNK(st.st_mode) else ""
        digest.update(("\0%s\0%o\0%d\0%d\0%s" % (rel, st.st_mode, st.st_size, st.st_mtime_ns, link))
                      .encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def _reset_owner(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def pack_directory(root: str, cache: t.Optional[str] = None) -> str:
    """A tar of the directory (deterministic for an unchanged tree), made once and shared by all forks."""
    packs = os.path.join(cache or cache_dir(), "packed")
    os.makedirs(packs, mode=0o700, exist_ok=True)
    target = os.path.join(packs, tree_signature(root) + ".tar")
    with open(target + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(target):
            os.utime(target)
            return target
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".tar", dir=packs)
        os.close(fd)
        try:
            with tarfile.open(tmp, "w", format=tarfile.GNU_FORMAT) as archive:
                for rel, full in _walk(root):
                    mode = os.lstat(full).st_mode
                    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode)):
                        raise AnsibleActionFail("cannot pack %s: only files, directories and symlinks go into a revision"
                                                % full)
                    archive.add(full, arcname=rel, recursive=False, filter=_reset_owner)
            os.replace(tmp, target)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    old = sorted((os.path.join(packs, n) for n in os.listdir(packs) if n.endswith(".tar")),
                 key=lambda p: os.stat(p).st_mtime, reverse=True)
    for path in old[_KEEP_PACKS:]:
        for leftover in (path, path + ".lock"):
            try:
                os.unlink(leftover)
            except OSError:
                pass
    return target


class StagedCache:
    """What this controller knows each host has staged, per root_dir and deployment group."""

    def __init__(self, host: str, root_dir: str, group_id: str, cache: t.Optional[str] = None) -> None:
        key = hashlib.sha256(("%s\0%s\0%s" % (host, root_dir, group_id)).encode()).hexdigest()
        self.path = os.path.join(cache or cache_dir(), "hosts", key + ".json")
        data = _read_json(self.path)
        self.known_host = isinstance(data, dict)
        self.shas = list(data.get("sha256", [])) if isinstance(data, dict) else []  # type: t.List[str]
        self.host = host

    def has(self, sha256: str) -> bool:
        return sha256 in self.shas

    def add(self, sha256: str) -> None:
        self.shas = [sha256] + [s for s in self.shas if s != sha256][:_KEEP_SHAS_PER_HOST - 1]
        _atomic_json(self.path, {"host": self.host, "sha256": self.shas})

    def forget(self, sha256: str) -> None:
        if sha256 in self.shas:
            self.shas.remove(sha256)
            _atomic_json(self.path, {"host": self.host, "sha256": self.shas})


class ActionModule(ActionBase):
    TRANSFERS_FILES = False  # a remote temp dir is made only when a file has to go over
    _requires_connection = True

    def run(self, tmp: t.Any = None, task_vars: t.Optional[t.Dict[str, t.Any]] = None) -> t.Dict[str, t.Any]:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp
        args = dict(self._task.args)
        revision = args.get("revision")
        if revision is None:
            raise AnsibleActionFail("missing required arguments: revision")
        try:
            kind = classify(str(revision), args.get("revision_type") or "auto")
        except DeployError as err:
            raise AnsibleActionFail(str(err))
        if kind != "local" or boolean(args.get("remote_src", False), strict=False):
            result.update(self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars))
            return result
        try:
            result.update(self._stage_from_controller(args, str(revision), task_vars))
        finally:
            if self._connection._shell.tmpdir and self._cleanup_remote_tmp:
                self._remove_tmp_path(self._connection._shell.tmpdir)
        return result

    def _stage_from_controller(self, args: t.Dict[str, t.Any], revision: str,
                               task_vars: t.Dict[str, t.Any]) -> t.Dict[str, t.Any]:
        try:
            source = self._find_needle("files", revision)
        except AnsibleError as err:
            raise AnsibleActionFail("revision %s not found on the controller: %s" % (revision, err))
        local_file = pack_directory(source) if os.path.isdir(source) else source
        sha = file_sha256(local_file)
        try:
            expected = normalize_sha256(args.get("sha256"))
        except DeployError as err:
            raise AnsibleActionFail(str(err))
        if expected and expected != sha:
            raise AnsibleActionFail("sha256 mismatch for %s: expected %s, got %s; nothing was staged"
                                    % (source, expected, sha))
        size = os.path.getsize(local_file)
        group_id = args.get("deployment_group_id")
        if not group_id and args.get("application_name") and args.get("deployment_group_name"):
            group_id = deployment_group_id(args["application_name"], args["deployment_group_name"])
        cache = StagedCache(str(task_vars.get("inventory_hostname", self._connection._play_context.remote_addr)),
                            str(args.get("root_dir") or DEFAULT_ROOT_DIR), str(group_id))
        module_args = dict(args, revision_type="local", remote_src=True, sha256=sha)
        check_mode = bool(self._task.check_mode)
        source_info = {"type": "local", "revision": source, "packed": local_file if local_file != source else None}

        if check_mode or not cache.known_host or cache.has(sha):
            probe = self._execute_module(module_name=MODULE, module_args=dict(module_args, revision=""),
                                         task_vars=task_vars)
            if not probe.get("failed"):
                cache.add(sha)
                probe.update(bytes_transferred=0, source=dict(probe.get("source") or {}, **source_info))
                return probe
            if not probe.get("revision_missing"):
                return probe
            cache.forget(sha)
            if check_mode:
                return {
                    "changed": True, "reused": False, "sha256": sha, "size": size, "bytes_transferred": 0,
                    "deployment_dir": probe.get("deployment_dir"), "archive_dir": probe.get("archive_dir"),
                    "deployment_group_id": probe.get("deployment_group_id"), "source": source_info,
                    "msg": "would transfer %s (%d bytes) and stage it in %s" % (source, size, probe.get("deployment_dir")),
                }

        if self._connection._shell.tmpdir is None:
            self._make_tmp_path()
        remote = self._connection._shell.join_path(self._connection._shell.tmpdir, "bundle-upload")
        self._transfer_file(local_file, remote)
        if self._is_become_unprivileged():
            # Only another unprivileged user needs access granted (ACLs); the login user and root can read
            # the upload already, and it is never executed: no `chmod u+rwx` round trip for them.
            self._fixup_perms2((self._connection._shell.tmpdir, remote))
        staged = self._execute_module(module_name=MODULE, module_args=dict(module_args, revision=remote),
                                      task_vars=task_vars)
        if not staged.get("failed"):
            cache.add(sha)
            staged.update(bytes_transferred=size, source=dict(staged.get("source") or {}, **source_info))
        return staged
