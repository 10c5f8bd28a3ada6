# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The action plugins' uploads: a file the plugin put into the task's own temp dir is the module's to move.

Shared by the ``bundle`` and ``lifecycle_event`` modules (DownloadBundle). Plain functions of paths:
the module passes its temp dir (``AnsibleModule._tmpdir``).
"""

from __future__ import annotations

import os
import shutil
import typing as t


def consumes_upload(path: t.Optional[str], tmpdir: t.Optional[str]) -> bool:
    """The action plugin's upload lands in the task's own temp dir: that file is ours to move."""
    return bool(path and tmpdir and os.path.dirname(os.path.abspath(path)) == os.path.abspath(tmpdir))


def drop_upload(path: str, consume: bool) -> bool:
    """Remove what is left of an upload (the file when it was reused, and its temp dir).

    True when the temp dir itself was removed: the module then returns
    ``_ansible_suppress_tmpdir_delete`` and spares the action plugin a round trip.
    """
    if not consume:
        return False
    tmpdir = os.path.dirname(os.path.abspath(path))
    try:
        if os.path.lexists(path):
            os.unlink(path)
        # Without pipelining the task's temp dir also holds this module's own AnsiballZ file.
        if any(not (name.startswith("AnsiballZ_") or name == "args") for name in os.listdir(tmpdir)):
            return False
        shutil.rmtree(tmpdir)
    except OSError:
        return False
    return True
