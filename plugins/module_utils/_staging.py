# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""DownloadBundle: stage one revision into the agent's layout, reuse what is staged, keep N revisions.

::

    <root_dir>/<group-id>/<deployment-id>/
        bundle.tar | bundle.tgz | bundle.zip     the revision as fetched (named by its real type)
        deployment-archive/                      unpacked (see _archive), appspec at its root
        logs/                                    for scripts.log
        .bundle-info.json                        ours: sha256, size, type, source identity, BUNDLE_*
        appspec.json                             ours: the AppSpec as the controller parsed it (_spec)

``.bundle-info.json`` is written last, so its presence means the deployment dir is complete.
A revision already staged for the group (same sha256) is not fetched again: a new deployment
dir is made from it with hard links.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
import time
import typing as t

from ansible_collections.appspec.deploy.plugins.module_utils import _archive, _sources
from ansible_collections.appspec.deploy.plugins.module_utils._errors import DeployError, disk_error, free_bytes, host_name, is_disk_error
from ansible_collections.appspec.deploy.plugins.module_utils._fileutil import atomic_write_text, read_text
from ansible_collections.appspec.deploy.plugins.module_utils._host_state import GroupState
from ansible_collections.appspec.deploy.plugins.module_utils._layout import DeploymentRoot, deployment_group_id
from ansible_collections.appspec.deploy.plugins.module_utils._spec import ParsedAppSpec, write_appspec_json

INFO_FILE = ".bundle-info.json"


class StageOptions:
    """The module's options, as plain values."""

    def __init__(self, revision: str, deployment_id: str, *, revision_type: str = "auto", remote_src: bool = False,
                 sha256: t.Optional[str] = None, headers: t.Optional[t.Dict[str, str]] = None,
                 s3_version_id: t.Optional[str] = None, s3_endpoint_url: t.Optional[str] = None,
                 s3_region: t.Optional[str] = None, git_ref: t.Optional[str] = None,
                 application_name: t.Optional[str] = None, deployment_group_name: t.Optional[str] = None,
                 deployment_group_id: t.Optional[str] = None, root_dir: str = "/opt/codedeploy-agent/deployment-root",
                 max_revisions: int = 5, max_unpacked_size: t.Optional[int] = None, allow_setuid: bool = False,
                 appspec: t.Optional[ParsedAppSpec] = None, release_root: t.Optional[str] = None,
                 consume_upload: bool = False, timeout: int = _sources.DEFAULT_TIMEOUT,
                 bundle_env: t.Optional[t.Dict[str, str]] = None) -> None:
        self.revision = revision
        self.deployment_id = deployment_id
        self.revision_type = revision_type
        self.remote_src = remote_src
        self.sha256 = sha256
        self.headers = headers
        self.s3_version_id = s3_version_id
        self.s3_endpoint_url = s3_endpoint_url
        self.s3_region = s3_region
        self.git_ref = git_ref
        self.application_name = application_name
        self.deployment_group_name = deployment_group_name
        self.deployment_group_id = deployment_group_id
        self.root_dir = root_dir
        self.max_revisions = max_revisions
        self.max_unpacked_size = max_unpacked_size
        self.allow_setuid = allow_setuid
        self.appspec = appspec  # parsed and validated on the controller
        self.release_root = release_root
        self.consume_upload = consume_upload  # the local file is ours (an upload): move it, do not copy
        self.timeout = timeout
        self.bundle_env = dict(bundle_env or {})  # BUNDLE_* of a revision the controller fetched

    def group_id(self) -> str:
        if self.deployment_group_id:
            return self.deployment_group_id
        if not (self.application_name and self.deployment_group_name):
            raise DeployError("give deployment_group_id, or application_name and deployment_group_name")
        return deployment_group_id(self.application_name, self.deployment_group_name)


# --------------------------------------------------------------------------------------------
# Records of what is staged


def read_info(deployment_dir: str) -> t.Optional[t.Dict[str, t.Any]]:
    text = read_text(os.path.join(deployment_dir, INFO_FILE))
    if text is None:
        return None
    try:
        info = json.loads(text)
    except ValueError:
        return None
    if not isinstance(info, dict) or not os.path.isdir(os.path.join(deployment_dir, "deployment-archive")):
        return None
    return info


def _write_info(deployment_dir: str, info: t.Dict[str, t.Any]) -> None:
    atomic_write_text(os.path.join(deployment_dir, INFO_FILE), json.dumps(info, indent=1, sort_keys=True) + "\n")


