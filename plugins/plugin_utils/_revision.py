# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A revision as the controller resolves it: one local archive, its sha256 and its parsed AppSpec.

Every revision is validated here before any host is touched, whatever its source:

- a directory is packed into a deterministic tar, cached by a signature of the tree;
- an archive's AppSpec is read from the archive itself, after the same safe checks hosts apply
  (``_archive.plan_archive``), without unpacking the revision;
- ``http(s)://``, ``s3://`` and git revisions are fetched once into the controller's cache.

Hosts then receive the archive, its sha256 and the normalized AppSpec (JSON).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import posixpath
import stat
import tarfile
import tempfile
import time
import typing as t
import zipfile
import zlib
from dataclasses import dataclass, field

from ansible_collections.appspec.deploy.plugins.module_utils import _archive, _sources
from ansible_collections.appspec.deploy.plugins.module_utils._errors import DeployError
from ansible_collections.appspec.deploy.plugins.module_utils._spec import ParsedAppSpec
from ansible_collections.appspec.deploy.plugins.plugin_utils import _fetch as _remote
from ansible_collections.appspec.deploy.plugins.plugin_utils._appspec import (
    MAX_APPSPEC_BYTES,
    appspec_candidates,
    load_appspec,
    parse_appspec_bytes,
)

_KEEP_PACKS = 4
# A pack may still be uploaded by a deployment that started with it (a rolling deployment of a big fleet runs
# for hours, other runs pack other directories meanwhile): only packs unused for this long are ever pruned.
_PACK_IDLE_SECONDS = 2 * 24 * 3600
_MAX_LINK_HOPS = 40
_GIT_DIR = ".git"


class RevisionError(DeployError):
    """A revision that cannot be resolved or validated on the controller."""


@dataclass
class Resolved:
    """A revision ready to go to hosts."""

    kind: str  # local, url, s3, git (what the user gave)
    source: str  # what the user gave, credentials redacted
    path: str  # the archive on the controller
    sha256: str
    size: int
    appspec: ParsedAppSpec
    bundle_env: t.Dict[str, str] = field(default_factory=dict)  # BUNDLE_* of S3 and git sources
    identity: t.Dict[str, t.Any] = field(default_factory=dict)
    packed: bool = False  # path is a tar this module made from a directory


def cache_dir() -> str:
    """Controller-side cache: ``$APPSPEC_DEPLOY_CACHE_DIR`` or ``~/.cache/appspec.deploy``."""
    path = os.environ.get("APPSPEC_DEPLOY_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "appspec.deploy")
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


def atomic_json(path: str, data: t.Any) -> None:
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=os.path.dirname(path))
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle)
    os.replace(tmp, path)


def read_json(path: str) -> t.Any:
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
    known = read_json(record)
    if isinstance(known, dict) and known.get("sha256"):
        return known["sha256"]
    digest = _sources.sha256_file(path)
    atomic_json(record, {"path": path, "sha256": digest})
    return digest


def _walk(root: str) -> t.Iterator[t.Tuple[str, str]]:
    """(relative path, full path) of every entry below ``root``, sorted, not following symlinks.

    ``.git`` entries are left out at every level: a work tree deploys its files, not its repository
    (nor a submodule's pointer into it), as a git revision does through ``git archive``.
    """
    for here, dirs, files in os.walk(root):
        dirs[:] = sorted(name for name in dirs if name != _GIT_DIR)
        rel_here = os.path.relpath(here, root)
        for name in sorted(dirs + [name for name in files if name != _GIT_DIR]):
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
                        raise RevisionError("cannot pack %s: only files, directories and symlinks go into a revision"
                                            % full)
                    archive.add(full, arcname=rel, recursive=False, filter=_reset_owner)
            os.replace(tmp, target)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    old = sorted((os.path.join(packs, n) for n in os.listdir(packs) if n.endswith(".tar")),
                 key=lambda p: os.stat(p).st_mtime, reverse=True)
    idle_since = time.time() - _PACK_IDLE_SECONDS
    for path in old[_KEEP_PACKS:]:
        if os.stat(path).st_mtime > idle_since:
            continue
        for leftover in (path, path + ".lock"):
            try:
                os.unlink(leftover)
            except OSError:
                pass
    return target


