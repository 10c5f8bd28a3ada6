# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of appspec.deploy.deployment_watch: settle a watch, judge one round, record the verdict.

Runs on the controller only; the logic is ``plugin_utils._watch`` (and ``_history.record_watch``).
"""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.appspec.deploy.plugins.module_utils._errors import DeployError
from ansible_collections.appspec.deploy.plugins.plugin_utils import _history, _watch
from ansible_collections.appspec.deploy.plugins.plugin_utils._traffic import server_names

ARGUMENT_SPEC = {
    "operation": {"type": "str", "required": True, "choices": ["settle", "judge", "record"]},
    "deployment_id": {"type": "str", "required": True},
    "seconds": {"type": "raw"},
    "interval": {"type": "raw"},
    "max_failure_rate": {"type": "raw"},
    "max_latency_ms": {"type": "raw"},
    "max_error_rate": {"type": "raw"},
    "min_requests": {"type": "raw"},
    "probes": {"type": "list", "elements": "raw", "default": []},
    "settings": {"type": "dict", "default": {}},
    "state": {"type": "dict", "default": {}},
    "round": {"type": "int", "default": 1},
    "hosts": {"type": "list", "elements": "str", "default": []},
    "http_results": {"type": "list", "elements": "dict", "default": []},
    "command_results": {"type": "list", "elements": "dict", "default": []},
    "before": {"type": "dict"},
    "after": {"type": "dict"},
    "application": {"type": "str", "default": ""},
    "history": {"type": "str", "default": ""},
    "s3_endpoint_url": {"type": "str"},
    "s3_region": {"type": "str"},
}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        dummy, args = self.validate_argument_spec(
            argument_spec=ARGUMENT_SPEC,
            required_if=[("operation", "judge", ("settings",)), ("operation", "record", ("application", "state"))])
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        try:
            result.update(getattr(self, "_" + args["operation"])(args, task_vars))
        except DeployError as err:
            raise AnsibleActionFail(str(err), result=dict(err.details))
        result.update(changed=result.get("changed", False), deployment_id=args["deployment_id"])
        return result

    def _settle(self, args, task_vars):
        settings = _watch.settle(args["seconds"], args["interval"], args["max_failure_rate"], args["max_latency_ms"],
                                 args["max_error_rate"], args["min_requests"], args["probes"])
        msg = ("no watch (appspec_watch_seconds is 0)" if not settings["rounds"] else
               "watching %s for %ds: %d rounds, one every %ds, %d HTTP and %d command probes per host" % (
                   args["deployment_id"], settings["seconds"], settings["rounds"], settings["interval"],
                   len(settings["http_probes"]), len(settings["command_probes"])))
        return {"settings": settings, "msg": msg}

    def _judge(self, args, task_vars):
        settings = args["settings"]
        servers = []
        if args["before"] is not None and args["after"] is not None:
            servers = sorted(set(server_names(args["hosts"], task_vars.get("hostvars") or {}).values()))
        verdict = _watch.judge_round(args["round"], settings, args["http_results"], args["command_results"],
                                     args["before"], args["after"], servers)
        state = _watch.decide(args["state"], verdict, int(settings.get("rounds") or args["round"]))
        # The task does not fail on a failed round: the playbook rolls the deployment back first, then fails the run.
        return {"round": verdict, "watch": state, "msg": verdict["line"]}

    def _record(self, args, task_vars):
        hostvars = task_vars.get("hostvars") or {}
        rollback = {}
        for host in args["hosts"]:
            variables = hostvars[host] if host in hostvars else {}
            if variables.get("rollback_status") is not None:
                rollback[host] = {"status": str(variables.get("rollback_status")), "msg": variables.get("rollback_message")}
        watch = {key: args["state"].get(key) for key in ("verdict", "reason", "rounds", "planned_rounds", "history")}
        try:
            store = _history.open_store(args["history"], s3_endpoint_url=args["s3_endpoint_url"], s3_region=args["s3_region"])
            record = _history.record_watch(store, args["application"], args["deployment_id"], watch, rollback,
                                           check_mode=bool(self._task.check_mode))
        except _history.HistoryError as err:
            return {"recorded": False, "warnings": ["the watch was NOT recorded in the revision history: %s" % err]}
        if record is None:
            return {"recorded": False, "warnings": ["deployment %s is not in the revision history %s: the watch was not "
                                                    "recorded" % (args["deployment_id"], store.location)]}
        return {"changed": True, "recorded": not self._task.check_mode, "record": record,
                "msg": "recorded the watch of %s (%s) in %s" % (args["deployment_id"], watch["verdict"], store.location)}
