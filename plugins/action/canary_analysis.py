# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of appspec.deploy.canary_analysis: judge one canary step on the controller (``_traffic.judge``)."""

from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.appspec.deploy.plugins.plugin_utils._traffic import judge, probe_outcomes, validation_outcomes

ARGUMENT_SPEC = {
    "deployment_id": {"type": "str", "required": True},
    "step": {"type": "int", "required": True},
    "thresholds": {"type": "dict", "required": True},
    "before": {"type": "dict", "required": True},
    "after": {"type": "dict", "required": True},
    "updated": {"type": "list", "elements": "str", "required": True},
    "baseline": {"type": "list", "elements": "str", "default": []},
    "probe_results": {"type": "list", "elements": "dict", "default": []},
    "validate_results": {"type": "list", "elements": "dict", "default": []},
}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        dummy, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        result = super().run(tmp, task_vars)
        verdict = judge(args["step"], args["thresholds"], args["before"], args["after"], args["updated"],
                        args["baseline"], probe_outcomes(args["probe_results"]),
                        validation_outcomes(args["validate_results"]))
        # The task does not fail on a failed analysis: the playbook rolls back first, then fails the run.
        result.update(changed=False, deployment_id=args["deployment_id"], analysis=verdict)
        return result