def _read_entry(path: str, bundle_type: str, index: int, limit: int = MAX_APPSPEC_BYTES) -> bytes:
    """One member's bytes, in memory, never more than ``limit`` (whatever its header says)."""
    try:
        if bundle_type == "zip":
            with zipfile.ZipFile(path) as archive:
                with archive.open(archive.infolist()[index]) as handle:
                    data = handle.read(limit + 1)
        else:
            data = None
            with tarfile.open(path, "r|gz" if bundle_type == "tgz" else "r|") as archive:
                for position, member in enumerate(archive):
                    if position == index:
                        handle = archive.extractfile(member)
                        if handle is not None:
                            data = handle.read(limit + 1)
                        break
            if data is None:
                raise RevisionError("cannot read entry %d of %s" % (index, path))
        if len(data) > limit:
            raise RevisionError("entry %d of %s holds more than %d bytes" % (index, path, limit))
        return data
    except (zipfile.BadZipFile, zipfile.LargeZipFile, tarfile.TarError, EOFError, OSError, zlib.error) as err:
        # e.g. a zip entry that inflates to more than its declared size (a CRC error), a truncated stream
        raise RevisionError("cannot read entry %d of %s: %s" % (index, path, err))


class RevisionTree:
    """What an archive holds, looked up as a host will see it unpacked (hoisted, through its own links)."""

    def __init__(self, plan: _archive.Plan) -> None:
        self.entries = dict((entry.path, entry) for entry in plan.entries)
        self.dirs = set(plan.implicit_dirs)
        self.prefix = plan.hoist + "/" if plan.hoist else ""
        self.root = [plan.hoist] if plan.hoist else []  # the revision root: no path goes above it

    def resolve(self, relative: str, follow: bool = True) -> t.Optional[str]:
        """The archive path ``relative`` (to the revision root) ends at, or None when it is not in the revision.

        Symlinks on the way are followed (the last one too with ``follow``), hardlinks lead to their file.
        """
        done = list(self.root)
        pending = [part for part in relative.split("/") if part not in ("", ".")]
        hops = 0
        while pending:
            name = pending.pop(0)
            if name == "..":
                if len(done) <= len(self.root):
                    return None
                done.pop()
                continue
            path = "/".join(done + [name])
            entry = self.entries.get(path)
            if entry is None and path not in self.dirs:
                return None
            if entry is not None and entry.kind in (_archive.SYMLINK, _archive.HARDLINK) and (pending or follow):
                hops += 1
                if hops > _MAX_LINK_HOPS:
                    return None
                if entry.kind == _archive.HARDLINK:
                    done, pending = [], (entry.link or "").split("/") + pending
                else:
                    pending = [part for part in (entry.link or "").split("/") if part not in ("", ".")] + pending
                continue
            if pending and entry is not None and entry.kind != _archive.DIR:
                return None  # a file used as a directory
            done.append(name)
        return "/".join(done)

    def kind(self, relative: str, follow: bool = True) -> t.Optional[str]:
        """``_archive.FILE``, ``DIR`` or ``SYMLINK`` (``follow`` False only) at ``relative``, None when absent."""
        path = self.resolve(relative, follow)
        if path is None:
            return None
        entry = self.entries.get(path)
        return entry.kind if entry is not None else _archive.DIR

    def file_entry(self, relative: str) -> t.Optional[_archive.Entry]:
        """The regular file at ``relative``, through the archive's own links; None when it is not one."""
        path = self.resolve(relative)
        entry = self.entries.get(path) if path is not None else None
        return entry if entry is not None and entry.kind == _archive.FILE else None


def missing_paths(appspec: t.Mapping[str, t.Any], source: str,
                  kind: t.Callable[[str, bool], t.Optional[str]]) -> t.List[str]:
    """Every ``files`` source and hook location of a server ``appspec`` that a host would not find, as messages.

    ``kind(relative, follow)`` tells what the revision holds at a path relative to its root (see
    :meth:`RevisionTree.kind`): a source may be anything (hosts copy a symlink as a symlink), a script must
    be a file. A leading ``/`` still means the revision root (CodeDeploy's rule).
    """
    problems = []
    for index, item in enumerate(appspec.get("files") or []):
        where = "%s: files[%d].source %r" % (source, index, item["source"])
        relative = _relative(item["source"])
        if relative is None:
            problems.append(where + " leaves the revision")
        elif kind(relative, False) is None:
            problems.append(where + " does not exist in the revision")
    for event, scripts in (appspec.get("hooks") or {}).items():
        for index, script in enumerate(scripts or []):
            if not isinstance(script, dict):  # refused by the parser already; ECS/Lambda hooks are names
                continue
            where = "%s: hooks.%s[%d].location %r" % (source, event, index, script["location"])
            relative = _relative(script["location"])
            if relative is None:
                problems.append(where + " leaves the revision")
            elif kind(relative, True) != _archive.FILE:
                problems.append(where + ": the script does not exist in the revision")
    return problems


