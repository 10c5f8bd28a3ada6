"""The deployment_summary callback: fed results shaped as ansible-core 2.19 hands them to callbacks, and
driven by real ansible-playbook runs against localhost (failures, a rollback, check mode)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import typing as t

import pytest
from ansible.executor.task_result import _RawTaskResult
from ansible.inventory.host import Host

from ansible_collections.appspec.deploy.plugins.callback.deployment_summary import CallbackModule, render_table
from bundle_fixtures import REPO, http_server, write_files  # noqa: F401 pylint: disable=unused-import

LIFECYCLE = "appspec.deploy.lifecycle_event"
BUNDLE = "appspec.deploy.bundle"


# --- results as ansible-core hands them to callbacks --------------------------------------------------


class FakeTask:
    """What a callback reads of a task (the worker's finalized args: module_defaults applied, templated)."""

    def __init__(self, action: str, args: t.Dict[str, t.Any], check_mode: bool = False) -> None:
        self.action = self.resolved_action = action
        self.args = args
        self.check_mode = check_mode
        self.no_log = False
        self._uuid = "uuid-%s-%s" % (args.get("deployment_id"), id(self))


def feed(callback: CallbackModule, action: str, args: t.Dict[str, t.Any], data: t.Dict[str, t.Any], *,
         host: str = "web1", check_mode: bool = False) -> None:
    """One task result through the callback the way the strategy delivers it: ``failed`` decides the method,
    and as_callback_task_result() strips ``failed`` from the dict, as 2.19 does."""
    task = FakeTask(action, args, check_mode)
    callback.v2_runner_on_start(Host(host), task)
    result = _RawTaskResult(Host(host), task, dict(data), {}).as_callback_task_result()
    if data.get("failed"):
        callback.v2_runner_on_failed(result)
    else:
        callback.v2_runner_on_ok(result)


def event(name: str, status: str, **extra: t.Any) -> t.Dict[str, t.Any]:
    return dict({"event": name, "status": status, "duration": 0.25, "scripts": []}, **extra)


def statuses(report: t.Dict[str, t.Any], deployment: int, host: str = "web1") -> t.List[t.Tuple[str, str]]:
    return [(e["event"], e["status"]) for e in report["deployments"][deployment]["hosts"][host]]


def test_ansible_219_callbacks_do_not_see_failed_in_the_result() -> None:
    """Why the callback must not read ``failed``: 2.19 strips it, the method called is the failed state."""
    result = _RawTaskResult(Host("web1"), FakeTask(BUNDLE, {}), {"failed": True, "msg": "HTTP Error 404"}, {})
    shown = result.as_callback_task_result()
    assert "failed" not in shown._result and not shown.is_failed()


def test_a_failed_bundle_is_failed_not_ok() -> None:
    callback = CallbackModule()
    feed(callback, BUNDLE, {"deployment_id": "d-1", "revision": "http://x/rev.zip"},
         {"failed": True, "msg": "HTTP Error 404: File not found"})
    report = callback.report()
    assert statuses(report, 0) == [("DownloadBundle", "failed")]
    deployment = report["deployments"][0]
    assert (deployment["deployment_id"], deployment["kind"], deployment["status"]) == ("d-1", "deployment", "failed")
    assert deployment["hosts"]["web1"][0]["msg"] == "HTTP Error 404: File not found"
    assert deployment["failures"] == {"web1": "HTTP Error 404: File not found"}
    assert report["hosts"]["web1"][0]["status"] == "failed"  # the 0.1 shape is still there
    assert render_table(report)[1].split()[:4] == ["d-1", "web1", "FAILED", "FAILED"]


def test_a_lifecycle_task_that_failed_before_any_event_ran_fails_its_download() -> None:
    """The action plugin fails on the controller (revision not found): no event entries come back."""
    callback = CallbackModule()
    feed(callback, LIFECYCLE, {"deployment_id": "d-1", "events": ["ApplicationStop", "DownloadBundle", "BeforeInstall"]},
         {"failed": True, "msg": "HTTP Error 404"})
    assert statuses(callback.report(), 0) == [
        ("ApplicationStop", "skipped"), ("DownloadBundle", "failed"), ("BeforeInstall", "skipped")]
    callback = CallbackModule()
    feed(callback, LIFECYCLE, {"deployment_id": "d-1", "events": "BeforeInstall,AfterInstall"},
         {"failed": True, "msg": "nothing was run: scripts/x.sh is missing"})
    assert statuses(callback.report(), 0) == [("BeforeInstall", "failed"), ("AfterInstall", "skipped")]


def test_a_task_failed_by_failed_when_fails_its_host_although_its_events_succeeded() -> None:
    callback = CallbackModule()
    feed(callback, LIFECYCLE, {"deployment_id": "d-1", "events": ["ValidateService"]},
         {"failed": True, "msg": "failed_when", "events": [event("ValidateService", "succeeded")]})
    deployment = callback.report()["deployments"][0]
    assert statuses(callback.report(), 0) == [("ValidateService", "succeeded")]
    assert deployment["host_status"] == {"web1": "failed"} and deployment["status"] == "failed"


def test_an_ignored_application_stop_failure_does_not_fail_the_host() -> None:
    callback = CallbackModule()
    feed(callback, LIFECYCLE, {"deployment_id": "d-1", "events": ["ApplicationStop", "BeforeInstall"]},
         {"events": [event("ApplicationStop", "failed", ignored=True), event("BeforeInstall", "succeeded")]})
    report = callback.report()
    assert report["deployments"][0]["host_status"] == {"web1": "succeeded"}
    assert "FAILED (ignored) 0.2s" in render_table(report)[1]


def test_a_rollback_is_a_deployment_of_its_own() -> None:
    callback = CallbackModule()
    common = {"application_name": "app", "deployment_group_name": "g"}
    for host in ("web1", "web2"):
        feed(callback, LIFECYCLE, dict(common, deployment_id="d-BAD", events=["ApplicationStart", "ValidateService"]),
             {"failed": host == "web1", "msg": "ValidateService failed",
              "events": [event("ApplicationStart", "succeeded"),
                         event("ValidateService", "failed" if host == "web1" else "succeeded")]}, host=host)
        feed(callback, LIFECYCLE, dict(common, deployment_id="d-RB", rollback=True, events=["ApplicationStart", "ValidateService"]),
             {"rollback_from": "d-BAD", "rollback_target": "d-GOOD",
              "events": [event("ApplicationStart", "succeeded"), event("ValidateService", "succeeded")]}, host=host)
    report = callback.report()
    bad, rollback = report["deployments"]
    assert (bad["deployment_id"], bad["kind"], bad["status"]) == ("d-BAD", "deployment", "failed")
    assert bad["host_status"] == {"web1": "failed", "web2": "succeeded"}
    assert statuses(report, 0) == [("ApplicationStart", "succeeded"), ("ValidateService", "failed")]
    assert (rollback["deployment_id"], rollback["kind"], rollback["status"], rollback["rollback_of"]) == (
        "d-RB", "rollback", "succeeded", "d-BAD")
    assert statuses(report, 1) == [("ApplicationStart", "succeeded"), ("ValidateService", "succeeded")]
    lines = render_table(report)
    assert lines[0].split() == ["deployment", "host", "status", "ApplicationStart", "ValidateService"]
    assert [line.split() for line in lines[1:]] == [
        ["d-BAD", "web1", "FAILED", "ok", "0.2s", "FAILED", "0.2s"],
        ["d-BAD", "web2", "ok", "ok", "0.2s", "ok", "0.2s"],
        ["d-RB", "(rollback)", "web1", "ok", "ok", "0.2s", "ok", "0.2s"],
        ["d-RB", "(rollback)", "web2", "ok", "ok", "0.2s", "ok", "0.2s"],
    ]


def test_a_rollback_under_the_failed_deployments_own_id_is_still_apart() -> None:
    callback = CallbackModule()
    feed(callback, LIFECYCLE, {"deployment_id": "d-1", "events": ["ValidateService"]},
         {"failed": True, "msg": "x", "events": [event("ValidateService", "failed")]})
    feed(callback, LIFECYCLE, {"deployment_id": "d-1", "rollback": "yes", "events": ["ValidateService"]},
         {"events": [event("ValidateService", "succeeded")]})
    report = callback.report()
    assert [(d["deployment_id"], d["kind"], d["status"]) for d in report["deployments"]] == [
        ("d-1", "deployment", "failed"), ("d-1", "rollback", "succeeded")]


def test_check_mode_shows_what_would_run() -> None:
    callback = CallbackModule()
    feed(callback, BUNDLE, {"deployment_id": "d-1"}, {"changed": True}, check_mode=True)
    feed(callback, LIFECYCLE, {"deployment_id": "d-1"}, {"events": [
        event("ApplicationStop", "skipped", reason="no previous revision"),
        event("BeforeInstall", "skipped", reason="check mode", scripts=[{"location": "scripts/a.sh"}]),
        event("Install", "succeeded", install={"changed": True}),
        event("AfterInstall", "skipped", reason="no scripts for this event in the AppSpec"),
    ]}, check_mode=True)
    report = callback.report()
    assert report["check_mode"] is True
    assert statuses(report, 0) == [("DownloadBundle", "would_run"), ("ApplicationStop", "skipped"),
                                   ("BeforeInstall", "would_run"), ("Install", "would_run"), ("AfterInstall", "skipped")]
    assert report["deployments"][0]["status"] == "would_run"
    assert render_table(report)[1].split() == ["d-1", "web1", "would", "run", "-", "would", "run", "would", "run",
                                               "would", "run", "-"]


def test_a_preview_in_a_real_run_gives_way_to_the_real_event() -> None:
    """roles/rollback looks for its target with a check-mode ApplicationStop before running it for real."""
    callback = CallbackModule()
    args = {"deployment_id": "d-RB", "rollback": True, "events": ["ApplicationStop"]}
    feed(callback, LIFECYCLE, args, {"events": [event("ApplicationStop", "skipped", reason="check mode")]},
         check_mode=True)
    feed(callback, LIFECYCLE, args, {"events": [event("ApplicationStop", "succeeded")]})
    report = callback.report()
    assert report["check_mode"] is False
    assert statuses(report, 0) == [("ApplicationStop", "succeeded")]


def test_loop_items_are_recorded_one_by_one() -> None:
    callback = CallbackModule()
    task = FakeTask(LIFECYCLE, {"deployment_id": "d-1"})
    callback.v2_runner_on_start(Host("web1"), task)
    for number, status in ((1, "succeeded"), (2, "failed")):
        item = {"events": [event("ValidateService", status)], "failed": status == "failed", "msg": "m",
                "invocation": {"module_args": {"deployment_id": "d-%d" % number, "events": ["ValidateService"]}}}
        result = _RawTaskResult(Host("web1"), task, item, {}).as_callback_task_result()
        (callback.v2_runner_item_on_failed if item["failed"] else callback.v2_runner_item_on_ok)(result)
    callback.v2_runner_on_failed(_RawTaskResult(Host("web1"), task, {"failed": True, "results": []}, {})
                                 .as_callback_task_result())
    report = callback.report()
    assert [(d["deployment_id"], d["status"]) for d in report["deployments"]] == [("d-1", "succeeded"), ("d-2", "failed")]


# --- real ansible-playbook runs -----------------------------------------------------------------------


def test_traffic_moves_and_analyses_are_reported_with_their_deployment() -> None:
    callback = CallbackModule()
    feed(callback, LIFECYCLE, {"deployment_id": "d-1", "events": ["ValidateService"]},
         {"events": [event("ValidateService", "succeeded")]})
    balancer = "appspec.deploy.load_balancer"
    feed(callback, balancer, {"type": "haproxy", "state": "query"}, {"servers": {}})  # a reading is not a change
    feed(callback, balancer, {"type": "haproxy", "state": "present"}, {"moves": []})  # nothing changed
    feed(callback, balancer, {"type": "haproxy", "state": "present"}, {"moves": [
        {"name": "green1", "from": "maint", "to": "ready", "weight_from": 1, "weight_to": 1},
        {"name": "blue1", "from": "ready", "to": "maint", "weight_from": 1, "weight_to": 1, "drain_seconds": 30,
         "sessions_left": 2}]})
    feed(callback, balancer, {"type": "nginx", "state": "present", "deployment_id": "d-2"},
         {"failed": True, "msg": "nginx -t failed"})
    feed(callback, "appspec.deploy.canary_analysis", {"deployment_id": "d-1", "step": 1}, {
        "deployment_id": "d-1", "analysis": {"step": 1, "passed": False, "summary": "step 1 failed on error rate",
                                             "metrics": [{"name": "error rate", "updated": 0.33, "baseline": 0.0,
                                                          "limit": 0.05, "passed": False, "note": "20 of 60"}]}})
    report = callback.report()
    first, second = report["deployments"]
    assert [change["moves"][0]["name"] for change in first["traffic"]] == ["green1"]
    assert first["analyses"][0]["status"] == "failed" and first["status"] == "failed"
    assert second["deployment_id"] == "d-2" and second["traffic"][0]["status"] == "failed"
    lines = render_table(report)
    assert "d-1  traffic ok: green1 maint->ready; blue1 ready->maint (2 sessions still open after 30s)" in lines
    assert "d-1  analysis step 1 failed on error rate" in lines
    assert "d-1    FAILED error rate: updated 0.33, baseline 0.0, limit 0.05 (20 of 60)" in lines
    assert "d-2  traffic FAILED: nginx -t failed" in lines


def run_playbook_with_summary(tmp_path: t.Any, playbook: str, *options: str,
                              stdout_callback: str = "default") -> t.Tuple[subprocess.CompletedProcess, t.Dict[str, t.Any]]:
    """Run ``playbook`` on localhost with the callback on; (the run, the JSON report it wrote)."""
    (tmp_path / "play.yml").write_text(playbook)
    summary = tmp_path / "summary.json"
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"),
               ANSIBLE_CALLBACKS_ENABLED="appspec.deploy.deployment_summary",
               APPSPEC_DEPLOY_SUMMARY_FILE=str(summary), ANSIBLE_STDOUT_CALLBACK=stdout_callback,
               APPSPEC_DEPLOY_CACHE_DIR=str(tmp_path / "cache"), ANSIBLE_LOCAL_TEMP=str(tmp_path / "ltmp"))
    run = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), str(tmp_path / "play.yml"),
         "-e", "ansible_python_interpreter=%s" % sys.executable] + list(options),
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert summary.exists(), run.stdout + run.stderr
    return run, json.loads(summary.read_text())


