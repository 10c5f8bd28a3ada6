# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: deployment_summary
type: aggregate
short_description: Per-host, per-lifecycle-event report of an appspec.deploy deployment
version_added: 0.1.0
description:
  - Collects the results of M(appspec.deploy.bundle) and M(appspec.deploy.lifecycle_event) and, at the
    end of the run, prints one table of hosts by lifecycle event (status and seconds), the way the
    CodeDeploy console lists instance events.
  - With O(summary_file) set, also writes the same report as JSON (hosts, events, scripts, failures).
  - The table is left out when the stdout callback writes JSON, so that its output stays one document.
  - Enable it with C(callbacks_enabled = appspec.deploy.deployment_summary) in C(ansible.cfg).
author:
  - appspec.deploy developers (@appspec-deploy)
options:
  summary_file:
    description: Write the report as JSON to this file on the controller.
    type: path
    env:
      - name: APPSPEC_DEPLOY_SUMMARY_FILE
    ini:
      - section: appspec_deploy
        key: summary_file
"""

import json
import time
import typing as t

from ansible import constants as C
from ansible.plugins.callback import CallbackBase

LIFECYCLE_ACTIONS = ("appspec.deploy.lifecycle_event", "lifecycle_event")
BUNDLE_ACTIONS = ("appspec.deploy.bundle", "bundle")


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "appspec.deploy.deployment_summary"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        # host -> list of {event, status, duration, ...} in the order they ran
        self.hosts: t.Dict[str, t.List[t.Dict[str, t.Any]]] = {}
        self.started: t.Dict[t.Tuple[str, str], float] = {}

    def v2_runner_on_start(self, host: t.Any, task: t.Any) -> None:
        self.started[(host.get_name(), task._uuid)] = time.monotonic()

    def _record(self, result: t.Any) -> None:
        action = result._task.action
        host = result._host.get_name()
        data = result._result
        if action in LIFECYCLE_ACTIONS:
            for event in data.get("events") or []:
                self.hosts.setdefault(host, []).append(event)
        elif action in BUNDLE_ACTIONS:
            self.hosts.setdefault(host, []).append({
                "event": "DownloadBundle",
                "status": "failed" if data.get("failed") else "succeeded",
                "duration": round(time.monotonic() - self.started.pop((host, result._task._uuid), time.monotonic()), 3),
                "bytes_transferred": data.get("bytes_transferred"),
                "reused": data.get("reused"),
                "msg": data.get("msg") if data.get("failed") else None,
            })

    def v2_runner_on_ok(self, result: t.Any) -> None:
        self._record(result)

    def v2_runner_on_failed(self, result: t.Any, ignore_errors: bool = False) -> None:
        self._record(result)

    def v2_playbook_on_stats(self, stats: t.Any) -> None:
        if not self.hosts:
            return
        path = self.get_option("summary_file")
        if path:
            with open(path, "w", encoding="utf-8") as handle:
                json.dump({"hosts": self.hosts}, handle, indent=2, sort_keys=True)
        # A machine-readable stdout (the json callbacks) must stay one document: nothing after it.
        if "json" in str(C.config.get_config_value("DEFAULT_STDOUT_CALLBACK")):
            return
        self._display.banner("APPSPEC DEPLOYMENT SUMMARY")
        for line in render_table(self.hosts):
            self._display.display(line)
        if path:
            self._display.display("summary written to %s" % path)


def render_table(hosts: t.Dict[str, t.List[t.Dict[str, t.Any]]]) -> t.List[str]:
    """One row per host, one column per event in the order first seen: ``ok 0.4s``, ``FAILED``, ``-``."""
    columns: t.List[str] = []
    for events in hosts.values():
        for event in events:
            if event["event"] not in columns:
                columns.append(event["event"])
    rows = [["host"] + columns]
    for host, events in sorted(hosts.items()):
        cells = {}
        for event in events:  # a later run of the same event (a rollback) wins
            cells[event["event"]] = _cell(event)
        rows.append([host] + [cells.get(column, "") for column in columns])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]


def _cell(event: t.Dict[str, t.Any]) -> str:
    status = event.get("status") or "?"
    shown = {"succeeded": "ok", "failed": "FAILED", "skipped": "-"}.get(status, status)
    duration = event.get("duration")
    if status != "skipped" and isinstance(duration, (int, float)):
        return "%s %.1fs" % (shown, duration)
    return shown