def _relative(location: str) -> t.Optional[str]:
    normalized = posixpath.normpath("./" + location.strip().lstrip("/"))
    return None if normalized == ".." or normalized.startswith("../") else normalized


def check_paths(tree: RevisionTree, parsed: ParsedAppSpec, shown: str) -> ParsedAppSpec:
    """``parsed``, once every path its ``files`` and hooks name is in the revision ``tree``.

    Hosts would find a missing one only after ApplicationStop of the running revision, so it is refused here,
    before any host is touched.
    """
    if parsed.compute_platform == "server":
        problems = missing_paths(parsed.appspec, parsed.source, tree.kind)
        if problems:
            raise RevisionError("the revision %s cannot deploy, %d problem%s: %s" % (
                shown, len(problems), "" if len(problems) == 1 else "s", "; ".join(problems)), problems=problems)
    return parsed


def check_archive(path: str, max_unpacked_size: t.Optional[int] = None, allow_setuid: bool = False,
                  shown: t.Optional[str] = None) -> _archive.Plan:
    """The checks a host applies before writing anything (paths, links, devices, size), here on the controller.

    Only headers are read (a gzip stream is read through, never written): ``max_unpacked_size`` None is
    the default limit (``_archive.DEFAULT_MAX_UNPACKED_SIZE``), 0 no limit (hosts still check their free space).
    """
    limit = _archive.DEFAULT_MAX_UNPACKED_SIZE if max_unpacked_size is None else (max_unpacked_size or None)
    try:
        return _archive.plan_archive(path, max_size=limit, allow_setuid=allow_setuid)
    except _archive.ArchiveError as err:
        raise RevisionError("the revision %s is refused: %s" % (shown or path, err), **err.details)


def appspec_from_archive(path: str, appspec_filename: t.Optional[str] = None, *,
                         max_unpacked_size: t.Optional[int] = None, allow_setuid: bool = False,
                         shown: t.Optional[str] = None) -> ParsedAppSpec:
    """Parse the AppSpec inside an archive without unpacking it.

    The whole archive is checked first as a host checks it before writing anything (paths, links,
    devices, size), so a revision a host would refuse is refused here, before any host is touched.
    Errors name ``shown`` (the revision the user gave; default ``path``), never a cache file.
    """
    shown = shown or path
    plan = check_archive(path, max_unpacked_size, allow_setuid, shown=shown)
    tree = RevisionTree(plan)
    for name in appspec_candidates(appspec_filename):
        entry = tree.file_entry(name)
        if entry is None:
            continue
        if entry.size > MAX_APPSPEC_BYTES:
            raise RevisionError("AppSpec file %s in %s is larger than %d bytes" % (name, shown, MAX_APPSPEC_BYTES))
        parsed = parse_appspec_bytes(_read_entry(path, plan.bundle_type, entry.index), "%s:%s" % (shown, tree.prefix + name))
        return check_paths(tree, parsed, shown)
    raise RevisionError("no AppSpec file at the root of the revision %s: looked for %s"
                        % (shown, ", ".join(appspec_candidates(appspec_filename))))