def revision(path: t.Any, validate_exit: int, version: str) -> str:
    return write_files(str(path), {
        "appspec.yml": """\
            version: 0.0
            os: linux
            hooks:
              ApplicationStop:
                - location: scripts/ok.sh
              ApplicationStart:
                - location: scripts/ok.sh
              ValidateService:
                - location: scripts/validate.sh
            """,
        "scripts/ok.sh": "#!/bin/sh\necho %s\n" % version,
        "scripts/validate.sh": "#!/bin/sh\necho validating %s\nexit %d\n" % (version, validate_exit),
    })


FULL = "[ApplicationStop, DownloadBundle, BeforeInstall, Install, ApplicationStart, ValidateService, AfterAllowTraffic]"
PLAY = textwrap.dedent("""\
    - hosts: localhost
      gather_facts: false
      module_defaults:
        group/appspec.deploy.deployment:
          application_name: app
          deployment_group_name: group
          root_dir: "{root}"
      tasks:
    """)


def play(root: t.Any, tasks: str, **values: t.Any) -> str:
    """One play on localhost, the deployment identity in module_defaults (as roles/rollback sets it)."""
    return PLAY.format(root=root) + textwrap.indent(textwrap.dedent(tasks).format(full=FULL, **values), "    ")


def table_row(stdout: str, label: str) -> t.List[str]:
    rows = [line.split() for line in stdout.splitlines() if line.startswith(label + " ")]
    assert len(rows) == 1, stdout
    return rows[0]