def _matcher(sha256: t.Optional[str], identity: t.Optional[t.Dict[str, t.Any]]) -> t.Callable[[t.Dict[str, t.Any]], bool]:
    def match(info: t.Dict[str, t.Any]) -> bool:
        if sha256:
            return info.get("sha256") == sha256
        if not identity:
            return False
        have = info.get("identity") or {}
        if identity.get("commit"):
            return have.get("commit") == identity["commit"] and have.get("repository") == identity.get("repository")
        if identity.get("etag"):
            keys = ("bucket", "key", "etag", "version", "endpoint")
            return all(have.get(k) == identity.get(k) for k in keys)
        return False
    return match


def _group_entries(group_dir: str) -> t.List[str]:
    try:
        names = os.listdir(group_dir)
    except FileNotFoundError:
        return []
    return [os.path.join(group_dir, n) for n in names
            if not n.startswith(".") and os.path.isdir(os.path.join(group_dir, n))
            and not os.path.islink(os.path.join(group_dir, n))]


def _mtime(path: str) -> float:
    try:
        return os.lstat(path).st_mtime
    except OSError:
        return 0.0


def find_staged(root: DeploymentRoot, group_id: str, match: t.Callable[[t.Dict[str, t.Any]], bool],
                exclude: t.Optional[str] = None) -> t.Optional[str]:
    """A complete deployment dir of the group whose revision matches; the most recent one first."""
    recent = GroupState(root.root_dir, group_id).most_recent_dir()
    entries = sorted(_group_entries(root.group_dir(group_id)), key=_mtime, reverse=True)
    if recent and recent in entries:
        entries.remove(recent)
        entries.insert(0, recent)
    for entry in entries:
        if entry == exclude:
            continue
        info = read_info(entry)
        if info and match(info):
            return entry
    return None


# --------------------------------------------------------------------------------------------
# Retention


def protected_dirs(root: DeploymentRoot, group_id: str, deployment_dir: str,
                   release_root: t.Optional[str] = None) -> t.Set[str]:
    """Deployment dirs that retention must never remove: this one, the recorded ones, the running one
    and the rollback target."""
    state = GroupState(root.root_dir, group_id, release_root)
    keep = {deployment_dir} | set(state.protected_dirs())
    for deployment_id in (state.installed(), state.rollback_target()):
        if deployment_id:
            keep.add(state.deployment_dir(deployment_id))
    return {os.path.realpath(path) for path in keep}


def _record_staged(opts: StageOptions, root: DeploymentRoot, group_id: str, deployment_dir: str) -> t.List[str]:
    """``most_recent_install`` := this deployment dir; then retention. Returns the dirs pruned."""
    GroupState(root.root_dir, group_id).record_staged(deployment_dir)
    return prune(root, group_id, opts.max_revisions, protected_dirs(root, group_id, deployment_dir, opts.release_root))


def prune(root: DeploymentRoot, group_id: str, max_revisions: int, keep: t.Set[str],
          check_mode: bool = False) -> t.List[str]:
    """Remove the oldest deployment dirs (by mtime, as the agent does) beyond ``max_revisions``."""
    if max_revisions < 1:
        raise DeployError("max_revisions must be at least 1, not %d" % max_revisions)
    entries = _group_entries(root.group_dir(group_id))
    extra = len(entries) - max_revisions
    if extra <= 0:
        return []
    candidates = sorted((e for e in entries if os.path.realpath(e) not in keep), key=_mtime)[:extra]
    if not check_mode:
        for entry in candidates:
            _archive.remove_tree(entry)
    return candidates


# --------------------------------------------------------------------------------------------
# Staging


def _clone_tree(src: str, dest: str) -> None:
    """Recreate ``src`` at ``dest`` (which must not exist) with hard links to its files."""
    os.mkdir(dest, 0o700)
    dir_modes = [(dest, os.stat(src).st_mode & 0o7777)]
    for here, dirs, files in _archive.walk_tree(src):  # os.walk recurses on depth before Python 3.12
        rel = os.path.relpath(here, src)
        target_dir = dest if rel == "." else os.path.join(dest, rel)
        for name in dirs + files:
            source = os.path.join(here, name)
            target = os.path.join(target_dir, name)
            st = os.lstat(source)
            if os.path.islink(source):
                os.symlink(os.readlink(source), target)
            elif os.path.isdir(source):
                os.mkdir(target, 0o700)
                dir_modes.append((target, st.st_mode & 0o7777))
            else:
                try:
                    os.link(source, target)
                except OSError:
                    shutil.copy2(source, target)
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(here, d))]
    for path, mode in reversed(dir_modes):
        os.chmod(path, mode)