def resolve_local(path: str, *, appspec_filename: t.Optional[str] = None, sha256: t.Optional[str] = None,
                  max_unpacked_size: t.Optional[int] = None, allow_setuid: bool = False,
                  cache: t.Optional[str] = None, appspec: t.Optional[ParsedAppSpec] = None) -> Resolved:
    """A directory or an archive on the controller, checked and parsed (``appspec``: parsed already)."""
    parsed = appspec
    path = _sources.local_path(path)
    if os.path.isdir(path):
        parsed = parsed or load_appspec(path, appspec_filename=appspec_filename)
        archive, packed = pack_directory(path, cache), True
    elif os.path.isfile(path):
        archive, packed = path, False
    else:
        raise RevisionError("the revision %s does not exist on the controller" % path)
    if packed:
        # A directory's content is checked as hosts will check its pack: links out of it, size, what the
        # AppSpec names (unless the caller's AppSpec was checked so already).
        plan = check_archive(archive, max_unpacked_size, allow_setuid, shown=path)
        if appspec is None:
            check_paths(RevisionTree(plan), parsed, path)
    digest = file_sha256(archive, cache)
    expected = _sources.normalize_sha256(sha256)
    if expected and expected != digest:
        raise RevisionError("sha256 mismatch for the revision %s: expected %s, got %s; nothing was deployed"
                            % (path, expected, digest), expected_sha256=expected, actual_sha256=digest)
    if parsed is None:
        parsed = appspec_from_archive(archive, appspec_filename, max_unpacked_size=max_unpacked_size,
                                      allow_setuid=allow_setuid)
    return Resolved(kind="local", source=path, path=archive, sha256=digest, size=os.path.getsize(archive),
                    appspec=parsed.check_deployable(path, RevisionError), packed=packed)


def _fetch(kind: str, revision: str, dest: str, expected: t.Optional[str], options: t.Dict[str, t.Any]) -> _sources.Fetched:
    if kind == "url":
        return _sources.fetch_url(revision, dest, headers=options.get("headers"), expected_sha256=expected)
    if kind == "s3":
        fetched = _remote.fetch_s3(revision, dest, version_id=options.get("s3_version_id"),
                                   endpoint_url=options.get("s3_endpoint_url"), region=options.get("s3_region"),
                                   expected_sha256=expected)
        fetched.identity["endpoint"] = options.get("s3_endpoint_url")
        return fetched
    fetched = _remote.fetch_git(revision, dest, ref=options.get("git_ref"))
    fetched.identity["repository"] = _sources._redact(revision)  # pylint: disable=protected-access
    return fetched


def resolve_remote(kind: str, revision: str, *, sha256: t.Optional[str] = None,
                   appspec_filename: t.Optional[str] = None, max_unpacked_size: t.Optional[int] = None,
                   allow_setuid: bool = False, cache: t.Optional[str] = None,
                   appspec: t.Optional[ParsedAppSpec] = None, **options: t.Any) -> Resolved:
    """Fetch an ``http(s)://``, ``s3://`` or git revision once into the controller's cache, check and parse it.

    ``options``: ``headers`` (url); ``s3_version_id``, ``s3_endpoint_url``, ``s3_region`` (s3); ``git_ref`` (git).
    A revision whose expected sha256 is already in the cache is not fetched again.
    """
    expected = _sources.normalize_sha256(sha256)
    store = os.path.join(cache or cache_dir(), "revisions")
    os.makedirs(store, mode=0o700, exist_ok=True)
    shown = _sources._redact(revision) if kind in ("url", "git") else revision  # pylint: disable=protected-access
    meta = read_json(os.path.join(store, expected + ".json")) if expected else None
    if isinstance(meta, dict) and os.path.isfile(os.path.join(store, expected)):
        path = os.path.join(store, expected)
    else:
        work = tempfile.mkdtemp(prefix=".fetch-", dir=store)
        try:
            fetched = _fetch(kind, revision, work, expected, options)
            fetched.verify()
            if expected and fetched.sha256 != expected:
                raise RevisionError("sha256 mismatch for the revision %s: expected %s, got %s; nothing was deployed"
                                    % (shown, expected, fetched.sha256), expected_sha256=expected,
                                    actual_sha256=fetched.sha256)
            path = os.path.join(store, fetched.sha256)
            os.replace(fetched.path, path)
            meta = {"source": shown, "bundle_env": fetched.env, "identity": fetched.identity}
            atomic_json(path + ".json", meta)
        finally:
            _archive.remove_tree(work)
    parsed = appspec or appspec_from_archive(path, appspec_filename, max_unpacked_size=max_unpacked_size,
                                             allow_setuid=allow_setuid, shown=shown)
    return Resolved(kind=kind, source=shown, path=path, sha256=os.path.basename(path), size=os.path.getsize(path),
                    appspec=parsed.check_deployable(shown, RevisionError), bundle_env=dict(meta.get("bundle_env") or {}),
                    identity=dict(meta.get("identity") or {}))