def test_real_failures_show_as_failed_and_the_later_events_as_skipped(tmp_path, http_server) -> None:  # noqa: F811
    revision(tmp_path / "broken", 1, "broken")
    playbook = play(tmp_path / "root", """\
        - name: bundle of a missing http URL
          appspec.deploy.bundle:
            deployment_id: d-BUNDLE404
            revision: "{missing}"
          ignore_errors: true
        - name: DownloadBundle of a missing http URL
          appspec.deploy.lifecycle_event:
            deployment_id: d-LIFE404
            events: {full}
            revision: "{missing}"
          ignore_errors: true
        - name: a revision whose ValidateService exits 1
          appspec.deploy.lifecycle_event:
            deployment_id: d-VALIDATE
            events: {full}
            revision: "{broken}"
        """, missing=http_server.url("missing.zip"), broken=tmp_path / "broken")
    run, report = run_playbook_with_summary(tmp_path, playbook)
    assert run.returncode == 2, run.stdout + run.stderr
    assert report["check_mode"] is False
    deployments = {d["deployment_id"]: d for d in report["deployments"]}
    assert [(d["deployment_id"], d["kind"], d["status"]) for d in report["deployments"]] == [
        ("d-BUNDLE404", "deployment", "failed"), ("d-LIFE404", "deployment", "failed"), ("d-VALIDATE", "deployment", "failed")]
    assert statuses(report, 0, "localhost") == [("DownloadBundle", "failed")]
    assert "404" in deployments["d-BUNDLE404"]["hosts"]["localhost"][0]["msg"]
    assert statuses(report, 1, "localhost") == [
        ("ApplicationStop", "skipped"), ("DownloadBundle", "failed"), ("BeforeInstall", "skipped"),
        ("Install", "skipped"), ("ApplicationStart", "skipped"), ("ValidateService", "skipped"),
        ("AfterAllowTraffic", "skipped")]
    assert statuses(report, 2, "localhost") == [
        ("ApplicationStop", "skipped"), ("DownloadBundle", "succeeded"), ("BeforeInstall", "skipped"),
        ("Install", "succeeded"), ("ApplicationStart", "succeeded"), ("ValidateService", "failed"),
        ("AfterAllowTraffic", "skipped")]
    assert deployments["d-VALIDATE"]["hosts"]["localhost"][5]["scripts"][0]["exit_code"] == 1
    assert "APPSPEC DEPLOYMENT SUMMARY" in run.stdout
    header = table_row(run.stdout, "deployment")
    # Columns in CodeDeploy's run order, whatever order the deployments met them in.
    assert header == ["deployment", "host", "status", "ApplicationStop", "DownloadBundle", "BeforeInstall", "Install",
                      "ApplicationStart", "ValidateService", "AfterAllowTraffic"]
    assert table_row(run.stdout, "d-BUNDLE404")[:4] == ["d-BUNDLE404", "localhost", "FAILED", "FAILED"]
    row = table_row(run.stdout, "d-LIFE404")  # ApplicationStop -, DownloadBundle FAILED 0.0s, the rest -
    assert row[:5] == ["d-LIFE404", "localhost", "FAILED", "-", "FAILED"] and row[6:] == ["-"] * 5
    row = table_row(run.stdout, "d-VALIDATE")
    assert row[:3] == ["d-VALIDATE", "localhost", "FAILED"] and row.count("FAILED") == 2
    assert (row[-3], row[-1]) == ("FAILED", "-")  # ValidateService failed, AfterAllowTraffic skipped


