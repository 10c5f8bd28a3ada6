# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Safe unpacking of revision bundles (zip, tar, tar.gz), recognised by content.

Every entry of the archive is checked *before* a single byte is written:

* the archive itself: a gzip stream is read to its end (so its CRC is checked), a tar header with a
  bad checksum or cut short is refused, and so is anything but zeros after the end-of-archive blocks
  (Python's tarfile would silently stop there and drop the entries after it);
* names: no absolute paths, no ``..`` components, no control characters (``\\x00``-``\\x1f``,
  ``\\x7f``: a newline would corrupt the line-based cleanup list), no more than ``MAX_PATH_DEPTH``
  components, no duplicates;
* entry types: regular files, directories, symlinks and (tar) hardlinks only; devices, fifos and
  unknown types are refused;
* symlinks must resolve inside the archive (following other symlinks of the archive), no entry may
  be written through a symlink, and hardlinks must point at a regular file of the archive;
* the unpacked size the archive declares (its headers, summed as they are read, before any data
  is read or written) must stay under ``max_size`` and under the free space of the target's file
  system: an archive of a few MB that declares many GB is refused without inflating it. An entry
  whose data turns out larger than its header says is refused while it is written.

Then the archive is unpacked into a temp directory beside the target (symlinks last, so nothing
can be written through them) and renamed into place; any failure removes the temp directory, so a
refused or broken archive leaves nothing behind. setuid/setgid bits are dropped unless allowed.
A revision whose only top-level entry is a folder holding the AppSpec is lifted one level, as the
CodeDeploy agent does.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import re
import stat
import tarfile
import tempfile
import time
import typing as t
import zipfile

from ansible_collections.appspec.deploy.plugins.module_utils._errors import (
    DeployError,
    disk_error,
    host_name,
    is_disk_error,
    no_inodes_left,
)

BUNDLE_TYPES = ("tar", "tgz", "zip")
BUNDLE_FILE_NAMES = {"tar": "bundle.tar", "tgz": "bundle.tgz", "zip": "bundle.zip"}
DEFAULT_MAX_ENTRIES = 1000000
# What a revision may declare it unpacks to when nobody says otherwise (the modules' max_unpacked_size
# default, 10G): an archive of a few MB declaring many GB (a "zip bomb") is refused by its headers alone.
DEFAULT_MAX_UNPACKED_SIZE = 10 * 1024 ** 3
_BLOCK = 4096
_COPY_CHUNK = 1024 * 1024
_MAX_SYMLINK_DEPTH = 40
# Path components an entry may have: far beyond real revisions, and small enough that no path nears
# PATH_MAX (4096) with short names, nor any tool that walks the tree by recursion (Python < 3.12).
MAX_PATH_DEPTH = 128
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_APPSPEC_NAME = re.compile(r"appspec", re.I)

FILE, DIR, SYMLINK, HARDLINK = "file", "dir", "symlink", "hardlink"


class ArchiveError(DeployError):
    """An archive that is refused or cannot be read. ``details`` hold ``archive_entry`` when known."""


class Entry:
    """One planned entry: a normalised relative path and what to make there."""

    __slots__ = ("path", "kind", "size", "mode", "mtime", "link", "index", "offset")

    def __init__(self, path: str, kind: str, size: int, mode: int, mtime: float,
                 link: t.Optional[str], index: int) -> None:
        self.path = path
        self.kind = kind
        self.size = size
        self.mode = mode
        self.mtime = mtime
        self.link = link
        self.index = index
        self.offset = None  # type: t.Optional[int]  # where a plain tar holds the file's data


class Plan:
    """The checked content of an archive."""

    def __init__(self, bundle_type: str, entries: t.List[Entry], implicit_dirs: t.Optional[t.List[str]] = None) -> None:
        self.bundle_type = bundle_type
        self.entries = entries
        self.implicit_dirs = implicit_dirs or []  # parents the archive does not list itself
        self.hoist = None  # type: t.Optional[str]
        self.size = sum(e.size for e in entries if e.kind == FILE)
        # What the files take on disk, rounded up to blocks, plus one block per entry.
        self.disk_size = disk_usage((e.size for e in entries if e.kind == FILE), len(entries))


def disk_usage(file_sizes: t.Iterable[int], entries: int, block: int = _BLOCK) -> int:
    """About what a tree takes on a file system of ``block``-byte blocks: each file's data rounded up to
    whole blocks, plus one block for each of its ``entries`` (files, directories, links: inode, directory
    space). The one rule of the space checks (unpacking an archive, making a release): many small files
    take far more than their sizes add up to (a 4 KiB page each on tmpfs)."""
    block = max(1, block)
    return sum(-(-size // block) * block for size in file_sizes) + block * entries


def block_size(path: str) -> int:
    """The block size (``f_frsize``) of the file system holding ``path`` (its nearest existing parent);
    4096 when it cannot be read."""
    here = os.path.abspath(path)
    while True:
        try:
            size = os.statvfs(here).f_frsize
            return size if size > 0 else _BLOCK
        except OSError:
            parent = os.path.dirname(here)
            if parent == here:
                return _BLOCK
            here = parent


class UnpackResult:
    def __init__(self, bundle_type: str, size: int, files: int, dirs: int, symlinks: int, hoisted: t.Optional[str]) -> None:
        self.bundle_type = bundle_type
        self.size = size
        self.files = files
        self.dirs = dirs
        self.symlinks = symlinks
        self.hoisted = hoisted

    def as_dict(self) -> t.Dict[str, t.Any]:
        return {"bundle_type": self.bundle_type, "size": self.size, "files": self.files, "dirs": self.dirs,
                "symlinks": self.symlinks, "hoisted": self.hoisted}


# --------------------------------------------------------------------------------------------
# Type detection


def detect_bundle_type(path: str) -> str:
    """``tar``, ``tgz`` or ``zip`` from the file's first bytes (never from its name)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(512)
    except OSError as err:
        raise ArchiveError("cannot read bundle %s: %s" % (path, err.strerror or err))
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if head[:2] == b"\x1f\x8b":
        return "tgz"
    if len(head) == 512 and head[257:262] == b"ustar":
        return "tar"
    if len(head) == 512:
        # Old V7 tar has no magic: accept it when the header checksum is right.
        try:
            tarfile.TarInfo.frombuf(head, tarfile.ENCODING, "surrogateescape")
            return "tar"
        except tarfile.TarError:
            pass
    kind = "empty file" if not head else "unknown content"
    if head[:3] == b"BZh":
        kind = "bzip2 data"
    elif head[:6] == b"\xfd7zXZ\x00":
        kind = "xz data"
    raise ArchiveError("bundle %s is not a zip, tar or tar.gz archive (%s)" % (path, kind))


# --------------------------------------------------------------------------------------------
# Checking


def _clean_name(raw: str) -> str:
    """Normalise an archive member name, refusing absolute paths and ``..``."""
    if _CONTROL.search(raw):
        raise ArchiveError("archive entry %r has a control character in its name" % raw, archive_entry=raw)
    if raw.startswith("/") or raw.startswith("\\") or re.match(r"^[A-Za-z]:[\\/]", raw):
        raise ArchiveError("archive entry %r has an absolute path" % raw, archive_entry=raw)
    parts = [p for p in re.split(r"[/\\]", raw) if p not in ("", ".")]
    if ".." in parts:
        raise ArchiveError("archive entry %r has a '..' path component" % raw, archive_entry=raw)
    return "/".join(parts)


def _mode(mode: int, kind: str, allow_setuid: bool) -> int:
    mode &= 0o7777
    if not mode:
        mode = 0o755 if kind == DIR else 0o644
    if not allow_setuid:
        mode &= ~(stat.S_ISUID | stat.S_ISGID)
    return mode


class _Checker:
    """Builds the virtual tree of an archive, entry by entry, and refuses what is unsafe."""

    def __init__(self, max_size: t.Optional[int], max_entries: int, allow_setuid: bool,
                 room: t.Optional[t.Tuple[int, str]] = None) -> None:
        self.max_size = max_size
        self.room = room  # (bytes free, where) on the target's file system: refused as soon as it is exceeded
        self.max_entries = max_entries
        self.allow_setuid = allow_setuid
        self.entries = []  # type: t.List[Entry]
        self.kinds = {"": DIR}  # type: t.Dict[str, str]
        self.links = {}  # type: t.Dict[str, str]
        self.size = 0

    def add(self, raw: str, kind: str, size: int, mode: int, mtime: float, link: t.Optional[str], index: int) -> None:
        path = _clean_name(raw)
        if not path:
            if kind == DIR:
                return  # the archive's "./" itself
            raise ArchiveError("archive entry %r has an empty name" % raw, archive_entry=raw)
        if len(self.entries) >= self.max_entries:
            raise ArchiveError("archive holds more than %d entries" % self.max_entries)
        parts = path.split("/")
        if len(parts) > MAX_PATH_DEPTH:
            raise ArchiveError("archive entry %r is %d directories deep, more than the limit of %d"
                               % (raw, len(parts), MAX_PATH_DEPTH), archive_entry=raw, limit=MAX_PATH_DEPTH)
        for depth in range(1, len(parts)):
            parent = "/".join(parts[:depth])
            have = self.kinds.get(parent)
            if have == SYMLINK:
                raise ArchiveError("archive entry %r would be written through the symlink %r" % (raw, parent),
                                   archive_entry=raw)
            if have in (FILE, HARDLINK):
                raise ArchiveError("archive entry %r is below %r, which is not a directory" % (raw, parent),
                                   archive_entry=raw)
            if have is None:
                self.kinds[parent] = DIR
        have = self.kinds.get(path)
        if have is not None:
            if have == DIR and kind == DIR:
                pass
            elif have == DIR:
                raise ArchiveError("archive entry %r would replace a directory of the archive" % raw, archive_entry=raw)
            else:
                raise ArchiveError("archive entry %r appears twice in the archive" % raw, archive_entry=raw)
        if kind == SYMLINK:
            if not link:
                raise ArchiveError("symlink %r has an empty target" % raw, archive_entry=raw)
            if link.startswith("/") or "\x00" in link:
                raise ArchiveError("symlink %r points outside the archive (%s)" % (raw, link), archive_entry=raw)
            self.links[path] = link
        elif kind == HARDLINK:
            target = _clean_name(link or "")
            if self.kinds.get(target) not in (FILE, HARDLINK):
                raise ArchiveError("hardlink %r points outside the archive or not at one of its files (%s)"
                                   % (raw, link), archive_entry=raw)
            link = target
        elif kind == FILE:
            self.size += size
            if self.room is not None and self.size > self.room[0]:
                raise _no_room(self.size, self.room[0], self.room[1])
            if self.max_size is not None and self.size > self.max_size:
                raise ArchiveError("archive unpacks to more than the limit of %d bytes (max_unpacked_size), by the sizes its "
                                   "entries declare (%d bytes up to %r): refused before anything was unpacked"
                                   % (self.max_size, self.size, raw), limit=self.max_size, declared=self.size)
        self.kinds[path] = kind
        self.entries.append(Entry(path, kind, size if kind == FILE else 0, _mode(mode, kind, self.allow_setuid),
                                  mtime, link, index))

    def check_symlinks(self, top: t.Optional[str] = None) -> None:
        """Resolve every symlink inside the final virtual tree; refuse those that leave it.

        With ``top`` (the folder that will be lifted to be the archive dir) they must stay below it.
        """
        for path, target in self.links.items():
            resolved = self._resolve(path, target, 0)
            if resolved is None:
                raise ArchiveError("symlink %r points outside the archive (%s)" % (path, target), archive_entry=path)
            if top is not None and resolved[:1] != [top]:
                raise ArchiveError("symlink %r points outside the folder %r that is lifted to be the archive dir (%s)"
                                   % (path, top, target), archive_entry=path)

    def hoist_candidate(self) -> t.Optional[str]:
        """The agent's rule: one top-level entry, a directory, holding a name that matches /appspec/i."""
        tops = set(p.split("/", 1)[0] for p in self.kinds if p)
        if len(tops) != 1:
            return None
        top = tops.pop()
        if self.kinds.get(top) != DIR:
            return None
        for name in self.kinds:
            parts = name.split("/")
            if len(parts) == 2 and parts[0] == top and _APPSPEC_NAME.search(parts[1]):
                return top
        return None

    def _resolve(self, path: str, target: str, depth: int) -> t.Optional[t.List[str]]:
        if depth > _MAX_SYMLINK_DEPTH:
            return None
        stack = path.split("/")[:-1]
        for comp in target.split("/"):
            if comp in ("", "."):
                continue
            if comp == "..":
                if not stack:
                    return None
                stack.pop()
                continue
            stack.append(comp)
            here = "/".join(stack)
            if self.kinds.get(here) == SYMLINK:
                resolved = self._resolve(here, self.links[here], depth + 1)
                if resolved is None:
                    return None
                stack = resolved
        return stack


def _tar_kind(member: tarfile.TarInfo) -> str:
    if member.isreg():
        return FILE
    if member.isdir():
        return DIR
    if member.issym():
        return SYMLINK
    if member.islnk():
        return HARDLINK
    if member.ischr() or member.isblk():
        raise ArchiveError("archive entry %r is a device file" % member.name, archive_entry=member.name)
    if member.isfifo():
        raise ArchiveError("archive entry %r is a fifo" % member.name, archive_entry=member.name)
    raise ArchiveError("archive entry %r has an unsupported type %r" % (member.name, member.type),
                       archive_entry=member.name)


def _zip_kind(info: zipfile.ZipInfo) -> t.Tuple[str, int]:
    mode = (info.external_attr >> 16) if info.create_system == 3 else 0
    fmt = stat.S_IFMT(mode)
    if fmt == stat.S_IFLNK:
        return SYMLINK, mode
    if fmt in (stat.S_IFCHR, stat.S_IFBLK):
        raise ArchiveError("archive entry %r is a device file" % info.filename, archive_entry=info.filename)
    if fmt == stat.S_IFIFO:
        raise ArchiveError("archive entry %r is a fifo" % info.filename, archive_entry=info.filename)
    if fmt == stat.S_IFSOCK:
        raise ArchiveError("archive entry %r is a socket" % info.filename, archive_entry=info.filename)
    if info.filename.endswith("/") or fmt == stat.S_IFDIR:
        return DIR, mode
    return FILE, mode


def _zip_mtime(info: zipfile.ZipInfo) -> float:
    try:
        return time.mktime(info.date_time + (0, 0, -1))
    except (OverflowError, ValueError):
        return time.time()


# Module-level names: the overridden method's parameter is called ``tarfile``, as in the standard library.
_InvalidHeaderError = tarfile.InvalidHeaderError
_TruncatedHeaderError = tarfile.TruncatedHeaderError
_TarReadError = tarfile.ReadError


class _StrictTarInfo(tarfile.TarInfo):
    """Refuses the headers tarfile would take for the end of the archive, dropping what follows."""

    @classmethod
    def fromtarfile(cls, tarfile: t.Any) -> t.Any:  # pylint: disable=redefined-outer-name
        try:
            return super().fromtarfile(tarfile)
        except _InvalidHeaderError as err:
            raise _TarReadError("damaged header at offset %d (%s)" % (tarfile.offset, err))
        except _TruncatedHeaderError as err:
            raise _TarReadError("archive is truncated at offset %d (%s)" % (tarfile.offset, err))


@contextlib.contextmanager
def _open_tar(path: str, bundle_type: str, stream: bool) -> t.Iterator[tarfile.TarFile]:
    # gzip.GzipFile, not tarfile's own "r|gz" stream: only GzipFile checks the CRC and length at the end.
    with contextlib.ExitStack() as stack:
        fileobj = stack.enter_context(gzip.GzipFile(path, "rb")) if bundle_type == "tgz" \
            else stack.enter_context(open(path, "rb"))
        yield stack.enter_context(tarfile.open(fileobj=fileobj, mode="r|" if stream else "r:",
                                               tarinfo=_StrictTarInfo))


def _check_tar_end(archive: tarfile.TarFile) -> None:
    """Read past the end-of-archive blocks to the real end: only zeros may follow, and a gzip
    stream is checked (CRC, length) when its end is read."""
    while True:
        chunk = archive.fileobj.read(_COPY_CHUNK)  # type: ignore[union-attr]
        if not chunk:
            return
        if chunk.strip(b"\x00"):
            raise ArchiveError("archive has data after the end of the tar archive at offset %d "
                               "(a damaged header, or archives joined together)" % archive.offset)


def _no_room(needed: int, available: int, where: str) -> ArchiveError:
    return ArchiveError("on host %s, the archive needs about %d bytes unpacked (by the sizes it declares) but only %d bytes "
                        "are free in %s: refused before anything was written" % (host_name(), needed, available, where),
                        needed=needed, available=available, host=host_name(), path=where)


def plan_archive(path: str, *, bundle_type: t.Optional[str] = None, max_size: t.Optional[int] = None,
                 allow_setuid: bool = False, max_entries: int = DEFAULT_MAX_ENTRIES, hoist: bool = True,
                 room: t.Optional[t.Tuple[int, str]] = None) -> Plan:
    """Read the archive's index and check every entry; write nothing.

    With ``hoist``, ``plan.hoist`` names the single top-level folder that will become the archive dir.
    ``room`` (bytes free, where): refuse as soon as the declared sizes exceed it, like ``max_size``.
    """
    bundle_type = bundle_type or detect_bundle_type(path)
    checker = _Checker(max_size, max_entries, allow_setuid, room)
    try:
        if bundle_type == "zip":
            with zipfile.ZipFile(path) as archive:
                for index, info in enumerate(archive.infolist()):
                    kind, mode = _zip_kind(info)
                    link = None
                    if kind == SYMLINK:
                        if info.file_size > 4096:
                            raise ArchiveError("symlink %r has an oversized target" % info.filename,
                                               archive_entry=info.filename)
                        link = archive.read(info).decode("utf-8", "surrogateescape")
                    checker.add(info.filename, kind, info.file_size, mode, _zip_mtime(info), link, index)
        elif bundle_type in ("tar", "tgz"):
            # A plain tar is read with seeks over the file data; a gzip stream has to be read through.
            with _open_tar(path, bundle_type, stream=bundle_type == "tgz") as archive:
                for index, member in enumerate(archive):
                    kind = _tar_kind(member)
                    checker.add(member.name, kind, member.size, member.mode, member.mtime,
                                member.linkname if kind in (SYMLINK, HARDLINK) else None, index)
                    if bundle_type == "tar" and kind == FILE and not member.issparse() and checker.entries \
                            and checker.entries[-1].index == index:
                        checker.entries[-1].offset = member.offset_data
                _check_tar_end(archive)
        else:
            raise ArchiveError("unsupported bundle type %r (expected one of %s)" % (bundle_type, ", ".join(BUNDLE_TYPES)))
    except (tarfile.TarError, zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError) as err:
        raise ArchiveError("cannot read %s archive %s: %s" % (bundle_type, path, err))
    top = checker.hoist_candidate() if hoist else None
    checker.check_symlinks(top)
    explicit = set(e.path for e in checker.entries if e.kind == DIR)
    implicit = sorted(p for p, kind in checker.kinds.items() if kind == DIR and p and p not in explicit)
    plan = Plan(bundle_type, checker.entries, implicit)
    plan.hoist = top
    return plan


# --------------------------------------------------------------------------------------------
# Writing


def disk_free(path: str) -> int:
    """Bytes available to this user on the file system holding ``path``."""
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def walk_tree(top: str) -> t.Iterator[t.Tuple[str, t.List[str], t.List[str]]]:
    """``os.walk(top)`` (top-down, symlinks not followed, unreadable dirs skipped) on a stack of its own:
    os.walk recurses once per level before Python 3.12, so a deep tree raised RecursionError."""
    stack = [top]
    while stack:
        here = stack.pop()
        try:
            with os.scandir(here) as listing:
                entries = list(listing)
        except OSError:
            continue
        dirs, files = [], []  # type: t.List[str], t.List[str]
        for entry in entries:
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            (dirs if is_dir else files).append(entry.name)
        yield here, dirs, files
        # Children in reverse on the stack: the caller's (possibly pruned) ``dirs`` are visited in order.
        stack.extend(os.path.join(here, name) for name in reversed(dirs) if not os.path.islink(os.path.join(here, name)))


def _writable_dir(path: str) -> None:
    try:
        os.chmod(path, 0o700)
    except OSError:
        pass


def remove_tree(path: str) -> None:
    """``rm -rf`` that also copes with read-only directories; never follows symlinks.

    Depth-first on a stack of its own: shutil.rmtree recurses once per level before Python 3.12.
    """
    if os.path.islink(path) or (os.path.lexists(path) and not os.path.isdir(path)):
        os.unlink(path)
        return
    if not os.path.lexists(path):
        return
    stack = [path]
    while stack:
        here = stack[-1]
        try:
            with os.scandir(here) as listing:
                entries = list(listing)
        except PermissionError:
            _writable_dir(here)
            with os.scandir(here) as listing:
                entries = list(listing)
        subdirs = [e.path for e in entries if e.is_dir(follow_symlinks=False)]
        if subdirs:
            _writable_dir(here)
            stack.extend(subdirs)  # ``here`` is listed again once they are gone
            continue
        for entry in entries:
            _remove_entry(entry.path, os.unlink)
        _remove_entry(here, os.rmdir)
        stack.pop()


def _remove_entry(path: str, remove: t.Callable[[str], None]) -> None:
    try:
        remove(path)
    except FileNotFoundError:
        pass
    except PermissionError:
        _writable_dir(os.path.dirname(path))  # a read-only parent: ours to delete all the same
        remove(path)


def _copy_exact(src: t.IO[bytes], dst: int, size: int, name: str) -> None:
    left = size
    while left > 0:
        chunk = src.read(min(_COPY_CHUNK, left))
        if not chunk:
            raise ArchiveError("archive entry %r is truncated" % name, archive_entry=name)
        _write_all(dst, chunk)
        left -= len(chunk)
    if src.read(1):
        raise ArchiveError("archive entry %r is larger than its header says" % name, archive_entry=name)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _send_exact(src_fd: int, offset: int, dst: int, size: int, name: str) -> None:
    """Copy ``size`` bytes at ``offset`` of an uncompressed tar in the kernel (no Python buffers)."""
    left = size
    while left > 0:
        sent = os.sendfile(dst, src_fd, offset, min(left, 1 << 30))
        if sent <= 0:
            raise ArchiveError("archive entry %r is truncated" % name, archive_entry=name)
        offset += sent
        left -= sent


def _write_file(root: str, entry: Entry, src: t.Optional[t.IO[bytes]],
                raw: t.Optional[t.Tuple[int, int]] = None) -> None:
    dest = os.path.join(root, entry.path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(dest, flags, 0o600)
    try:
        if raw is not None:
            _send_exact(raw[0], raw[1], fd, entry.size, entry.path)
        else:
            _copy_exact(src, fd, entry.size, entry.path)  # type: ignore[arg-type]
        os.fchmod(fd, entry.mode)
    finally:
        os.close(fd)
    os.utime(dest, (entry.mtime, entry.mtime), follow_symlinks=False)


def _materialise(path: str, plan: Plan, root: str) -> None:
    """Write the planned entries into ``root`` (an empty directory we own)."""
    by_index = {e.index: e for e in plan.entries}
    dirs = [e for e in plan.entries if e.kind == DIR]
    for entry in dirs:
        os.makedirs(os.path.join(root, entry.path), 0o700, exist_ok=True)
    for name in plan.implicit_dirs:
        os.makedirs(os.path.join(root, name), 0o700, exist_ok=True)

    def _handle(index: int, name: str, opener: t.Callable[[], t.IO[bytes]],
                raw: t.Optional[t.Tuple[int, int]] = None) -> None:
        entry = by_index.get(index)
        if entry is None:
            return
        if _clean_name(name) != entry.path:
            raise ArchiveError("archive changed while it was being unpacked (%r)" % name, archive_entry=name)
        if entry.kind == FILE and raw is not None:
            _write_file(root, entry, None, raw)
        elif entry.kind == FILE:
            with opener() as src:
                _write_file(root, entry, src)
        elif entry.kind == HARDLINK:
            os.link(os.path.join(root, entry.link or ""), os.path.join(root, entry.path), follow_symlinks=False)

    try:
        if plan.bundle_type == "zip":
            with zipfile.ZipFile(path) as archive:
                for index, info in enumerate(archive.infolist()):
                    _handle(index, info.filename, lambda info=info: archive.open(info))  # type: ignore[misc]
        else:
            # Plain tar: file data goes from the archive to the new file with sendfile(2) (page cache to
            # page cache), at the offsets the checking pass noted; gzip: read through once, in order.
            if plan.bundle_type == "tar" and hasattr(os, "sendfile") and all(
                    e.offset is not None for e in plan.entries if e.kind == FILE):
                _materialise_plain_tar(path, plan, root)
                return _finish_tree(plan, root, dirs)
            raw_fd = None  # type: t.Optional[int]
            if plan.bundle_type == "tar" and hasattr(os, "sendfile"):
                raw_fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            try:
                with _open_tar(path, plan.bundle_type, stream=False) as archive:
                    for index, member in enumerate(archive):
                        raw = (raw_fd, member.offset_data) if raw_fd is not None and member.isreg() \
                            and not member.issparse() else None
                        _handle(index, member.name, lambda member=member: archive.extractfile(member),  # type: ignore[misc]
                                raw)
                    _check_tar_end(archive)
            finally:
                if raw_fd is not None:
                    os.close(raw_fd)
    except (tarfile.TarError, zipfile.BadZipFile, gzip.BadGzipFile, EOFError, ValueError) as err:
        raise ArchiveError("cannot read %s archive %s: %s" % (plan.bundle_type, path, err))
    _finish_tree(plan, root, dirs)


def _materialise_plain_tar(path: str, plan: Plan, root: str) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        size = os.fstat(fd).st_size
        for entry in plan.entries:
            if entry.kind == FILE:
                if (entry.offset or 0) + entry.size > size:
                    raise ArchiveError("archive entry %r is truncated" % entry.path, archive_entry=entry.path)
                _write_file(root, entry, None, (fd, entry.offset or 0))
            elif entry.kind == HARDLINK:
                os.link(os.path.join(root, entry.link or ""), os.path.join(root, entry.path), follow_symlinks=False)
    finally:
        os.close(fd)


def _finish_tree(plan: Plan, root: str, dirs: t.List[Entry]) -> None:
    # Symlinks last: nothing of the archive can be written through them any more.
    for entry in plan.entries:
        if entry.kind == SYMLINK:
            os.symlink(entry.link or "", os.path.join(root, entry.path))
    for name in plan.implicit_dirs:
        os.chmod(os.path.join(root, name), 0o755)
    for entry in sorted(dirs, key=lambda e: e.path.count("/"), reverse=True):
        dest = os.path.join(root, entry.path)
        os.chmod(dest, entry.mode)
        os.utime(dest, (entry.mtime, entry.mtime))


def unpack_archive(path: str, target: str, *, bundle_type: t.Optional[str] = None, max_size: t.Optional[int] = None,
                   allow_setuid: bool = False, hoist: bool = True,
                   free_space: t.Optional[t.Callable[[str], int]] = None,
                   check: t.Optional[t.Callable[[str], None]] = None,
                   max_entries: int = DEFAULT_MAX_ENTRIES) -> UnpackResult:
    """Check, then unpack ``path`` into the new directory ``target`` (replaced if it exists).

    ``check`` is called with the unpacked directory before it is renamed into place; an exception
    from it leaves nothing behind, like any other failure.
    """
    parent = os.path.dirname(os.path.abspath(target))
    os.makedirs(parent, exist_ok=True)
    available = (free_space or disk_free)(parent)
    plan = plan_archive(path, bundle_type=bundle_type, max_size=max_size, allow_setuid=allow_setuid,
                        max_entries=max_entries, hoist=hoist, room=(available, parent))
    if plan.disk_size > available:  # with the file system's blocks and an entry's own space counted
        raise _no_room(plan.disk_size, available, parent)
    temp = tempfile.mkdtemp(prefix=".%s.tmp-" % os.path.basename(target), dir=parent)
    try:
        try:
            _materialise(path, plan, temp)
        except OSError as err:
            if is_disk_error(err):  # the free space went elsewhere meanwhile, or a name too long: no bare errno
                inodes = no_inodes_left(temp)
                remove_tree(temp)
                raise disk_error(err, "unpacking the revision", target, plan.disk_size, out_of_inodes=inodes)
            raise
        hoisted = plan.hoist
        content = os.path.join(temp, hoisted) if hoisted else temp
        if not hoisted:
            os.chmod(temp, 0o755)
        if check is not None:
            check(content)
        old = None
        if os.path.lexists(target):
            old = tempfile.mkdtemp(prefix=".%s.old-" % os.path.basename(target), dir=parent)
            os.rename(target, os.path.join(old, "x"))
        os.rename(content, target)
        if old:
            remove_tree(old)
    except BaseException:
        remove_tree(temp)
        raise
    if hoisted:
        remove_tree(temp)
    counts = {FILE: 0, DIR: 0, SYMLINK: 0, HARDLINK: 0}
    for entry in plan.entries:
        counts[entry.kind] += 1
    return UnpackResult(plan.bundle_type, plan.size, counts[FILE] + counts[HARDLINK], counts[DIR], counts[SYMLINK], hoisted)
