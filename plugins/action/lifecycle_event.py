# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of appspec.deploy.lifecycle_event: the hosts' AppSpecs are parsed on the controller.

The module runs the events with the normalized AppSpec each deployment keeps as ``appspec.json``.
A host last deployed by the CodeDeploy agent has no such file for its last successful revision,
only that revision's YAML AppSpec. The module then answers ``appspec_needed`` before running
anything; this plugin reads that YAML through the connection, parses it here and runs the module
again with ``previous_appspec`` (or with ``previous_appspec_error`` when it is invalid, so that the
events of that revision fail as the agent's would and ``ignore_application_stop_failures`` applies).
"""

from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.appspec.deploy.plugins.module_utils._errors import DeployError
from ansible_collections.appspec.deploy.plugins.plugin_utils._appspec import parse_appspec_bytes
from ansible_collections.appspec.deploy.plugins.plugin_utils._remote_files import read_remote_appspec

MODULE = "appspec.deploy.lifecycle_event"


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = True

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp
        args = dict(self._task.args)
        answer = self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars)
        needed = answer.get("appspec_needed") if answer.get("failed") else None
        if needed and "previous_appspec" not in args:
            try:
                data, source = read_remote_appspec(self, task_vars, needed["archive_dir"])
                args["previous_appspec"] = parse_appspec_bytes(data, source).as_dict()
            except DeployError as err:
                args["previous_appspec_error"] = "the last successful revision's AppSpec cannot be used: %s" % err
            answer = self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars)
        result.update(answer)
        return result
