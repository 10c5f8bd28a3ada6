"""After v1 to blue, v2 to green, v3 to blue after an approval, then a v1 whose approval never came and a v2 whose
AfterAllowTraffic failed on green, all under load through haproxy."""
import json
import os
from pathlib import Path

testinfra_hosts = ["ansible://lb"]
EPHEMERAL = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
MARKERS = "/var/lib/appspec-example/markers"


def run(name):
    return json.loads((EPHEMERAL / ("run-%s.json" % name)).read_text())


def servers(host):
    """haproxy's servers of backend app: name -> (status, weight)."""
    lines = host.check_output("echo 'show stat' | socat stdio UNIX-CONNECT:/run/haproxy/admin.sock").splitlines()
    fields = lines[0].lstrip("# ").split(",")
    rows = [dict(zip(fields, line.split(","))) for line in lines[1:] if line.startswith("app,")]
    return {row["svname"]: (row["status"], row["weight"]) for row in rows if row["svname"] not in ("BACKEND", "FRONTEND")}


def test_zero_failed_requests_over_every_deployment():
    result = json.loads((EPHEMERAL / "loadgen.json").read_text())
    assert result["total"] >= 2000, result
    assert result["failed"] == 0, result["errors"]
    assert {"1.0.0", "2.0.0", "3.0.0"} <= set(result["versions"]), result["versions"]


def test_every_response_comes_from_v3_on_blue(host):
    answers = [host.check_output("curl -fsS http://127.0.0.1:80/") for dummy in range(20)]
    assert all("version=3.0.0" in answer for answer in answers), answers


def test_haproxy_has_blue_in_service_and_green_out(host):
    state = servers(host)
    assert {name: status for name, (status, dummy) in state.items()} == {
        "blue1": "UP", "blue2": "UP", "green1": "MAINT", "green2": "MAINT"}, state


def test_the_approval_that_never_came_stopped_with_traffic_untouched():
    result = run("no-approval")
    assert result["rc"] != 0
    assert "no approval of moving traffic from blue to green within 5 s" in result["stdout"]
    assert "Traffic was not moved: still on blue." in result["stdout"]


def test_a_failing_after_allow_traffic_moved_traffic_back():
    result = run("bad-allow")
    assert result["rc"] != 0
    assert "AfterAllowTraffic failed on green1, green2" in result["stdout"]
    assert "Traffic was moved back to blue." in result["stdout"]
    # The report shows the traffic moves beside the event table.
    assert "traffic ok: green1 maint->ready" in result["stdout"] or "traffic ok: green1" in result["stdout"]


def test_rollback_moved_traffic_to_the_other_group_without_redeploying():
    result = run("rollback")
    assert result["rc"] == 0
    assert "Traffic moved back from blue to green; nothing was redeployed." in result["stdout"]


def test_check_mode_previewed_the_switch_and_changed_nothing():
    result = run("check")
    assert result["rc"] == 0, result["stdout"][-3000:]
    out = result["stdout"]
    assert "Check mode, nothing was changed: Blue/green deployment" in out
    assert "traffic would run: green1 maint->ready; green2 maint->ready" in out
    # The real v2 deployment after it still found blue in service and deployed to green (the tests above).
