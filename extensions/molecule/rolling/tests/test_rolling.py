"""After the rolling deployment of v2 behind haproxy under load, and the rollback to v1 by hand under the same load."""
import json
import os
from pathlib import Path

import pytest

testinfra_hosts = ["ansible://webservers"]
MARKERS = "/var/lib/appspec-example/markers"
RESULT = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "loadgen.json"


def test_zero_failed_requests_under_load():
    result = json.loads(RESULT.read_text())
    assert result["total"] >= 5000, result
    assert result["failed"] == 0, result["errors"]
    assert set(result["versions"]) == {"1.0.0", "2.0.0"}, result["versions"]


def test_serves_v1_again_after_the_rollback(host):
    assert "version=1.0.0" in host.check_output("curl -fsS http://127.0.0.1:8080/")
    assert host.file("/opt/appspec-example/current").linked_to.startswith("/opt/appspec-example/releases/d-")


def deployments(host):
    """(deployment id, [events]) in the order the deployments ran on this host."""
    runs = []
    for _stamp, deployment, event in (line.split() for line in host.file(MARKERS + "/history").content_string.splitlines()):
        if not runs or runs[-1][0] != deployment:
            runs.append((deployment, []))
        runs[-1][1].append(event)
    return runs


@pytest.mark.parametrize("event", ["BeforeBlockTraffic", "AfterBlockTraffic", "ApplicationStop", "BeforeInstall",
                                   "AfterInstall", "ApplicationStart", "ValidateService", "BeforeAllowTraffic",
                                   "AfterAllowTraffic"])
def test_traffic_events_ran(host, event):
    assert host.file("%s/%s" % (MARKERS, event)).exists


def test_traffic_events_in_order(host):
    (_v2, deployment), (_rollback, rollback) = deployments(host)[-2:]
    assert deployment == [
        "BeforeBlockTraffic", "AfterBlockTraffic", "ApplicationStop", "BeforeInstall", "AfterInstall",
        "ApplicationStart", "ValidateService", "BeforeAllowTraffic", "AfterAllowTraffic"]
    # The rollback drains the host too: its ApplicationStop (of v2) runs after BlockTraffic, its traffic hooks are v1's.
    assert rollback == ["ApplicationStop", "ApplicationStart", "ValidateService", "BeforeAllowTraffic", "AfterAllowTraffic"]
