# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pipeline driven as users drive it (docs/pipeline.md): real ansible-playbook runs on this machine.

package.yml builds the archive, deploy.yml deploys it to a `staging` host and records it in the history,
promote.yml refuses what did not succeed in staging or is blocked, then deploys the exact archive to a
`production` host; history.yml lists it all. Both hosts reach this machine (ansible_connection=local).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from bundle_fixtures import REPO, write_files

APPSPEC = """
version: 0.0
os: linux
files:
  - source: app
    destination: {destination}
hooks:
  ValidateService:
    - location: scripts/validate.sh
"""
ENVIRONMENTS = ["staging", "production"]


class Run:
    def __init__(self, proc: subprocess.CompletedProcess) -> None:
        self.rc = proc.returncode
        self.out = " ".join((proc.stdout.decode() + proc.stderr.decode()).split())  # the callback folds long lines


@pytest.fixture
def pipeline(tmp_path):
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(textwrap.dedent("""
        all:
          children:
            staging:
              hosts:
                s1: {ansible_connection: local, ansible_python_interpreter: %s}
            production:
              hosts:
                p1: {ansible_connection: local, ansible_python_interpreter: %s}
    """ % (sys.executable, sys.executable)))
    history = tmp_path / "history"

    def revision(name, version, healthy=True):
        return write_files(str(tmp_path / "src" / name), {
            "appspec.yml": APPSPEC.format(destination=tmp_path / "installed"),
            "app/VERSION": version + "\n",
            "scripts/validate.sh": "#!/bin/sh\nexit %d\n" % (0 if healthy else 3),
        })

    def run(playbook, *args, **extra_vars):
        extra = dict(appspec_root_dir=str(tmp_path / "root"), appspec_history_dir=str(history), appspec_application_name="shop",
                     appspec_file_exists_behavior="OVERWRITE", appspec_environments=ENVIRONMENTS, **extra_vars)
        env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_LOCAL_TEMP=str(tmp_path / "ltmp"),
                   APPSPEC_DEPLOY_CACHE_DIR=str(tmp_path / "cache"), ANSIBLE_NOCOLOR="1")
        proc = subprocess.run(
            [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", str(inventory),
             os.path.join(REPO, "playbooks", playbook), "-e", json.dumps(extra)] + list(args),
            cwd=str(tmp_path), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
        return Run(proc)

    def package(src, dest):
        built = run("package.yml", appspec_package_src=src, appspec_package_dest=str(tmp_path / "dist" / dest))
        assert built.rc == 0, built.out
        sha256 = (tmp_path / "dist" / (dest + ".sha256")).read_text().split()[0]
        assert "-e appspec_revision=%s -e appspec_revision_sha256=%s" % (tmp_path / "dist" / dest, sha256) in built.out
        return str(tmp_path / "dist" / dest), sha256, built

    def installed():
        return (tmp_path / "installed" / "VERSION").read_text().strip()

    def records():
        folder = history / "shop" / "deployments"
        return [json.loads((folder / name).read_text()) for name in sorted(os.listdir(str(folder)))]

    site = type("Pipeline", (), {})()
    site.tmp, site.revision, site.run, site.package, site.installed, site.records = (
        tmp_path, revision, run, package, installed, records)
    return site


def test_package_twice_gives_the_same_archive(pipeline):
    src = pipeline.revision("good", "v1")
    first, sha_first, built = pipeline.package(src, "a.tar.gz")
    assert "changed=1" in built.out
    again, sha_again, built = pipeline.package(src, "a.tar.gz")
    assert sha_again == sha_first and "changed=0" in built.out and "kept (unchanged)" in built.out
    # A copy of the same tree elsewhere, touched later: the same bytes.
    copy = pipeline.revision("copy", "v1")
    assert pipeline.package(copy, "b.tar.gz")[1] == sha_first
    # Check mode says what it would write and writes nothing.
    checked = pipeline.run("package.yml", "--check", appspec_package_src=src,
                           appspec_package_dest=str(pipeline.tmp / "dist" / "c.zip"))
    assert checked.rc == 0, checked.out
    assert "would write %s" % (pipeline.tmp / "dist" / "c.zip") in checked.out and "changed=1" in checked.out
    assert sorted(os.listdir(str(pipeline.tmp / "dist"))) == ["a.tar.gz", "a.tar.gz.sha256", "b.tar.gz", "b.tar.gz.sha256"]


def test_package_refuses_a_revision_listing_every_problem(pipeline):
    src = write_files(str(pipeline.tmp / "src" / "bad"), {
        "appspec.yml": """
            version: 0.0
            os: linux
            file_exists_behavior: SOMETIMES
            files:
              - source: missing
                destination: /opt/x
            hooks:
              AfterInstall:
                - location: scripts/absent.sh
        """,
    })
    run = pipeline.run("package.yml", appspec_package_src=src, appspec_package_dest=str(pipeline.tmp / "dist" / "bad.zip"))
    assert run.rc != 0
    assert "3 problems" in run.out
    assert "file_exists_behavior" in run.out and "SOMETIMES" in run.out
    assert "files[0].source 'missing' does not exist in the revision" in run.out
    assert "hooks.AfterInstall[0].location 'scripts/absent.sh': the script does not exist in the revision" in run.out
    assert not (pipeline.tmp / "dist").exists()


def test_staging_then_production_promotion_blocks_and_history(pipeline):
    good, sha_good, dummy = pipeline.package(pipeline.revision("good", "v1"), "shop-1.tar.gz")
    bad, sha_bad, dummy = pipeline.package(pipeline.revision("bad", "v2", healthy=False), "shop-2.tar.gz")
    staging = dict(appspec_deployment_group_name="staging", appspec_hosts="staging")
    production = dict(appspec_deployment_group_name="production", appspec_hosts="production")

    # Nothing succeeded in staging yet: refused, and production is untouched.
    refused = pipeline.run("promote.yml", **production)
    assert refused.rc != 0 and "no deployment of shop has succeeded in staging yet" in refused.out

    deployed = pipeline.run("deploy.yml", appspec_revision=good, appspec_revision_sha256=sha_good, **staging)
    assert deployed.rc == 0, deployed.out
    failed = pipeline.run("deploy.yml", appspec_revision=bad, appspec_revision_sha256=sha_bad, **staging)
    assert failed.rc != 0 and "FAILED" in failed.out
    assert pipeline.installed() == "v1"  # rolled back
    first, second = pipeline.records()
    assert (first["environment"], first["sha256"], first["status"]) == ("staging", sha_good, "succeeded")
    assert (second["sha256"], second["status"]) == (sha_bad, "failed")  # the failed deployment is recorded too
    assert second["hosts"]["s1"]["rollback"]["status"] == "succeeded" and not second["hosts"]["s1"]["running"]
    assert second["hosts"]["s1"]["failure"]["event"] == "ValidateService"
    assert first["started"] <= first["ended"] and "@" in first["who"]

    # The revision that failed staging may not go to production.
    refused = pipeline.run("promote.yml", appspec_revision_sha256=sha_bad, **production)
    assert refused.rc != 0
    assert ("the last deployment of revision %s to staging, %s" % (sha_bad[:12], second["deployment_id"])) in refused.out
    assert "failed on s1" in refused.out and len(pipeline.records()) == 2

    # A blocked revision is refused with its reason, until it is unblocked.
    blocked = pipeline.run("promote.yml", appspec_promote_action="block", appspec_revision_sha256=sha_good,
                           appspec_block_reason="CVE-2026-1234 in libfoo", **production)
    assert blocked.rc == 0, blocked.out
    refused = pipeline.run("promote.yml", **production)
    assert refused.rc != 0 and 'is blocked: "CVE-2026-1234 in libfoo"' in refused.out
    assert len(pipeline.records()) == 2  # nothing deployed by the refusals nor by the block
    unblocked = pipeline.run("promote.yml", appspec_promote_action="unblock", appspec_revision_sha256=sha_good, **production)
    assert unblocked.rc == 0, unblocked.out

    # Promoted: the last revision that succeeded in staging, the exact archive.
    promoted = pipeline.run("promote.yml", **production)
    assert promoted.rc == 0, promoted.out
    assert "revision %s of shop succeeded in staging" % sha_good in promoted.out
    last = pipeline.records()[-1]
    assert (last["environment"], last["sha256"], last["revision"], last["status"]) == ("production", sha_good, good, "succeeded")
    assert last["hosts"] == {"p1": dict(last["hosts"]["p1"], status="succeeded", running=True)}

    # The history: what runs where, as text and JSON.
    listed = pipeline.run("history.yml", appspec_history_json=str(pipeline.tmp / "history.json"))
    assert listed.rc == 0, listed.out
    data = json.loads((pipeline.tmp / "history.json").read_text())
    assert [(r["environment"], r["host"], r["sha256"]) for r in data["running"]] == [
        ("production", "p1", sha_good), ("staging", "s1", sha_good)]
    assert [d["status"] for d in data["deployments"]] == ["succeeded", "failed", "succeeded"]
    assert "shop production p1 %s %s" % (sha_good[:12], last["deployment_id"]) in listed.out
