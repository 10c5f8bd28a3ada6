"""After v1 to blue and, under load, v2 to green through nginx, then v3 to blue in a deploy and a reroute phase."""
import json
import os
from pathlib import Path

testinfra_hosts = ["ansible://lb"]
EPHEMERAL = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])


def test_zero_failed_requests_over_the_switch():
    result = json.loads((EPHEMERAL / "loadgen.json").read_text())
    assert result["total"] >= 500, result
    assert result["failed"] == 0, result["errors"]
    # nginx's graceful reload closes idle keep-alive connections; clients retry a GET once on a new one (loadgen.py).
    assert result["retried"] <= 40, result
    assert set(result["versions"]) <= {"1.0.0", "2.0.0", "3.0.0"} and "2.0.0" in result["versions"], result["versions"]


def test_the_deploy_phase_left_traffic_on_green():
    upstream = (EPHEMERAL / "upstream-after-deploy-phase.conf").read_text()
    assert "server green1:8080;" in upstream and "server blue1:8080 down;" in upstream, upstream


def test_every_response_comes_from_v3_after_the_reroute_phase(host):
    answers = [host.check_output("curl -fsS http://127.0.0.1:80/") for dummy in range(20)]
    assert all("version=3.0.0 " in answer and "deployment=d-PHASEV3X1" in answer for answer in answers), answers


def test_the_upstream_file_has_blue_in_service_and_green_down(host):
    upstream = host.file("/etc/nginx/conf.d/appspec-upstream.conf").content_string
    assert "server blue1:8080;" in upstream
    assert "server green1:8080 down;" in upstream
    assert host.run("nginx -t").rc == 0
