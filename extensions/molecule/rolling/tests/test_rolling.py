"""After the rolling deployment of v2 behind haproxy under load."""
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


def test_serves_v2(host):
    assert "version=2.0.0" in host.check_output("curl -fsS http://127.0.0.1:8080/")
    assert host.file("/opt/appspec-example/current").linked_to.startswith("/opt/appspec-example/releases/d-")


@pytest.mark.parametrize("event", ["BeforeBlockTraffic", "AfterBlockTraffic", "ApplicationStop", "BeforeInstall",
                                   "AfterInstall", "ApplicationStart", "ValidateService", "BeforeAllowTraffic",
                                   "AfterAllowTraffic"])
def test_traffic_events_ran(host, event):
    assert host.file("%s/%s" % (MARKERS, event)).exists


def test_traffic_events_in_order(host):
    lines = [line.split() for line in host.file(MARKERS + "/history").content_string.splitlines()]
    last = lines[-1][1]
    assert [event for _stamp, dep, event in lines if dep == last] == [
        "BeforeBlockTraffic", "AfterBlockTraffic", "ApplicationStop", "BeforeInstall", "AfterInstall",
        "ApplicationStart", "ValidateService", "BeforeAllowTraffic", "AfterAllowTraffic"]
