"""After a canary of a v2 that fails under traffic (caught, rolled back) and a canary of a healthy v2 (to 100 %)."""
import json
import os
from pathlib import Path

testinfra_hosts = ["ansible://lb"]
EPHEMERAL = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])


def loadgen(name):
    return json.loads((EPHEMERAL / ("loadgen-%s.json" % name)).read_text())


def test_the_analysis_caught_the_flaky_revision_at_the_first_step():
    run = json.loads((EPHEMERAL / "run-flaky.json").read_text())
    assert run["rc"] != 0
    out = run["stdout"]
    assert "canary analysis step 1 failed on error rate: updated 0." in out, out[-3000:]
    assert "baseline 0.0, limit 0.05" in out
    assert "Automatic rollback restored the last successful revision on: web1." in out
    assert "Not deployed: web2, web3, web4." in out


def test_no_more_than_the_canary_share_of_requests_failed():
    result = loadgen("flaky")
    assert result["failed"] > 0, "the flaky revision never failed a request: the test shows nothing"
    assert result["failed"] / result["total"] <= 0.20, result  # the canary got 20 % of the requests


def test_the_healthy_canary_failed_no_request():
    result = loadgen("healthy")
    assert result["total"] >= 1000, result
    assert result["failed"] == 0, result["errors"]
    assert {"1.0.0", "2.0.0"} <= set(result["versions"]), result["versions"]


def test_every_response_comes_from_v2_and_the_weights_are_restored(host):
    answers = [host.check_output("curl -fsS http://127.0.0.1:80/") for dummy in range(20)]
    assert all("version=2.0.0" in answer for answer in answers), answers
    lines = host.check_output("echo 'show stat' | socat stdio UNIX-CONNECT:/run/haproxy/admin.sock").splitlines()
    fields = lines[0].lstrip("# ").split(",")
    rows = [dict(zip(fields, line.split(","))) for line in lines[1:] if line.startswith("app,web")]
    assert {row["svname"]: (row["status"], row["weight"]) for row in rows} == {
        "web1": ("UP", "1"), "web2": ("UP", "1"), "web3": ("UP", "1"), "web4": ("UP", "1")}
