"""The deployment_summary callback, driven by a real ansible-playbook run against localhost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from ansible_collections.appspec.deploy.plugins.callback.deployment_summary import render_table

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))


def test_render_table_lists_events_in_run_order_and_marks_failures() -> None:
    lines = render_table({
        "web2": [{"event": "ApplicationStop", "status": "skipped", "duration": 0.0},
                 {"event": "DownloadBundle", "status": "failed", "duration": 1.25}],
        "web1": [{"event": "ApplicationStop", "status": "succeeded", "duration": 0.42},
                 {"event": "DownloadBundle", "status": "succeeded", "duration": 0.5}],
    })
    assert lines[0].split() == ["host", "ApplicationStop", "DownloadBundle"]
    assert lines[1].split() == ["web1", "ok", "0.4s", "ok", "0.5s"]
    assert lines[2].split() == ["web2", "-", "FAILED", "1.2s"]


@pytest.mark.parametrize("stdout_callback", ["default", "ansible.posix.json"])
def test_playbook_run_writes_per_host_per_event_report(tmp_path, stdout_callback) -> None:
    revision = tmp_path / "revision"
    (revision / "scripts").mkdir(parents=True)
    (revision / "appspec.yml").write_text(textwrap.dedent("""\
        version: 0.0
        os: linux
        hooks:
          BeforeInstall:
            - location: scripts/ok.sh
          AfterInstall:
            - location: scripts/fail.sh
        """))
    (revision / "scripts" / "ok.sh").write_text("#!/bin/sh\necho fine\n")
    (revision / "scripts" / "fail.sh").write_text("#!/bin/sh\necho broken >&2\nexit 3\n")
    playbook = tmp_path / "play.yml"
    playbook.write_text(textwrap.dedent("""\
        - hosts: localhost
          gather_facts: false
          vars:
            common: &common
              deployment_id: d-SUMMARY01
              application_name: app
              deployment_group_name: group
              root_dir: "{root}"
          tasks:
            - appspec.deploy.bundle:
                <<: *common
                revision: "{revision}"
            - appspec.deploy.lifecycle_event:
                <<: *common
                events: [BeforeInstall, AfterInstall]
        """).format(root=tmp_path / "deployment-root", revision=revision))
    summary = tmp_path / "summary.json"
    env = dict(os.environ,
               ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
               ANSIBLE_CALLBACKS_ENABLED="appspec.deploy.deployment_summary",
               APPSPEC_DEPLOY_SUMMARY_FILE=str(summary),
               ANSIBLE_STDOUT_CALLBACK=stdout_callback,
               APPSPEC_DEPLOY_CACHE_DIR=str(tmp_path / "cache"))
    run = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), str(playbook),
         "-e", "ansible_python_interpreter=%s" % sys.executable],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 2, run.stdout + run.stderr  # AfterInstall fails on purpose
    if stdout_callback == "default":
        assert "APPSPEC DEPLOYMENT SUMMARY" in run.stdout
    else:  # one JSON document and nothing after it
        assert json.loads(run.stdout)["stats"]["localhost"]["failures"] == 1
    report = json.loads(summary.read_text())["hosts"]["localhost"]
    assert [(e["event"], e["status"]) for e in report] == [
        ("DownloadBundle", "succeeded"), ("BeforeInstall", "succeeded"), ("AfterInstall", "failed")]
    assert report[0]["duration"] > 0
    assert report[2]["scripts"][0]["exit_code"] == 3
