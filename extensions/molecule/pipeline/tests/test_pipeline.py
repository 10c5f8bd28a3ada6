"""The release pipeline: package, deploy to staging, promote to production, refusals, the history."""
import hashlib
import json
import os
from pathlib import Path

import pytest

EPHEMERAL = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
DIST = EPHEMERAL / "dist"
ROOT = "/opt/codedeploy-agent/deployment-root"
REASON = "CVE-2026-1234 in libfoo"


def run(name):
    return json.loads((EPHEMERAL / "runs" / (name + ".json")).read_text())


def recorded_sha256(archive):
    """The sha256 that package.yml wrote beside ``archive``, checked against the archive's bytes."""
    digest, name = (archive.parent / (archive.name + ".sha256")).read_text().split()
    assert name.lstrip("*") == archive.name
    assert hashlib.sha256(archive.read_bytes()).hexdigest() == digest
    return digest


V2 = recorded_sha256(DIST / "webapp-v2.tar.gz")
FAILING = recorded_sha256(DIST / "webapp-v2-failing.tar.gz")
HISTORY = json.loads((EPHEMERAL / "history.json").read_text())


def deployments(environment, sha256):
    return [d for d in HISTORY["deployments"] if d["environment"] == environment and d["sha256"] == sha256]


def test_the_same_directory_packs_to_the_same_sha256():
    # The second run packed the same tree after every file got another time: the same bytes.
    again = recorded_sha256(DIST / "again" / "webapp-v2.tar.gz")
    assert again == V2
    assert (DIST / "again" / "webapp-v2.tar.gz").read_bytes() == (DIST / "webapp-v2.tar.gz").read_bytes()
    assert FAILING != V2
    for name in ("package-v2", "package-v2-again"):
        assert run(name)["rc"] == 0
        assert "appspec_revision_sha256=" + V2 in run(name)["stdout"]


def test_a_revision_missing_hook_scripts_is_refused_with_every_problem():
    result = run("package-broken")
    assert result["rc"] != 0
    out = result["stdout"]
    assert "cannot be packaged, 2 problems" in out
    assert "hooks.ApplicationStop[1].location 'scripts/stop_server.sh': the script does not exist in the revision" in out
    assert "hooks.ValidateService[1].location 'scripts/validate_service.sh': the script does not exist in the revision" in out
    assert not (DIST / "webapp-v2-broken.tar.gz").exists()
    assert not (DIST / "webapp-v2-broken.tar.gz.sha256").exists()


def test_every_host_serves_v2(host):
    assert "version=2.0.0" in host.check_output("curl -fsS http://127.0.0.1:8080/")
    assert host.file("/opt/appspec-example/current/VERSION").content_string.strip() == "2.0.0"


def last_successful(host):
    return host.check_output("cat %s/deployment-instructions/*_last_successful_install" % ROOT).strip()


def test_production_runs_the_promoted_archive(host):
    name = host.check_output("hostname").strip()
    if not name.startswith("prod"):
        pytest.skip("a staging host")
    (promoted,) = deployments("production", V2)
    assert promoted["status"] == "succeeded"
    assert promoted["revision"] == str(DIST / "webapp-v2.tar.gz")
    last = last_successful(host)
    assert last.endswith("/" + promoted["deployment_id"])
    assert host.check_output("sha256sum %s/bundle.tgz" % last).split()[0] == V2
    link = host.file("/opt/appspec-example/current").linked_to
    assert link == "/opt/appspec-example/releases/" + promoted["deployment_id"]
    # Only the promotion ever reached production: the refused promotions touched no host.
    assert [d["deployment_id"] for d in HISTORY["deployments"] if d["environment"] == "production"] == [
        promoted["deployment_id"]]


def test_staging_rolled_back_to_v2_after_the_failing_revision(host):
    name = host.check_output("hostname").strip()
    if not name.startswith("stage"):
        pytest.skip("a production host")
    (good,) = deployments("staging", V2)
    (bad,) = deployments("staging", FAILING)
    assert good["status"] == "succeeded" and bad["status"] == "failed"
    assert bad["hosts"][name]["status"] == "failed" and not bad["hosts"][name]["running"]
    assert bad["hosts"][name]["failure"]["event"] == "ValidateService"
    assert last_successful(host).endswith("/" + good["deployment_id"])
    assert host.file("/opt/appspec-example/current").linked_to == "/opt/appspec-example/releases/" + good["deployment_id"]


def test_the_run_that_failed_in_staging_says_so():
    result = run("deploy-staging-failing")
    assert result["rc"] != 0
    assert "failing on purpose on stage1" in result["stdout"] and "failing on purpose on stage2" in result["stdout"]


def test_promotion_moved_the_exact_archive():
    result = run("promote-v2")
    assert result["rc"] == 0
    assert V2[:12] in result["stdout"]


def test_a_revision_that_failed_staging_is_refused_for_production():
    result = run("promote-failing")
    assert result["rc"] != 0
    (bad,) = deployments("staging", FAILING)
    expected = ("Refused: revision %s of webapp may not go to production: the last deployment of revision %s to "
                "staging, %s (%s), failed on stage1, stage2: it must succeed there before production."
                % (FAILING[:12], FAILING[:12], bad["deployment_id"], bad["ended"]))
    assert expected in " ".join(result["stdout"].split())


def test_a_blocked_revision_is_refused_with_its_reason():
    assert run("block-v2")["rc"] == 0
    result = run("promote-blocked")
    assert result["rc"] != 0
    out = " ".join(result["stdout"].split())
    assert "Refused: revision %s of webapp may not go to production: revision %s is blocked: \"%s\" (blocked by " % (
        V2[:12], V2[:12], REASON) in out.replace('\\"', '"')
    assert "unblock it with appspec_promote_action=unblock" in out


def test_the_history_lists_every_deployment():
    listed = [(d["environment"], d["status"], d["sha256"]) for d in HISTORY["deployments"]]
    assert listed == [  # newest first
        ("staging", "failed", FAILING),
        ("production", "succeeded", V2),
        ("staging", "succeeded", V2),
    ]
    for deployment in HISTORY["deployments"]:
        assert deployment["application"] == "webapp"
        assert deployment["deployment_id"].startswith("d-")
        assert deployment["started"] and deployment["ended"] and deployment["who"]
        assert sorted(deployment["hosts"]) == (["prod1", "prod2"] if deployment["environment"] == "production"
                                               else ["stage1", "stage2"])
    running = {(r["environment"], r["host"]): r["sha256"] for r in HISTORY["running"]}
    assert running == {("staging", "stage1"): V2, ("staging", "stage2"): V2,
                       ("production", "prod1"): V2, ("production", "prod2"): V2}
    assert [(b["sha256"], b["reason"]) for b in HISTORY["blocked"]] == [(V2, REASON)]
    # The same as text.
    text = run("history")["stdout"]
    assert run("history")["rc"] == 0
    assert "Running now" in text
    listed_text = text.split("Deployments (newest first):", 1)[1].split("Blocked revisions:", 1)[0]
    for deployment in HISTORY["deployments"]:
        line = [row for row in listed_text.splitlines() if deployment["deployment_id"] in row and deployment["ended"] in row]
        assert line, deployment["deployment_id"]
        assert deployment["environment"] in line[0] and deployment["status"] in line[0]
        assert deployment["sha256"][:12] in line[0]
    assert "Blocked revisions:" in text and REASON in text
    assert (EPHEMERAL / "history" / "webapp" / "deployments").is_dir()
