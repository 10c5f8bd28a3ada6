# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of appspec.deploy.deployment_outcome: CodeDeploy's verdict after the last batch.

Runs on the controller only; the rules are ``_deployment.outcome``.
"""

from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.appspec.deploy.plugins.plugin_utils._deployment import host_states, outcome


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False  # decided from hostvars alone; no host is contacted

    def run(self, tmp=None, task_vars=None):
        dummy, args = self.validate_argument_spec(argument_spec={
            "deployment_id": {"type": "str", "required": True},
            "hosts": {"type": "list", "elements": "str", "required": True},
            "required_successes": {"type": "int", "required": True},
            "stopped": {"type": "bool", "default": False},
            "stopped_reason": {"type": "str", "default": ""},
        })
        result = super().run(tmp, task_vars)
        decided = outcome(args["deployment_id"], args["hosts"],
                          host_states((task_vars or {}).get("hostvars") or {}, args["hosts"]),
                          args["required_successes"], args["stopped"], args["stopped_reason"])
        result.update(changed=False, outcome=decided.as_dict())
        return result