def _bundle_files(deployment_dir: str) -> t.List[str]:
    return [os.path.join(deployment_dir, n) for n in _archive.BUNDLE_FILE_NAMES.values()
            if os.path.lexists(os.path.join(deployment_dir, n))]


def _clone_staged(src_dir: str, deployment_dir: str, deployment_id: str) -> t.Dict[str, t.Any]:
    info = dict(read_info(src_dir) or {})
    archive_dir = os.path.join(deployment_dir, "deployment-archive")
    temp = tempfile.mkdtemp(prefix=".deployment-archive.tmp-", dir=deployment_dir)
    try:
        _clone_tree(os.path.join(src_dir, "deployment-archive"), os.path.join(temp, "a"))
        for old in _bundle_files(deployment_dir):
            os.unlink(old)
        for bundle in _bundle_files(src_dir):
            target = os.path.join(deployment_dir, os.path.basename(bundle))
            try:
                os.link(bundle, target)
            except OSError:
                shutil.copy2(bundle, target)
        if os.path.lexists(archive_dir):
            _archive.remove_tree(archive_dir)
        os.rename(os.path.join(temp, "a"), archive_dir)
    finally:
        _archive.remove_tree(temp)
    info.update(deployment_id=deployment_id, staged_at=time.time(), cloned_from=src_dir)
    return info


def _appspec_result(parsed: t.Optional[ParsedAppSpec]) -> t.Dict[str, t.Any]:
    if parsed is None:
        return {"appspec": None, "compute_platform": None}
    return {"appspec": parsed.appspec, "compute_platform": parsed.compute_platform}


def _redacted_revision(opts: StageOptions, kind: str) -> str:
    return _sources._redact(opts.revision) if kind in ("url", "git") else opts.revision  # pylint: disable=protected-access


def stage(opts: StageOptions, check_mode: bool = False) -> t.Dict[str, t.Any]:
    """Stage the revision for ``opts.deployment_id``; return the module's result values."""
    root = DeploymentRoot(opts.root_dir)
    group_id = opts.group_id()
    deployment_dir = root.deployment_dir(group_id, opts.deployment_id)
    archive_dir = root.archive_dir(group_id, opts.deployment_id)
    kind = _sources.classify(opts.revision, opts.revision_type)
    if kind == "local":
        opts.revision = _sources.local_path(opts.revision)
    expected = _sources.normalize_sha256(opts.sha256)
    if opts.max_revisions < 1:
        raise DeployError("max_revisions must be at least 1, not %d" % opts.max_revisions)
    if kind == "local" and not opts.remote_src:
        raise DeployError("revision %s is a path on the controller: it is transferred by the bundle action plugin "
                          "(use remote_src=true for a file on the host)" % opts.revision)
    if kind in ("s3", "git"):
        raise DeployError("revision %s: s3/git revisions are fetched by the controller (the bundle action plugin), "
                          "which sends the host the archive; a host fetches only files on it and http(s):// URLs"
                          % _redacted_revision(opts, kind), source_type=kind)
    if opts.appspec is None:
        raise DeployError("appspec is missing: the AppSpec is parsed on the controller (the bundle action plugin "
                          "does it for controller revisions; otherwise pass what appspec.deploy.appspec_info returns)")
    opts.appspec.check_deployable("the revision %s" % _redacted_revision(opts, kind))

    result = {
        "changed": False, "reused": False, "deployment_group_id": group_id, "deployment_id": opts.deployment_id,
        "deployment_dir": deployment_dir, "archive_dir": archive_dir, "bundle_path": None, "sha256": expected,
        "size": None, "bytes_transferred": 0, "bundle_type": None, "bundle_env": {}, "pruned": [],
        "source": {"type": kind, "revision": _redacted_revision(opts, kind)},
    }  # type: t.Dict[str, t.Any]
    result.update(_appspec_result(None))

    identity = None  # type: t.Optional[t.Dict[str, t.Any]]  # a local file or a URL: known by its sha256
    match = _matcher(expected, identity)

    before = read_info(deployment_dir)
    diff_before = {"deployment_dir": deployment_dir, "sha256": before.get("sha256") if before else None}

    def finish(info: t.Dict[str, t.Any], changed: bool, reused: bool) -> t.Dict[str, t.Any]:
        result.update(changed=changed, reused=reused, sha256=info.get("sha256"), size=info.get("size"),
                      bundle_type=info.get("bundle_type"), bundle_env=dict(info.get("bundle_env") or {}),
                      bundle_path=os.path.join(deployment_dir, _archive.BUNDLE_FILE_NAMES[info["bundle_type"]])
                      if info.get("bundle_type") else None,
                      hoisted=info.get("hoisted"))
        result["source"]["identity"] = info.get("identity") or identity or {}
        result.update(_appspec_result(opts.appspec))
        if not check_mode:
            write_appspec_json(deployment_dir, opts.appspec)
        result["diff"] = {"before": diff_before, "after": {"deployment_dir": deployment_dir, "sha256": info.get("sha256")}}
        return result

    # 1. This deployment already has this revision.
    if before and match(before):
        if not check_mode:
            result["pruned"] = _record_staged(opts, root, group_id, deployment_dir)
        return finish(before, changed=False, reused=True)

    # 2. Another deployment of the group has it: no fetch, hard links.
    staged = find_staged(root, group_id, match, exclude=deployment_dir)
    if staged:
        try:
            return _reuse_staged(opts, root, group_id, staged, deployment_dir, check_mode, result, finish)
        except OSError as err:
            if is_disk_error(err):
                raise disk_error(err, "staging the revision (linked from %s)" % staged, deployment_dir)
            raise

    # 3. Fetch, check, unpack.
    if kind == "local" and not opts.revision:
        raise DeployError("the revision is not staged on this host and has not been transferred yet",
                          revision_missing=True, deployment_dir=deployment_dir, archive_dir=archive_dir,
                          deployment_group_id=group_id)
    if check_mode:
        result["changed"] = True
        result["msg"] = "would fetch %s (%s) into %s" % (result["source"]["revision"], kind, deployment_dir)
        result["diff"] = {"before": diff_before, "after": {"deployment_dir": deployment_dir, "sha256": expected}}
        if kind == "local" and os.path.isfile(opts.revision):
            result["size"] = os.path.getsize(opts.revision)
        return result
    try:
        return _fetch_and_unpack(opts, root, group_id, kind, expected, identity, deployment_dir, archive_dir, result, finish)
    except OSError as err:  # a full disk, a name too long: the host, the path and the sizes, never a bare errno
        if is_disk_error(err):
            size = os.path.getsize(opts.revision) if kind == "local" and os.path.isfile(opts.revision) else None
            raise disk_error(err, "staging the revision", deployment_dir, size)
        raise


