# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The playbooks and roles driven as users drive them: real ansible-playbook runs on this machine.

Every run uses its own deployment root and release roots under tmp_path, and two inventory hosts that
both reach this machine (ansible_connection=local), so that --limit and per-host verdicts can be seen.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import typing as t

import pytest

from bundle_fixtures import REPO, write_files

from ansible_collections.appspec.deploy.plugins.module_utils._layout import deployment_group_id
from ansible_collections.appspec.deploy.plugins.module_utils._lock import HostLock

APPSPEC = """
version: 0.0
os: linux
files:
  - source: app
    destination: {destination}
hooks:
  ApplicationStart:
    - location: scripts/trace.sh
  ValidateService:
    - location: scripts/validate.sh
"""


class Run:
    def __init__(self, proc: subprocess.CompletedProcess, report: t.Optional[t.Dict[str, t.Any]]) -> None:
        self.rc = proc.returncode
        # One line: the yaml stdout callback folds long messages.
        self.out = " ".join((proc.stdout.decode() + proc.stderr.decode()).split())
        self.report = report


@pytest.fixture
def site(tmp_path):
    """A deployment root, a trace file the hooks append to, revisions to deploy and a way to run playbooks."""
    root_dir = tmp_path / "deployment-root"
    trace = tmp_path / "trace"
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(textwrap.dedent("""
        all:
          hosts:
            h1: {ansible_connection: local, ansible_python_interpreter: %s}
            h2: {ansible_connection: local, ansible_python_interpreter: %s}
    """ % (sys.executable, sys.executable)))

    def revision(name: str, destination: str, version: str, healthy: bool = True) -> str:
        path = tmp_path / "revisions" / name
        write_files(str(path), {
            "appspec.yml": APPSPEC.format(destination=destination),
            "app/VERSION": version + "\n",
            "scripts/trace.sh": '#!/bin/sh\necho "$APPLICATION_NAME $DEPLOYMENT_ID $LIFECYCLE_EVENT %s" >> %s\n' % (version, trace),
            "scripts/validate.sh": "#!/bin/sh\nexit %d\n" % (0 if healthy else 3),
        })
        return str(path)

    def run(playbook: str, *args: str, **extra_vars: t.Any) -> Run:
        report_file = tmp_path / "report.json"
        if report_file.exists():
            report_file.unlink()
        extra = dict(appspec_root_dir=str(root_dir), **extra_vars)
        env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_LOCAL_TEMP=str(tmp_path / "ltmp"),
                   APPSPEC_DEPLOY_CACHE_DIR=str(tmp_path / "cache"), APPSPEC_DEPLOY_SUMMARY_FILE=str(report_file),
                   ANSIBLE_NOCOLOR="1")
        target = playbook if os.path.isabs(playbook) else os.path.join(REPO, "playbooks", playbook)
        proc = subprocess.run(
            [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", str(inventory), target,
             "-e", json.dumps(extra)] + list(args),
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
        report = json.loads(report_file.read_text()) if report_file.exists() else None
        return Run(proc, report)

    site_ = type("Site", (), {})()
    site_.root_dir, site_.trace, site_.tmp, site_.revision, site_.run = root_dir, trace, tmp_path, revision, run
    return site_


def traced(site) -> t.List[str]:
    return site.trace.read_text().splitlines() if site.trace.exists() else []


def test_a_rollback_by_name_touches_only_that_application(site):
    """Issue 10.1: rolling back an in-place application never switched the example's `current`."""
    releases = site.tmp / "srv-a"
    in_place = site.tmp / "b-files"
    common = dict(appspec_deployment_config="CodeDeployDefault.AllAtOnce")
    for version in ("a1", "a2"):
        run = site.run("deploy.yml", "--limit", "h1", appspec_revision=site.revision(version, str(releases / "current"), version),
                       appspec_application_name="app-a", appspec_release_root=str(releases), **common)
        assert run.rc == 0, run.out
    for version in ("b1", "b2"):
        run = site.run("deploy.yml", "--limit", "h1", appspec_revision=site.revision(version, str(in_place), version),
                       appspec_application_name="app-b", **common)
        assert run.rc == 0, run.out
    current_a = os.readlink(str(releases / "current"))
    rollback = site.run("rollback.yml", "--limit", "h1", appspec_application_name="app-b")
    assert rollback.rc == 0, rollback.out
    assert (in_place / "VERSION").read_text() == "b1\n"
    assert os.readlink(str(releases / "current")) == current_a  # app-a untouched
    application, rollback_id, event, version = traced(site)[-1].split()
    assert (application, event, version) == ("app-b", "ApplicationStart", "b1")
    # The rollback names itself by its own id, and says what it went back to.
    assert "Rollback %s of app-b (default)" % rollback_id in rollback.out and "rolled back to d-" in rollback.out
    # An application that was never deployed here: refused, with a message that says so, nothing touched.
    nothing = site.run("rollback.yml", "--limit", "h1", appspec_application_name="app-c")
    assert nothing.rc != 0
    assert "application app-c, deployment group default was never deployed on this host" in nothing.out
    assert (in_place / "VERSION").read_text() == "b1\n" and os.readlink(str(releases / "current")) == current_a
    # Naming the wrong release root for app-b is refused before anything runs.
    wrong = site.run("rollback.yml", "--limit", "h1", appspec_application_name="app-b", appspec_release_root=str(releases))
    assert wrong.rc != 0 and "was last deployed on this host in place" in wrong.out
    assert os.readlink(str(releases / "current")) == current_a


def test_limit_deploys_to_the_limited_hosts_only(site):
    """Issue 10.4: --limit h2 failed with 'HostVarsVars has no attribute revision_deployment'."""
    destination = site.tmp / "files"
    run = site.run("deploy.yml", "--limit", "h2", appspec_revision=site.revision("v1", str(destination), "v1"),
                   appspec_application_name="app", appspec_deployment_config="CodeDeployDefault.AllAtOnce")
    assert run.rc == 0, run.out
    assert "succeeded on 1 of 1 hosts" in run.out
    assert [line.split()[2] for line in traced(site)] == ["ApplicationStart"]  # one host deployed, h1 not touched
    assert "h1" not in json.dumps(run.report)


@pytest.mark.parametrize("playbook", ["deploy.yml", "rollback.yml", "canary.yml", "preflight.yml"])
@pytest.mark.parametrize("args, hosts, message", [
    ((), "h3", "No host matches the target pattern 'h3' (appspec_hosts) in the inventory."),  # a typo
    (("--limit", "h2"), "h1", "No host matches the target pattern 'h1' (appspec_hosts) in the inventory within --limit h2."),
])
def test_a_host_pattern_that_matches_no_host_fails_the_run(site, playbook, args, hosts, message):
    """Ansible skips every play of a pattern that matches nothing and ends with rc 0: as if it had deployed."""
    destination = site.tmp / "files"
    run = site.run(playbook, *args, appspec_hosts=hosts, appspec_revision=site.revision("v1", str(destination), "v1"),
                   appspec_application_name="app")
    assert run.rc != 0 and message in run.out, run.out
    assert not destination.exists() and not site.root_dir.exists()


def test_a_host_refused_by_another_deployments_lock_is_named_in_the_verdict(site):
    """Issue 10.10: the verdict said 'failed: none'."""
    destination = site.tmp / "files"
    gid = deployment_group_id("app", "default")
    HostLock(str(site.root_dir), gid).acquire("d-OTHER0001", owner="someone else")
    run = site.run("deploy.yml", "--limit", "h2", appspec_revision=site.revision("v1", str(destination), "v1"),
                   appspec_application_name="app", appspec_deployment_config="CodeDeployDefault.AllAtOnce")
    assert run.rc != 0
    assert "failed: h2." in run.out and "host is locked by deployment d-OTHER0001" in run.out
    assert "Automatic rollback restored the last successful revision on: no host" in run.out
    assert not destination.exists()


USER_PLAYBOOK = """
- name: My own deployment, with the collection's roles
  hosts: h1
  gather_facts: false
  tasks:
    - name: Deploy
      ansible.builtin.include_role:
        name: appspec.deploy.lifecycle
      vars:
        lifecycle_deployment_id: d-MINE00001
        lifecycle_application_name: mine
        lifecycle_revision: {revision}
        lifecycle_root_dir: {root_dir}

    - name: Only reached when the deployment succeeded
      ansible.builtin.debug:
        msg: after the role
"""


@pytest.mark.parametrize("healthy", [True, False])
def test_the_lifecycle_role_from_a_users_playbook(site, healthy):
    """Issue 10.7: the role needed lifecycle_deployment_group_id to start, and a failing ValidateService ended rc 0."""
    destination = site.tmp / "files"
    playbook = site.tmp / "mine.yml"
    playbook.write_text(USER_PLAYBOOK.format(revision=site.revision("v1", str(destination), "v1", healthy=healthy),
                                             root_dir=site.root_dir))
    run = site.run(str(playbook))
    if healthy:
        assert run.rc == 0, run.out
        assert "after the role" in run.out and (destination / "VERSION").read_text() == "v1\n"
    else:
        assert run.rc == 2, run.out
        assert "ValidateService" in run.out and "after the role" not in run.out


def test_the_lifecycle_role_says_which_variable_is_missing(site):
    playbook = site.tmp / "mine.yml"
    playbook.write_text(USER_PLAYBOOK.replace("        lifecycle_deployment_id: d-MINE00001\n", "").format(
        revision=site.revision("v1", str(site.tmp / "files"), "v1"), root_dir=site.root_dir))
    run = site.run(str(playbook))
    assert run.rc != 0 and "Set lifecycle_deployment_id" in run.out, run.out[-3000:]


def tree(path) -> t.List[t.Tuple[str, float]]:
    found = []
    for base, dirs, files in os.walk(str(path)):
        for name in dirs + files:
            full = os.path.join(base, name)
            found.append((full, os.lstat(full).st_mtime))
    return sorted(found)


def test_check_mode_shows_what_would_change_and_changes_nothing(site):
    """Issue 10.3: --check --diff always failed (rc 2, 'the revision is not staged', then a rollback in check mode)."""
    destination = site.tmp / "files"
    common = dict(appspec_application_name="app", appspec_deployment_config="CodeDeployDefault.AllAtOnce")
    assert site.run("deploy.yml", "--limit", "h1", appspec_revision=site.revision("v1", str(destination), "v1"), **common).rc == 0
    before, lines_before = tree(site.tmp / "deployment-root"), traced(site)
    check = site.run("deploy.yml", "--limit", "h1", "--check", "--diff",
                     appspec_revision=site.revision("v2", str(destination), "v2"), **common)
    assert check.rc == 0, check.out
    assert "Check mode, nothing was changed: Deployment d-" in check.out and "would succeed on 1 of 1 hosts" in check.out
    assert "- sha256: null + sha256: " in check.out  # what would be staged
    assert (destination / "VERSION").read_text() == "v1\n" and traced(site) == lines_before
    assert tree(site.tmp / "deployment-root") == before
    assert check.report["check_mode"] is True
    # A run that would fail (a file Install would have to overwrite, DISALLOW) fails in check mode too.
    (site.tmp / "other").mkdir()
    (site.tmp / "other" / "VERSION").write_text("not ours\n")
    refused = site.run("deploy.yml", "--limit", "h1", "--check",
                       appspec_revision=site.revision("v3", str(site.tmp / "other"), "v3"), **common)
    assert refused.rc != 0 and "VERSION" in refused.out
    assert (site.tmp / "other" / "VERSION").read_text() == "not ours\n"
