# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one exception family of appspec.deploy's plain Python code.

Modules catch :class:`DeployError` and turn it into ``fail_json(msg=str(err), **err.details)``.
:func:`disk_error` turns a bare ``[Errno 28]`` / ``[Errno 36]`` into one a user can act on: the host,
what was being done, the user's own path, the bytes needed and free.
"""

from __future__ import annotations

import errno
import os
import shutil
import socket
import typing as t

# A file system that is full (or a quota reached), a name it cannot hold: the user's to fix, not a bug.
DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.ENAMETOOLONG, errno.EFBIG)


class DeployError(Exception):
    """A failure a user can act on. ``details`` are extra return values for ``fail_json``."""

    def __init__(self, message: str, **details: t.Any) -> None:
        super().__init__(message)
        self.details = details


def host_name() -> str:
    return socket.gethostname()


def free_bytes(path: str) -> t.Optional[int]:
    """Bytes free to this user on the file system of ``path`` (or of its nearest existing parent)."""
    here = os.path.abspath(path)
    while True:
        try:
            return shutil.disk_usage(here).free
        except OSError:
            parent = os.path.dirname(here)
            if parent == here:
                return None
            here = parent


def no_inodes_left(path: str) -> bool:
    here = os.path.abspath(path)
    while not os.path.exists(here) and os.path.dirname(here) != here:
        here = os.path.dirname(here)
    try:
        st = os.statvfs(here)
    except OSError:
        return False
    return st.f_files > 0 and st.f_favail == 0


def is_disk_error(err: BaseException) -> bool:
    return isinstance(err, OSError) and err.errno in DISK_ERRNOS


def disk_error(err: OSError, doing: str, path: str, needed: t.Optional[int] = None, *,
               aftermath: t.Optional[str] = "what was half-made there was removed",
               out_of_inodes: t.Optional[bool] = None) -> DeployError:
    """A DeployError for ``err`` (ENOSPC, EDQUOT, ENAMETOOLONG, EFBIG) met while ``doing`` (e.g. "unpacking
    the revision") under ``path`` (the user's path, never a temp name of ours): names the host, the path,
    the bytes ``needed`` when known and those free now, and, for a long name, the one that failed.
    ``out_of_inodes``: whether the file system had no inode left when it failed (found out here when None;
    tell it when what was half-made is removed before this is called)."""
    host = host_name()
    code = errno.errorcode.get(err.errno or 0, str(err.errno))
    free = free_bytes(path)
    details = {"host": host, "path": path, "errno": code, "needed_bytes": needed, "free_bytes": free}  # type: t.Dict[str, t.Any]
    if err.errno == errno.ENAMETOOLONG:
        name = os.path.basename(str(err.filename or "")) or str(err.filename or "?")
        problem = ("a file name is too long for the file system (ENAMETOOLONG: %d bytes in %r; names hold at most 255 "
                   "bytes, paths 4096)" % (len(name.encode("utf-8", "surrogateescape")), name))
    else:
        what = {errno.ENOSPC: "no space left on the file system", errno.EDQUOT: "the disk quota is exhausted",
                errno.EFBIG: "a file is larger than the file system allows"}.get(err.errno or 0, err.strerror or str(err))
        sizes = []
        if err.errno == errno.ENOSPC and (out_of_inodes if out_of_inodes is not None else no_inodes_left(path)):
            what = "no free inodes (file entries) left on the file system"
        if needed is not None:
            sizes.append("about %d bytes needed" % needed)
        if free is not None:
            sizes.append("%d bytes free now" % free)
        problem = "%s (%s)%s" % (what, code, ": %s" % ", ".join(sizes) if sizes else "")
    return DeployError("on host %s, %s could not write in %s: %s%s" % (
        host, doing, path, problem, "; %s" % aftermath if aftermath else ""), **details)
