# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of appspec.deploy.deployment_gate: the minimum-of-healthy-hosts check before a batch.

Runs on the controller only; the rule is ``_deployment.gate``.
"""

from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.appspec.deploy.plugins.plugin_utils._deployment import gate, host_states


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False  # decided from hostvars alone; no host is contacted

    def run(self, tmp=None, task_vars=None):
        dummy, args = self.validate_argument_spec(argument_spec={
            "deployment_id": {"type": "str", "required": True},
            "max_unhealthy": {"type": "int", "required": True},
        })
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        if args["max_unhealthy"] < 1:
            return dict(result, failed=True, msg="max_unhealthy must be 1 or more, not %d." % args["max_unhealthy"])
        all_hosts = list(task_vars.get("ansible_play_hosts_all") or [])
        decision = gate(args["deployment_id"], args["max_unhealthy"], all_hosts,
                        list(task_vars.get("ansible_play_batch") or []),
                        host_states(task_vars.get("hostvars") or {}, all_hosts))
        result.update(changed=False, **decision.as_dict())
        return result
