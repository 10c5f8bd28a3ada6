# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read an AppSpec that lives on a managed host, through the task's connection (become included).

Hosts have no YAML parser: action plugins bring the text to the controller and parse it there.
"""

from __future__ import annotations

import base64
import posixpath
import typing as t

from ansible.plugins.action import ActionBase

from ansible_collections.appspec.deploy.plugins.module_utils._errors import DeployError
from ansible_collections.appspec.deploy.plugins.plugin_utils._appspec import MAX_APPSPEC_BYTES, appspec_candidates


def read_remote_appspec(action: ActionBase, task_vars: t.Dict[str, t.Any], path: str,
                        appspec_filename: t.Optional[str] = None) -> t.Tuple[bytes, str]:
    """(content, path on the host) of the AppSpec at ``path``: a file, or a revision directory.

    In a directory ``appspec_filename``, then ``appspec.yml``, then ``appspec.yaml`` are tried,
    as :func:`plugin_utils._appspec.find_appspec` does on the controller.
    """
    stat = action._execute_remote_stat(path, all_vars=task_vars, follow=True)  # pylint: disable=protected-access
    if not stat.get("exists"):
        raise DeployError("%s does not exist on the host" % path)
    candidates = [path]
    if stat.get("isdir"):
        candidates = [posixpath.join(path, name) for name in appspec_candidates(appspec_filename)]
    for candidate in candidates:
        answer = action._execute_module(  # pylint: disable=protected-access
            module_name="ansible.legacy.slurp", module_args={"src": candidate}, task_vars=task_vars)
        if answer.get("failed"):
            if stat.get("isdir") and "not found" in str(answer.get("msg", "")).lower():
                continue
            raise DeployError("cannot read %s on the host: %s" % (candidate, answer.get("msg")))
        data = base64.b64decode(answer["content"])
        if len(data) > MAX_APPSPEC_BYTES:
            raise DeployError("AppSpec file %s is larger than %d bytes" % (candidate, MAX_APPSPEC_BYTES))
        return data, candidate
    raise DeployError("no AppSpec file in %s on the host: looked for %s"
                      % (path, ", ".join(appspec_candidates(appspec_filename))), revision_dir=path)
