# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Small crash-safe file helpers shared by the other module_utils."""

from __future__ import annotations

import os
import tempfile
import typing as t


def atomic_write_text(path: str, text: str, mode: int = 0o644) -> None:
    """Write ``text`` to ``path`` through a temp file in the same directory and ``os.replace``."""
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise


def read_text(path: str) -> t.Optional[str]:
    """Return the file's text, or None when it does not exist."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def replace_symlink(target: str, link_path: str) -> None:
    """Point ``link_path`` at ``target`` atomically: a new link under a temp name, then rename(2).

    Never rm + ln: a reader resolving ``link_path`` sees the old or the new target, never nothing.
    """
    directory = os.path.dirname(link_path) or "."
    tmp = os.path.join(directory, ".%s.tmp-%d" % (os.path.basename(link_path), os.getpid()))
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(target, tmp)
    try:
        os.replace(tmp, link_path)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise
