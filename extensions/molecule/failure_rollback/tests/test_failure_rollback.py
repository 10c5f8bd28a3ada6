"""After v1 everywhere, then a v2 deployment whose ValidateService fails on web2."""
import json
import os
from pathlib import Path

GROUP_ID = "ccfdebf6-7906-511f-9347-105ddd88ec7f"
ROOT = "/opt/codedeploy-agent/deployment-root"
MARKERS = "/var/lib/appspec-example/markers"
RUN = json.loads((Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "deploy-run.json").read_text())


def history(host):
    return [line.split() for line in host.file(MARKERS + "/history").content_string.splitlines()]


def test_the_run_failed_and_says_why():
    out = RUN["stdout"]
    assert RUN["rc"] != 0
    assert "FAILED" in out and "failed: web2" in out
    assert "Stopped: by the minimum of healthy hosts: " in out
    assert "Not deployed: web3" in out
    assert "Automatic rollback restored the last successful revision on: web1, web2" in out


def test_every_host_serves_v1(host):
    assert "version=1.0.0" in host.check_output("curl -fsS http://127.0.0.1:8080/")
    assert host.file("/opt/appspec-example/current/VERSION").content_string.strip() == "1.0.0"
    assert not host.file("%s/locks/%s.lock" % (ROOT, GROUP_ID)).exists


def test_touched_hosts_ran_start_and_validate_of_v1_again(host):
    name = host.check_output("hostname").strip()
    deployments = []
    for _stamp, dep, _event in history(host):
        if dep not in deployments:
            deployments.append(dep)
    if name == "web3":
        assert len(deployments) == 1  # never touched by the failing deployment
        return
    assert len(deployments) == 3  # v1, the failing v2, the rollback
    rollback = [event for _stamp, dep, event in history(host) if dep == deployments[2]]
    assert rollback == ["ApplicationStop", "ApplicationStart", "ValidateService"]
    last = host.file("%s/deployment-instructions/%s_last_successful_install" % (ROOT, GROUP_ID)).content_string.strip()
    assert host.file(last + "/deployment-archive/app/VERSION").content_string.strip() == "1.0.0"