def test_real_rollback_is_reported_apart_from_the_failed_deployment(tmp_path) -> None:
    revision(tmp_path / "good", 0, "good")
    revision(tmp_path / "bad", 1, "bad")
    playbook = play(tmp_path / "root", """\
        - name: a good deployment
          appspec.deploy.lifecycle_event:
            deployment_id: d-GOOD
            events: {full}
            revision: "{good}"
            mark_success: true
        - block:
            - name: a bad deployment
              appspec.deploy.lifecycle_event:
                deployment_id: d-BAD
                events: {full}
                revision: "{bad}"
                mark_success: true
          rescue:
            - name: roll back
              appspec.deploy.lifecycle_event:
                deployment_id: d-RB
                events: [ApplicationStop, Install, ApplicationStart, ValidateService]
                rollback: true
                mark_success: true
                file_exists_behavior: OVERWRITE
        """, good=tmp_path / "good", bad=tmp_path / "bad")
    run, report = run_playbook_with_summary(tmp_path, playbook)
    assert run.returncode == 0, run.stdout + run.stderr  # rescued
    assert [(d["deployment_id"], d["kind"], d["status"]) for d in report["deployments"]] == [
        ("d-GOOD", "deployment", "succeeded"), ("d-BAD", "deployment", "failed"), ("d-RB", "rollback", "succeeded")]
    assert statuses(report, 1, "localhost")[-2:] == [("ValidateService", "failed"), ("AfterAllowTraffic", "skipped")]
    assert statuses(report, 2, "localhost") == [
        ("ApplicationStop", "succeeded"), ("Install", "succeeded"), ("ApplicationStart", "succeeded"),
        ("ValidateService", "succeeded")]
    assert report["deployments"][2]["rollback_of"] == "d-BAD"
    assert table_row(run.stdout, "d-BAD")[:3] == ["d-BAD", "localhost", "FAILED"]
    rollback = table_row(run.stdout, "d-RB")
    assert rollback[:4] == ["d-RB", "(rollback)", "localhost", "ok"] and "FAILED" not in rollback


