# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one exception family of appspec.deploy's plain Python code.

Modules catch :class:`DeployError` and turn it into ``fail_json(msg=str(err), **err.details)``.
"""

from __future__ import annotations

import typing as t


class DeployError(Exception):
    """A failure a user can act on. ``details`` are extra return values for ``fail_json``."""

    def __init__(self, message: str, **details: t.Any) -> None:
        super().__init__(message)
        self.details = details
