# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of appspec.deploy.traffic_plan: plan a blue/green switch or canary steps on the controller.

The logic is ``plugin_utils._traffic``; inventory groups and host variables come from the task's variables.
"""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.validation import check_type_list
from ansible.plugins.action import ActionBase

from ansible_collections.appspec.deploy.plugins.module_utils._errors import DeployError
from ansible_collections.appspec.deploy.plugins.plugin_utils._traffic import plan_blue_green, plan_canary, server_names

ARGUMENT_SPEC = {
    "strategy": {"type": "str", "choices": ["blue_green", "canary"], "required": True},
    "servers": {"type": "dict", "required": True},
    "hosts": {"type": "list", "elements": "str", "required": True},
    "groups": {"type": "raw", "default": []},
    "live_group": {"type": "str", "default": ""},
    "steps": {"type": "raw", "default": "CodeDeployDefault.Canary10Percent5Minutes"},
    "analysis": {"type": "dict", "default": {}},
}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False  # planned from the load balancer reading and the inventory; no host is contacted

    def run(self, tmp=None, task_vars=None):
        dummy, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        hostvars = task_vars.get("hostvars") or {}
        try:
            if args["strategy"] == "blue_green":
                groups = check_type_list(args["groups"])  # a survey answers "blue,green"
                members = {group: list(task_vars.get("groups", {}).get(group, [])) for group in groups}
                hosts = [host for group in groups for host in members[group]]
                plan = plan_blue_green(groups, members, server_names(hosts, hostvars), args["servers"],
                                       args["hosts"], args["live_group"]).as_dict()
            else:
                plan = plan_canary(args["steps"], args["hosts"], server_names(args["hosts"], hostvars), args["servers"],
                                   args["analysis"])
        except DeployError as err:
            raise AnsibleActionFail(str(err))
        result.update(changed=False, plan=plan)
        return result