@pytest.mark.parametrize("stdout_callback", ["default", "ansible.posix.json"])
def test_real_check_mode_run_is_marked_and_shows_what_would_run(tmp_path, stdout_callback) -> None:
    revision(tmp_path / "good", 0, "good")
    playbook = play(tmp_path / "root", """\
        - appspec.deploy.lifecycle_event:
            deployment_id: d-CHECK
            events: {full}
            revision: "{good}"
        """, good=tmp_path / "good")
    run, report = run_playbook_with_summary(tmp_path, playbook, "--check", stdout_callback=stdout_callback)
    assert run.returncode == 0, run.stdout + run.stderr
    assert report["check_mode"] is True
    assert statuses(report, 0, "localhost") == [
        ("ApplicationStop", "skipped"), ("DownloadBundle", "would_run"), ("BeforeInstall", "skipped"),
        ("Install", "would_run"), ("ApplicationStart", "would_run"), ("ValidateService", "would_run"),
        ("AfterAllowTraffic", "skipped")]
    if stdout_callback == "default":
        assert "APPSPEC DEPLOYMENT SUMMARY (CHECK MODE" in run.stdout
        assert table_row(run.stdout, "d-CHECK")[:5] == ["d-CHECK", "localhost", "would", "run", "-"]
    else:  # one JSON document and nothing after it
        assert json.loads(run.stdout)["stats"]["localhost"]["ok"] == 1
