# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of appspec.deploy.deployment_history: record, list, block and promote revisions.

Runs on the controller only; the logic is ``plugin_utils._history``.
"""

from __future__ import annotations

import json
import os
import time

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.appspec.deploy.plugins.module_utils._errors import DeployError
from ansible_collections.appspec.deploy.plugins.plugin_utils import _history
from ansible_collections.appspec.deploy.plugins.plugin_utils._package import write_text

OPERATIONS = ("record", "list", "block", "unblock", "promote")
ARGUMENT_SPEC = {
    "operation": {"type": "str", "required": True, "choices": list(OPERATIONS)},
    "history": {"type": "str", "default": ""},
    "s3_endpoint_url": {"type": "str"},
    "s3_region": {"type": "str"},
    "application": {"type": "str", "default": ""},
    "deployment": {"type": "dict"},
    "outcome": {"type": "dict", "default": {}},
    "started": {"type": "float"},
    "environment": {"type": "str", "default": ""},
    "environments": {"type": "list", "elements": "str", "default": []},
    "sha256": {"type": "str", "default": ""},
    "reason": {"type": "str", "default": ""},
    "limit": {"type": "int", "default": 0},
    "json_file": {"type": "path"},
}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False  # everything happens on the controller

    def run(self, tmp=None, task_vars=None):
        dummy, args = self.validate_argument_spec(
            argument_spec=ARGUMENT_SPEC,
            required_if=[("operation", "record", ("deployment",)), ("operation", "block", ("application", "sha256")),
                         ("operation", "unblock", ("application", "sha256")),
                         ("operation", "promote", ("application", "environment", "environments"))])
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        try:
            store = _history.open_store(args["history"], s3_endpoint_url=args["s3_endpoint_url"], s3_region=args["s3_region"])
            result.update(getattr(self, "_" + args["operation"])(store, args, task_vars))
            result.setdefault("history", store.location)
        except _history.HistoryError as err:
            if args["operation"] != "record":
                raise AnsibleActionFail(str(err), result=dict(err.details))
            # The deployment is done: a history that cannot be written must not hide its outcome (the report
            # runs next). Promotion reads the history, so it refuses what is missing from it.
            result.update(changed=False, recorded=False,
                          warnings=["the deployment was NOT recorded in the revision history: %s" % err])
            return result
        except DeployError as err:
            raise AnsibleActionFail(str(err), result=dict(err.details))
        return result

    def _record(self, store, args, task_vars):
        deployment = args["deployment"]
        hosts = _history.host_results(deployment, task_vars.get("hostvars") or {})
        # The run's start: the deployment is planned by its first task (the ansible-playbook process's start).
        started = args["started"] or _history.process_start(os.getppid())
        record = _history.make_record(deployment, args["outcome"], hosts, started=started, ended=time.time(),
                                      user=_history.who(task_vars),
                                      extra={"awx_job_id": task_vars.get("awx_job_id") or task_vars.get("tower_job_id")})
        name = _history.record_name(record)
        if self._task.check_mode:
            return {"changed": True, "record": record, "msg": "would record %s in %s" % (name, store.location)}
        _history.write_record(store, record)
        return {"changed": True, "record": record, "recorded": True,
                "msg": "recorded %s (%s) in %s" % (record["deployment_id"], record["status"], store.location)}

    def _list(self, store, args, task_vars):
        listing = _history.listing(store, args["application"] or None, args["environment"] or None, args["limit"])
        if args["json_file"] and not self._task.check_mode:
            data = dict((key, value) for key, value in listing.items() if key != "text")
            write_text(args["json_file"], json.dumps(data, indent=1, sort_keys=True) + "\n")
        return dict(listing, changed=False)

    def _block(self, store, args, task_vars, blocked=True):
        changed, before, after = _history.set_block(store, args["application"], args["sha256"], blocked, args["reason"],
                                                    _history.who(task_vars), time.time(), bool(self._task.check_mode))
        verb = ("would " if self._task.check_mode else "") + ("block" if blocked else "unblock")
        result = {"changed": changed, "block": after,
                  "msg": ("%s revision %s of %s%s" % (verb, after.get("sha256") or args["sha256"], args["application"],
                                                      ": " + args["reason"] if blocked else "")) if changed
                  else "revision %s of %s is already %s" % (args["sha256"], args["application"], "blocked" if blocked else "not blocked")}
        if self._task.diff:
            result["diff"] = {"before": before or {}, "after": after}
        return result

    def _unblock(self, store, args, task_vars):
        return self._block(store, args, task_vars, blocked=False)

    def _promote(self, store, args, task_vars):
        application = args["application"]
        promotion = _history.check_promotion(_history.read_records(store, application), _history.read_blocks(store, application),
                                             args["environments"], args["environment"], args["sha256"] or None, application)
        return {"changed": False, "promotion": promotion,
                "msg": "revision %s of %s succeeded in %s (%s, %s): it may go to %s" % (
                    promotion["sha256"], application, promotion["from_environment"], promotion["from_deployment_id"],
                    promotion["from_ended"], promotion["environment"])}
