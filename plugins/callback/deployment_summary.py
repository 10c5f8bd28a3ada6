# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: deployment_summary
type: aggregate
short_description: Per-deployment, per-host, per-lifecycle-event report of an appspec.deploy run
version_added: 0.1.0
description:
  - Collects the results of M(appspec.deploy.bundle) and M(appspec.deploy.lifecycle_event) and, at the
    end of the run, prints one table with a row per deployment and host and a column per lifecycle event
    (status and seconds), the way the CodeDeploy console lists instance events. See C(docs/report.md).
  - A deployment is the O(appspec.deploy.lifecycle_event#module:deployment_id) of the tasks. Calls with
    O(appspec.deploy.lifecycle_event#module:rollback=true) make a rollback of their own, reported apart from
    the deployment it rolls back even under the same id, with the row label C((rollback)).
  - Each event's status is the one the module returned for it (V(succeeded), V(failed), V(skipped)). A task that
    failed before any event ran (the revision could not be fetched, the host lock is held) shows as failed the event
    named in its C(failed_event), else its V(DownloadBundle) event, else its first event, and its other events as skipped.
    The bundle module's result is the V(DownloadBundle) event; a task counts as failed when Ansible reports it
    failed (or unreachable), whatever its result holds.
  - In check mode nothing runs; events that would run show as C(would run) (V(would_run) in the JSON) and the
    report is marked as a check-mode run. In a real run, a check-mode task (like the rollback role's search for
    its target) only previews; the next real result of the same event replaces its V(would_run).
  - With O(summary_file) set, also writes the report as JSON. Its keys are V(check_mode) (true when every
    recorded task ran in check mode), V(deployments) and V(hosts).
  - Each item of V(deployments), in the order the deployments started, holds V(deployment_id), V(kind)
    (V(deployment) or V(rollback)), V(rollback_of) (for a rollback, the deployment rolled back, when known),
    V(status), V(hosts) (each host's events in run order, as the module returns them with the scripts, exit codes
    and output tails), V(host_status) and V(failures) (each failed host's task message).
  - A status of a host or a deployment is the first of V(failed), V(would_run), V(succeeded), V(skipped) that any
    of its events has (an ignored failure counts as succeeded), V(failed) as well when one of its tasks failed.
  - V(hosts) is the report of earlier versions, kept for compatibility, with every event of every deployment,
    each tagged with its V(deployment_id) and V(kind).
  - Under the table, each deployment's traffic changes (the results of M(appspec.deploy.load_balancer) that changed
    servers, in order) and canary analyses (M(appspec.deploy.canary_analysis)) with their metrics; in the JSON, each
    deployment's V(traffic) and V(analyses). A change belongs to the deployment its task names in C(deployment_id),
    else to the deployment whose events were reported last. A failed change or analysis makes the deployment failed.
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

import dataclasses
import json
import os
import time
import typing as t

from ansible import constants as C
from ansible.module_utils.common.validation import check_type_list
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.callback import CallbackBase

from ansible_collections.appspec.deploy.plugins.module_utils._spec import IN_PLACE_EVENTS

LIFECYCLE_ACTIONS = ("appspec.deploy.lifecycle_event", "lifecycle_event")
BUNDLE_ACTIONS = ("appspec.deploy.bundle", "bundle")
TRAFFIC_ACTIONS = ("appspec.deploy.load_balancer", "load_balancer")
ANALYSIS_ACTIONS = ("appspec.deploy.canary_analysis", "canary_analysis")
DOWNLOAD_BUNDLE = "DownloadBundle"
# The status of a host or deployment is the first of these any of its events has.
ROLLUP_ORDER = ("failed", "would_run", "succeeded", "skipped")
SHOWN = {"succeeded": "ok", "failed": "FAILED", "skipped": "-", "would_run": "would run"}
NOT_RUN = "the task failed before any event ran"

Entry = t.Dict[str, t.Any]


def _rollup(statuses: t.Iterable[str]) -> str:
    """The worst of ``statuses`` (one the callback does not know counts as failed); skipped when there is none."""
    rank = {status: index for index, status in enumerate(ROLLUP_ORDER)}
    return min(statuses, key=lambda status: rank.get(status, 0), default="skipped")


def _event_rollup(entry: Entry) -> str:
    # An ApplicationStop failure ignored with ignore_application_stop_failures does not fail the host.
    return "succeeded" if entry["status"] == "failed" and entry.get("ignored") else entry["status"]


@dataclasses.dataclass
class Deployment:
    """One deployment (or rollback): its hosts' events in the order they ran."""

    deployment_id: str
    kind: str
    rollback_of: t.Optional[str] = None
    hosts: t.Dict[str, t.List[Entry]] = dataclasses.field(default_factory=dict)
    failures: t.Dict[str, str] = dataclasses.field(default_factory=dict)
    traffic: t.List[Entry] = dataclasses.field(default_factory=list)  # load balancer changes, in order
    analyses: t.List[Entry] = dataclasses.field(default_factory=list)  # canary verdicts, in order

    def add(self, host: str, entries: t.List[Entry]) -> None:
        events = self.hosts.setdefault(host, [])
        for entry in entries:
            # A check-mode preview gives way to the next result of the same event (roles/rollback previews ApplicationStop).
            preview = next((i for i, old in enumerate(events) if old["event"] == entry["event"] and old["status"] == "would_run"), None)
            if preview is None:
                events.append(entry)
            else:
                events[preview] = entry

    def host_status(self, host: str) -> str:
        return _rollup([_event_rollup(e) for e in self.hosts[host]] + (["failed"] if host in self.failures else []))

    def as_dict(self) -> t.Dict[str, t.Any]:
        host_status = {host: self.host_status(host) for host in sorted(self.hosts)}
        statuses = list(host_status.values()) + ["failed" for item in self.traffic + self.analyses if item["status"] == "failed"]
        report = {"deployment_id": self.deployment_id, "kind": self.kind, "status": _rollup(statuses),
                  "hosts": self.hosts, "host_status": host_status, "failures": self.failures,
                  "traffic": self.traffic, "analyses": self.analyses}  # type: t.Dict[str, t.Any]
        if self.kind == "rollback":
            report["rollback_of"] = self.rollback_of
        return report


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "appspec.deploy.deployment_summary"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        # (deployment id, kind) -> Deployment, in the order they started: a rollback may reuse the id it rolls back.
        self.deployments: t.Dict[t.Tuple[str, str], Deployment] = {}
        self.started: t.Dict[t.Tuple[str, str], float] = {}
        self.real_run = False  # a recorded task ran outside check mode
        self.current: t.Optional[t.Tuple[str, str]] = None  # the deployment whose events were recorded last

    def v2_runner_on_start(self, host: t.Any, task: t.Any) -> None:
        self.started[(host.get_name(), task._uuid)] = time.monotonic()

    def _elapsed(self, host: str, task: t.Any) -> float:
        """Seconds since the task (or its previous loop item) started on ``host``."""
        now = time.monotonic()
        elapsed = now - self.started.get((host, task._uuid), now)
        self.started[(host, task._uuid)] = now
        return round(elapsed, 3)

    def _record(self, result: t.Any, failed: bool) -> None:
        """``failed``: which callback method Ansible called, the real state (2.19 strips ``failed`` from results)."""
        task = result._task
        action = getattr(task, "resolved_action", None) or task.action
        data = result._result
        if isinstance(data.get("results"), list):
            return  # a loop whose items were recorded one by one
        if action in TRAFFIC_ACTIONS + ANALYSIS_ACTIONS:
            self._record_traffic(result, action, failed)
            return
        if action not in LIFECYCLE_ACTIONS + BUNDLE_ACTIONS:
            return
        host = result._host.get_name()
        # What the module ran with; the task's own args when it never ran (the action plugin failed first).
        args = (data.get("invocation") or {}).get("module_args") or task.args
        check_mode = bool(task.check_mode)
        duration = self._elapsed(host, task)
        if action in BUNDLE_ACTIONS:
            entries = [_bundle_entry(data, failed, duration)]
        else:
            entries = [dict(e) for e in data.get("events") or []] or (_not_run(args, data, duration) if failed else [])
        if check_mode:
            entries = [_in_check_mode(e) for e in entries]
        kind = "rollback" if boolean(args.get("rollback", False), strict=False) else "deployment"
        deployment_id = str(args.get("deployment_id") or os.path.basename(str(data.get("deployment_dir") or "")) or "unknown")
        deployment = self.deployments.setdefault((deployment_id, kind), Deployment(deployment_id, kind))
        self.current = (deployment_id, kind)
        deployment.rollback_of = deployment.rollback_of or data.get("rollback_from") or args.get("rollback_from")
        deployment.add(host, entries)
        if failed:
            deployment.failures[host] = str(data.get("msg") or "failed")
        self.real_run = self.real_run or not check_mode

    def _record_traffic(self, result: t.Any, action: str, failed: bool) -> None:
        """A load balancer change (not a reading) or a canary verdict, for the deployment named in the task, else the
        deployment whose events were recorded last (a traffic move belongs to the deployment around it)."""
        task, data = result._task, result._result
        args = (data.get("invocation") or {}).get("module_args") or task.args
        if action in TRAFFIC_ACTIONS and (args.get("state") == "query" or not (failed or data.get("moves"))):
            return
        deployment_id = str(data.get("deployment_id") or args.get("deployment_id") or "")
        key = self.current
        if deployment_id and (key is None or key[0] != deployment_id):
            # The latest deployment or rollback of that id, else a new deployment.
            key = next((k for k in reversed(list(self.deployments)) if k[0] == deployment_id), (deployment_id, "deployment"))
        if key is None:
            return
        deployment = self.deployments.setdefault(key, Deployment(*key))
        status = "would_run" if task.check_mode else "failed" if failed else "succeeded"
        if action in TRAFFIC_ACTIONS:
            deployment.traffic.append({"status": status, "moves": data.get("moves") or [], "msg": str(data.get("msg") or "")
                                       if failed else "", "load_balancer": args.get("type")})
        else:
            analysis = dict(data.get("analysis") or {})
            deployment.analyses.append(dict(analysis, status="failed" if failed or not analysis.get("passed") else "succeeded"))
        self.real_run = self.real_run or not task.check_mode

    def v2_runner_on_ok(self, result: t.Any) -> None:
        self._record(result, False)

    def v2_runner_on_failed(self, result: t.Any, ignore_errors: bool = False) -> None:
        self._record(result, True)

    def v2_runner_on_unreachable(self, result: t.Any) -> None:
        self._record(result, True)

    def v2_runner_item_on_ok(self, result: t.Any) -> None:
        self._record(result, False)

    def v2_runner_item_on_failed(self, result: t.Any) -> None:
        self._record(result, True)

    def report(self) -> t.Dict[str, t.Any]:
        """The JSON report (see DOCUMENTATION)."""
        deployments = [d.as_dict() for d in self.deployments.values()]
        hosts = {}  # type: t.Dict[str, t.List[Entry]]
        for deployment in deployments:
            for host, events in deployment["hosts"].items():
                tag = {"deployment_id": deployment["deployment_id"], "kind": deployment["kind"]}
                hosts.setdefault(host, []).extend(dict(e, **tag) for e in events)
        return {"check_mode": not self.real_run, "deployments": deployments, "hosts": hosts}

    def v2_playbook_on_stats(self, stats: t.Any) -> None:
        if not self.deployments:
            return
        report = self.report()
        path = self.get_option("summary_file")
        if path:
            with open(path, "w", encoding="utf-8") as handle:
                json.dump(report, handle, indent=2, sort_keys=True)
        # A machine-readable stdout (the json callbacks) must stay one document: nothing after it.
        if "json" in str(C.config.get_config_value("DEFAULT_STDOUT_CALLBACK")):
            return
        self._display.banner("APPSPEC DEPLOYMENT SUMMARY" + (" (CHECK MODE, nothing ran)" if report["check_mode"] else ""))
        for line in render_table(report):
            self._display.display(line)
        if path:
            self._display.display("summary written to %s" % path)


def _bundle_entry(data: t.Dict[str, t.Any], failed: bool, duration: float) -> Entry:
    """The bundle module's result as the DownloadBundle event (it returns no event entries)."""
    entry = {"event": DOWNLOAD_BUNDLE, "status": "failed" if failed else "succeeded", "duration": duration,
             "bytes_transferred": data.get("bytes_transferred"), "reused": data.get("reused")}  # type: Entry
    if failed:
        entry["msg"] = data.get("msg")
    return entry


def _not_run(args: t.Dict[str, t.Any], data: t.Dict[str, t.Any], duration: float) -> t.List[Entry]:
    """Entries for a lifecycle task that failed before any event ran: where it stopped failed, the others skipped."""
    try:
        events = [str(e) for e in check_type_list(args.get("events") or [])]
    except TypeError:
        events = []
    # The controller fetches the revision before anything else runs: a failure then is DownloadBundle's.
    failed_event = next((e for e in (data.get("failed_event"), DOWNLOAD_BUNDLE) if e in events), events[0] if events else None)
    return [{"event": e, "status": "failed", "msg": data.get("msg"), "duration": duration, "scripts": []} if e == failed_event
            else {"event": e, "status": "skipped", "reason": NOT_RUN, "duration": 0.0, "scripts": []} for e in events]


def _in_check_mode(entry: Entry) -> Entry:
    """In check mode an event that is not skipped for a reason of its own would run (the module says skipped or,
    for Install, succeeded, as it ran nothing)."""
    reason = str(entry.get("reason") or "")
    if entry["status"] == "succeeded" or (entry["status"] == "skipped" and reason.startswith("check mode")):
        return dict(entry, status="would_run")
    return entry


def render_table(report: t.Dict[str, t.Any]) -> t.List[str]:
    """A row per deployment and host (``d-X (rollback)`` for a rollback), its status, then a column per event in
    CodeDeploy's run order (others after, as first seen): ``ok 0.4s``, ``FAILED 1.2s``, ``would run``, ``-``."""
    seen = []  # type: t.List[str]
    for deployment in report["deployments"]:
        for events in deployment["hosts"].values():
            seen.extend(e["event"] for e in events if e["event"] not in seen)
    columns = [e for e in IN_PLACE_EVENTS if e in seen] + [e for e in seen if e not in IN_PLACE_EVENTS]
    rows = [["deployment", "host", "status"] + columns]
    for deployment in report["deployments"]:
        label = deployment["deployment_id"] + (" (rollback)" if deployment["kind"] == "rollback" else "")
        for host, events in sorted(deployment["hosts"].items()):
            cells = {e["event"]: _cell(e) for e in events}
            rows.append([label, host, SHOWN.get(deployment["host_status"][host], deployment["host_status"][host])]
                        + [cells.get(column, "") for column in columns])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    for deployment in report["deployments"]:
        label = deployment["deployment_id"] + (" (rollback)" if deployment["kind"] == "rollback" else "")
        for change in deployment.get("traffic", []):
            lines.append("%s  traffic %s: %s" % (label, SHOWN.get(change["status"], change["status"]),
                                                 "; ".join(_move(m) for m in change["moves"]) or change["msg"] or "no change"))
        for analysis in deployment.get("analyses", []):
            lines.append("%s  analysis %s" % (label, analysis.get("summary", "")))
            for metric in analysis.get("metrics", []):
                lines.append("%s    %s %s: updated %s, baseline %s, limit %s%s" % (
                    label, "ok" if metric.get("passed") else "FAILED", metric.get("name"), metric.get("updated"),
                    metric.get("baseline"), metric.get("limit"), (" (%s)" % metric["note"]) if metric.get("note") else ""))
    return lines


def _move(move: Entry) -> str:
    """One load balancer change: ``web1 ready->maint``, ``web2 weight 1->85``, with a drain that timed out."""
    name = str(move.get("name", "?"))
    parts = []
    if move.get("from") != move.get("to") and move.get("to") is not None:
        parts.append("%s->%s" % (move.get("from"), move.get("to")))
    if move.get("weight_from") != move.get("weight_to") and move.get("weight_to") is not None:
        parts.append("weight %s->%s" % (move.get("weight_from"), move.get("weight_to")))
    if move.get("sessions_left"):
        parts.append("(%s sessions still open after %ss)" % (move["sessions_left"], move.get("drain_seconds")))
    if move.get("old_workers_left"):
        parts.append("(old nginx workers still running after %ss)" % move.get("drain_seconds"))
    return "%s %s" % (name, " ".join(parts) or "unchanged")


def _cell(entry: Entry) -> str:
    status = entry["status"]
    shown = SHOWN.get(status, status) + (" (ignored)" if entry.get("ignored") else "")
    duration = entry.get("duration")
    if status in ("succeeded", "failed") and isinstance(duration, (int, float)):
        return "%s %.1fs" % (shown, duration)
    return shown
