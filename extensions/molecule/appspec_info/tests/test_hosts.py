"""Checks on the hosts after converge (testinfra, through Molecule's inventory)."""

import json

import pytest

TEST_DIR = "/srv/appspec-info"


def read_json(host, name):
    """One of the results converge saved on the host."""
    saved = host.file(TEST_DIR + "/results.json")
    assert saved.is_file
    return json.loads(saved.content_string)[name]


def test_systemd_is_running(host):
    state = host.run("systemctl is-system-running")
    assert state.stdout.strip() == "running", state.stdout + state.stderr
    assert host.service("ssh").is_running


def test_python3_is_present(host):
    """Hosts need Python 3.8 or later, and nothing else of Python."""
    version = host.run("python3 -c 'import sys; print(sys.version_info >= (3, 8))'")
    assert version.rc == 0, version.stderr
    assert version.stdout.strip() == "True"


@pytest.mark.parametrize("module", ["yaml", "boto3"])
def test_host_python_is_stock(host, module):
    """The test hosts are stock (python3 alone, no python3-yaml, no boto3), as users' hosts are: a
    host-side dependency on a third-party package must fail these scenarios, not hide in the image."""
    result = host.run("python3 -c 'import %s'" % module)
    assert result.rc != 0, "python3 on the test host can import %s: the image is not stock" % module
    assert "ModuleNotFoundError: No module named '%s'" % module in result.stderr, result.stderr


def test_example_revision_parsed(host):
    result = read_json(host, "example")
    assert result["compute_platform"] == "server"
    assert result["deployable"] is True
    appspec = result["appspec"]
    assert appspec["version"] == "0.0"
    assert appspec["os"] == "linux"
    assert appspec["files"] == [{"source": "app", "destination": "/opt/appspec-example/current"}]
    assert appspec["permissions"][0]["mode"] == "0755"
    assert appspec["permissions"][0]["type"] == ["file"]


@pytest.mark.parametrize(
    "event, locations",
    [
        ("ApplicationStop", ["scripts/record_event.sh", "scripts/stop_server.sh"]),
        ("BeforeInstall", ["scripts/record_event.sh"]),
        ("ApplicationStart", ["scripts/record_event.sh", "scripts/start_server.sh"]),
        ("ValidateService", ["scripts/record_event.sh", "scripts/validate_service.sh"]),
    ],
)
def test_example_hooks_normalized(host, event, locations):
    hooks = read_json(host, "example")["appspec"]["hooks"][event]
    assert [hook["location"] for hook in hooks] == locations
    for hook in hooks:
        assert set(hook) == {"location", "timeout", "runas", "sudo"}
        assert hook["timeout"] in (30, 60)


def test_broken_appspec_reports_every_error(host):
    result = read_json(host, "broken")
    assert "2 errors" in result["msg"]
    errors = {error["path"]: error for error in result["errors"]}
    assert set(errors) == {"hooks.AfterInstall[0].timeout", "hooks.AfterInstall[1].location"}
    assert errors["hooks.AfterInstall[0].timeout"]["line"] == 6
    assert errors["hooks.AfterInstall[1].location"]["line"] == 7
    assert "-1" in errors["hooks.AfterInstall[0].timeout"]["message"]


def test_login_user_matches_the_connection(host):
    """web1 is reached through podman as root, web2 over SSH as ``deploy`` (then become)."""
    expected = {"web1": "root", "web2": "deploy"}[host.check_output("hostname")]
    assert read_json(host, "login")["user"] == expected


def test_hosts_reach_each_other_by_name(host):
    other = "web2" if host.check_output("hostname") == "web1" else "web1"
    assert host.run("getent hosts %s" % other).rc == 0
