# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The playbooks run as AWX / Automation Controller runs a job template: through ansible-runner.

Each job gets a private data directory laid out as AWX lays it out (``project/`` the checkout,
``inventory/hosts``, ``env/extravars`` with survey answers as text and AWX's own ``awx_*`` variables,
``env/envvars``, ``artifacts/``), and ansible-runner really runs ansible-playbook on this machine.
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import typing as t

import yaml

from bundle_fixtures import REPO, write_files

RUNNER = os.path.join(os.path.dirname(sys.executable), "ansible-runner")
APPSPEC = """
version: 0.0
os: linux
files:
  - source: app
    destination: {destination}
hooks:
  ValidateService:
    - location: validate.sh
"""
# What AWX adds to the extra vars of every job (awx_meta_vars), and what a survey answers: text only.
AWX_VARS = {"awx_job_id": 101, "tower_job_id": 101, "awx_job_template_id": 7, "tower_job_template_id": 7,
            "awx_job_template_name": "deploy shop", "awx_job_launch_type": "manual", "awx_user_name": "admin"}
SURVEY = {"appspec_application_name": "shop", "appspec_deployment_config": "CodeDeployDefault.AllAtOnce",
          "appspec_auto_rollback": "true", "appspec_keep_releases": "5", "appspec_load_balancer": "",
          "appspec_shared_paths": "", "appspec_http_headers": "{}", "appspec_strict_variables": "true"}


class Job(t.NamedTuple):
    rc: int
    status: str
    events: t.List[t.Dict[str, t.Any]]  # artifacts/<ident>/job_events/*.json, in the order they happened
    report: t.Dict[str, t.Any]  # the deployment_summary callback's JSON report
    stdout: str


def run_job(tmp_path, ident: str, playbook: str, hosts: t.Sequence[str], extravars: t.Mapping[str, t.Any]) -> Job:
    """One job: a new private data directory, ``ansible-runner run`` on it, its artifacts read back."""
    private = tmp_path / ident
    (private / "inventory").mkdir(parents=True)
    (private / "env").mkdir()
    (private / "artifacts").mkdir()
    os.symlink(REPO, str(private / "project"))  # AWX checks the project out here; the checkout is the project
    (private / "inventory" / "hosts").write_text("".join(
        "%s ansible_connection=local ansible_python_interpreter=%s\n" % (host, sys.executable) for host in hosts))
    (private / "env" / "extravars").write_text(yaml.safe_dump(dict(extravars)))
    report_file = private / "artifacts" / "appspec-report.json"
    (private / "env" / "envvars").write_text(yaml.safe_dump({
        # Where the job finds appspec.deploy: in AWX, the execution environment; here, the checkout's link.
        "ANSIBLE_COLLECTIONS_PATH": os.path.join(REPO, ".cache", "collections"),
        "APPSPEC_DEPLOY_SUMMARY_FILE": str(report_file),
        "APPSPEC_DEPLOY_CACHE_DIR": str(tmp_path / "cache"),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ltmp"),
    }))
    # ansible-runner finds ansible-playbook on PATH, as in an execution environment.
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    env.pop("ANSIBLE_CONFIG", None)
    proc = subprocess.run([RUNNER, "run", str(private), "--ident", ident, "-p", playbook],
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    artifacts = private / "artifacts" / ident
    events = [json.loads(open(path).read()) for path in glob.glob(str(artifacts / "job_events" / "*.json"))]
    events.sort(key=lambda event: event["counter"])
    report = json.loads(report_file.read_text()) if report_file.exists() else {}
    return Job(int((artifacts / "rc").read_text()), (artifacts / "status").read_text(), events, report,
               proc.stdout.decode())


def revision(tmp_path, version: str, destination) -> str:
    path = tmp_path / "revisions" / version
    write_files(str(path), {"appspec.yml": APPSPEC.format(destination=destination), "app/VERSION": version + "\n",
                            "validate.sh": "#!/bin/sh\ntest -f %s/VERSION\n" % destination})
    return str(path)


def lifecycle_results(job: Job) -> t.List[t.Dict[str, t.Any]]:
    """The per-event results of the lifecycle_event tasks, as AWX stores them (runner_on_ok job events)."""
    return [event["event_data"]["res"] for event in job.events if event["event"] == "runner_on_ok"
            and event["event_data"].get("resolved_action") == "appspec.deploy.lifecycle_event"]


def test_deploy_and_rollback_as_awx_job_templates(tmp_path):
    destination = tmp_path / "files"
    common = dict(AWX_VARS, **SURVEY, appspec_root_dir=str(tmp_path / "deployment-root"))
    jobs = {}
    for version in ("v1", "v2"):
        job = run_job(tmp_path, "deploy-" + version, "playbooks/deploy.yml", ["localhost"],
                      dict(common, appspec_revision=revision(tmp_path, version, destination)))
        assert (job.rc, job.status) == (0, "successful"), job.stdout[-3000:]
        assert (destination / "VERSION").read_text() == version + "\n"
        jobs[version] = job
    deployment = jobs["v2"].report["deployments"][0]
    assert (deployment["kind"], deployment["status"], deployment["host_status"]) == (
        "deployment", "succeeded", {"localhost": "succeeded"})
    # AWX shows each lifecycle event from the job events: the module's per-event results are there.
    results = lifecycle_results(jobs["v2"])
    events = {entry["event"]: entry["status"] for result in results for entry in result["events"]}
    assert events["Install"] == events["ValidateService"] == "succeeded" and "ApplicationStart" in events
    assert {entry["event"] for entry in deployment["hosts"]["localhost"]} <= set(events) | {"DownloadBundle"}

    rollback = run_job(tmp_path, "rollback", "playbooks/rollback.yml", ["localhost"], common)
    assert (rollback.rc, rollback.status) == (0, "successful"), rollback.stdout[-3000:]
    assert (destination / "VERSION").read_text() == "v1\n"
    rolled = rollback.report["deployments"][0]
    assert (rolled["kind"], rolled["status"]) == ("rollback", "succeeded")
    assert rolled["deployment_id"] != deployment["deployment_id"]
    assert any(entry["event"] == "ValidateService" for result in lifecycle_results(rollback) for entry in result["events"])


def test_the_slices_of_a_sliced_job_are_one_deployment(tmp_path):
    """Two slices of one job template: same extra vars and workflow job, each its own host and awx_job_id.

    Both slices deploy to this machine: each gets its own deployment root (not an input of the id), and
    the second one overwrites the files the first installed.
    """
    destination = tmp_path / "files"
    shared = dict(AWX_VARS, **SURVEY, awx_workflow_job_id=500, tower_workflow_job_id=500,
                  appspec_file_exists_behavior="OVERWRITE", appspec_revision=revision(tmp_path, "v1", destination))
    reports = []
    for number, host in ((1, "web1"), (2, "web2")):
        job = run_job(tmp_path, "slice-%d" % number, "playbooks/deploy.yml", [host],
                      dict(shared, awx_job_id=600 + number, tower_job_id=600 + number,
                           appspec_root_dir=str(tmp_path / ("root-%d" % number))))
        assert (job.rc, job.status) == (0, "successful"), job.stdout[-3000:]
        assert (destination / "VERSION").read_text() == "v1\n"
        reports.append(job.report["deployments"][0])
    assert reports[0]["deployment_id"] == reports[1]["deployment_id"]
    assert [list(report["host_status"]) for report in reports] == [["web1"], ["web2"]]