def check_stageable(opts: StageOptions) -> t.Dict[str, t.Any]:
    """Before anything runs: :func:`stage` in check mode (nothing is read from the network, nothing written).

    Raises what :func:`stage` raises before fetching (a bad sha256, AppSpec or ``max_revisions``) and a
    :class:`DeployError` with ``revision_missing=True`` when the revision is neither staged for the group
    (by sha256) nor, for a local file, on this host. Returns the check-mode result.
    """
    probe = copy.copy(opts)
    result = stage(probe, check_mode=True)
    if not result["reused"] and result["source"]["type"] == "local" and not os.path.isfile(probe.revision):
        raise DeployError("the revision is not staged on this host and %s does not exist" % probe.revision,
                          revision_missing=True, deployment_dir=result["deployment_dir"],
                          archive_dir=result["archive_dir"], deployment_group_id=result["deployment_group_id"])
    return result


def _reuse_staged(opts: StageOptions, root: DeploymentRoot, group_id: str, staged: str, deployment_dir: str,
                  check_mode: bool, result: t.Dict[str, t.Any],
                  finish: t.Callable[..., t.Dict[str, t.Any]]) -> t.Dict[str, t.Any]:
    info = read_info(staged) or {}
    result["reused_from"] = staged
    if check_mode:
        result["msg"] = "would reuse the revision staged in %s" % staged
        return finish(info, changed=False, reused=True)
    created = not os.path.isdir(deployment_dir)
    os.makedirs(deployment_dir, exist_ok=True)
    try:
        _remove_info(deployment_dir)
        new_info = _clone_staged(staged, deployment_dir, opts.deployment_id)
        os.makedirs(os.path.join(deployment_dir, "logs"), exist_ok=True)
        write_appspec_json(deployment_dir, opts.appspec)  # before the info file, which marks the dir complete
        _write_info(deployment_dir, new_info)
    except BaseException:
        if created:
            _archive.remove_tree(deployment_dir)
        raise
    result["pruned"] = _record_staged(opts, root, group_id, deployment_dir)
    return finish(new_info, changed=False, reused=True)


def _remove_info(deployment_dir: str) -> None:
    path = os.path.join(deployment_dir, INFO_FILE)
    if os.path.lexists(path):
        os.unlink(path)


