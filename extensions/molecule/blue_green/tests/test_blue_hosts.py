"""The blue hosts' own record of the lifecycle events they ran, deployment by deployment."""
testinfra_hosts = ["ansible://blue"]
MARKERS = "/var/lib/appspec-example/markers"


def history(host):
    """[events] of each deployment, in the order the deployments ran on this host."""
    runs = []
    for dummy, deployment, event in (line.split() for line in host.file(MARKERS + "/history").content_string.splitlines()):
        if not runs or runs[-1][0] != deployment:
            runs.append((deployment, []))
        runs[-1][1].append(event)
    return [events for dummy, events in runs]


def test_blue_ran_its_lifecycle_then_its_block_traffic_hooks_then_v3(host):
    v1, v2_original, v3 = history(host)[:3]
    assert v1[-3:] == ["ValidateService", "BeforeAllowTraffic", "AfterAllowTraffic"]
    # As the original group of the v2 deployment: BeforeBlockTraffic, then haproxy drained it, then AfterBlockTraffic.
    assert v2_original == ["BeforeBlockTraffic", "AfterBlockTraffic"]
    assert v3[0] == "ApplicationStop" and v3[-2:] == ["BeforeAllowTraffic", "AfterAllowTraffic"]


def test_blue_serves_v3(host):
    assert "version=3.0.0" in host.check_output("curl -fsS http://127.0.0.1:8080/")