def _check_room_for_copy(opts: StageOptions, kind: str, deployment_dir: str) -> None:
    """A local revision that has to be copied (not renamed) must fit before a byte is written.

    (The unpacked size is checked against the space left by the archive's own declared sizes, in
    :func:`_archive.unpack_archive`, before anything is unpacked.)"""
    if kind != "local" or not os.path.isfile(opts.revision):
        return
    size = os.path.getsize(opts.revision)
    existing = deployment_dir
    while not os.path.isdir(existing) and os.path.dirname(existing) != existing:
        existing = os.path.dirname(existing)
    if opts.consume_upload and os.stat(opts.revision).st_dev == os.stat(existing).st_dev:
        return  # renamed into place: no new space needed
    free = free_bytes(existing)
    if free is not None and size > free:
        raise DeployError("on host %s, staging the revision needs %d bytes for the archive in %s but only %d bytes are free: "
                          "refused before anything was written" % (host_name(), size, deployment_dir, free),
                          host=host_name(), path=deployment_dir, needed_bytes=size, free_bytes=free)


def _fetch(opts: StageOptions, kind: str, expected: t.Optional[str], dest: str) -> _sources.Fetched:
    if kind == "local":
        return _sources.take_local(opts.revision, dest, expected, move=opts.consume_upload)
    return _sources.fetch_url(opts.revision, dest, headers=opts.headers, expected_sha256=expected, timeout=opts.timeout)


def _fetch_and_unpack(opts: StageOptions, root: DeploymentRoot, group_id: str, kind: str, expected: t.Optional[str],
                      identity: t.Optional[t.Dict[str, t.Any]], deployment_dir: str, archive_dir: str,
                      result: t.Dict[str, t.Any], finish: t.Callable[..., t.Dict[str, t.Any]]) -> t.Dict[str, t.Any]:
    _check_room_for_copy(opts, kind, deployment_dir)
    created = not os.path.isdir(deployment_dir)
    os.makedirs(deployment_dir, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".staging-", dir=deployment_dir)
    fetched_holder = []  # type: t.List[_sources.Fetched]
    try:
        fetched = _fetch(opts, kind, expected, staging)
        fetched_holder.append(fetched)
        result["bytes_transferred"] = fetched.bytes_transferred
        if not expected:
            # Known only now (URL without sha256, ...): it may be staged already.
            match = _matcher(fetched.sha256, None)
            if match(read_info(deployment_dir) or {}):
                return finish(read_info(deployment_dir) or {}, changed=False, reused=True)
            staged = find_staged(root, group_id, match, exclude=deployment_dir)
            if staged:
                return _reuse_staged(opts, root, group_id, staged, deployment_dir, False, result, finish)
        bundle_type = _archive.detect_bundle_type(fetched.path)

        def check(content: str) -> None:
            del content
            fetched.verify()  # a checksum computed while unpacking must match before anything is renamed
            _remove_info(deployment_dir)  # from here on the dir is not a complete staging any more

        unpacked = _archive.unpack_archive(fetched.path, archive_dir, bundle_type=bundle_type,
                                           max_size=opts.max_unpacked_size or None, allow_setuid=opts.allow_setuid,
                                           check=check)
        for old in _bundle_files(deployment_dir):
            os.unlink(old)
        os.rename(fetched.path, os.path.join(deployment_dir, _archive.BUNDLE_FILE_NAMES[bundle_type]))
        os.makedirs(os.path.join(deployment_dir, "logs"), exist_ok=True)
        info = {
            "sha256": fetched.sha256, "size": fetched.size, "bundle_type": bundle_type, "bundle_env": fetched.env or opts.bundle_env,
            "identity": fetched.identity or identity or {}, "source_type": kind, "deployment_id": opts.deployment_id,
            "staged_at": time.time(), "unpacked_size": unpacked.size, "hoisted": unpacked.hoisted,
            "compute_platform": opts.appspec.compute_platform,
        }
        write_appspec_json(deployment_dir, opts.appspec)  # before the info file, which marks the dir complete
        _write_info(deployment_dir, info)
    except BaseException:
        if created:
            _archive.remove_tree(deployment_dir)
        for pending in fetched_holder:
            pending.verify()  # a wrong checksum is the root cause of whatever failed: report it
        raise
    finally:
        for pending in fetched_holder:
            try:
                pending.verify()  # never leave a hashing thread behind
            except _sources.SourceError:
                pass
        _archive.remove_tree(staging)
    result["pruned"] = _record_staged(opts, root, group_id, deployment_dir)
    return finish(info, changed=True, reused=False)
