"""After deploying the example in place onto a host the CodeDeploy agent had deployed to."""

import re

GROUP_ID = "7f3e2a10-1c2b-4d5e-8f90-123456789abc"  # the agent's deployment group, given as appspec_deployment_group_id
ROOT = "/opt/codedeploy-agent/deployment-root"
INSTRUCTIONS = ROOT + "/deployment-instructions"
OLD_DIR = "%s/%s/d-AGENT0001" % (ROOT, GROUP_ID)
MARK = "/var/tmp/agent-appstop-ran"
MARKERS = "/var/lib/appspec-example/markers"
APP = "/opt/appspec-example/current"
# The new revision's events; its ApplicationStop does not run (the old revision's does).
NEW_EVENTS = ["BeforeInstall", "AfterInstall", "ApplicationStart", "ValidateService"]


def env_file(host, path):
    text = host.file(path).content_string
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def record(host, name):
    """A deployment-instructions record, exactly as stored (the agent's format: no final newline)."""
    return host.file("%s/%s_%s" % (INSTRUCTIONS, GROUP_ID, name)).content_string


def new_deployment_dir(host):
    path = record(host, "last_successful_install")
    assert re.match(r"^%s/%s/d-[A-Z0-9]{9}$" % (re.escape(ROOT), GROUP_ID), path), repr(path)
    assert path != OLD_DIR
    return path


def test_old_application_stop_ran(host):
    """ApplicationStop ran the agent-installed revision's script, read from its YAML AppSpec."""
    assert host.file(MARK).is_file, "the old revision's ApplicationStop did not run"
    seen = env_file(host, MARK)
    assert seen["LIFECYCLE_EVENT"] == "ApplicationStop"
    assert seen["SCRIPT_DIR"] == OLD_DIR + "/deployment-archive/scripts"
    assert seen["USER"] == "root"
    # The old revision's script runs with the deployment being made's environment (agent semantics).
    assert seen["DEPLOYMENT_ID"] == new_deployment_dir(host).rsplit("/", 1)[1]
    assert seen["APPLICATION_NAME"] == "webapp"
    assert seen["DEPLOYMENT_GROUP_NAME"] == "production"
    assert seen["DEPLOYMENT_GROUP_ID"] == GROUP_ID


def test_new_revision_hooks_ran(host):
    deployment_id = new_deployment_dir(host).rsplit("/", 1)[1]
    for event in NEW_EVENTS:
        values = env_file(host, "%s/%s" % (MARKERS, event))
        assert values["LIFECYCLE_EVENT"] == event
        assert values["DEPLOYMENT_ID"] == deployment_id
        assert values["DEPLOYMENT_GROUP_ID"] == GROUP_ID
        assert values["SCRIPT_DIR"] == new_deployment_dir(host) + "/deployment-archive/scripts"
    history = [line.split() for line in host.file(MARKERS + "/history").content_string.splitlines()]
    assert [event for _stamp, dep, event in history] == NEW_EVENTS
    # The new revision's own ApplicationStop script is not the one that ran.
    assert not host.file(MARKERS + "/ApplicationStop").exists


def test_records_point_at_the_new_deployment(host):
    new_dir = new_deployment_dir(host)
    assert record(host, "most_recent_install") == new_dir
    assert host.file(new_dir + "/deployment-archive/appspec.yml").is_file
    # The agent's deployment is still there, untouched.
    assert host.file(OLD_DIR + "/deployment-archive/appspec.yml").is_file
    assert host.file(OLD_DIR + "/bundle.tar").is_file


def test_agent_install_cleaned_up_and_replaced(host):
    """The agent's cleanup list was honoured: its files are ours to replace or remove."""
    assert host.file(APP + "/VERSION").content_string.strip() == "1.0.0"
    assert host.file(APP + "/server.py").mode == 0o755
    assert not host.file(APP + "/LEGACY.txt").exists
    cleanup = host.file("%s/%s-cleanup" % (INSTRUCTIONS, GROUP_ID)).content_string.splitlines()
    assert APP + "/VERSION" in cleanup and APP + "/server.py" in cleanup
    assert APP + "/LEGACY.txt" not in cleanup


def test_serves_the_new_revision(host):
    body = host.check_output("curl -fsS http://127.0.0.1:8080/")
    assert "version=1.0.0" in body
    assert "deployment=%s" % new_deployment_dir(host).rsplit("/", 1)[1] in body


def test_no_yaml_on_the_host(host):
    """The takeover worked on a stock host: python3 here cannot import yaml."""
    result = host.run("python3 -c 'import yaml'")
    assert result.rc != 0, "python3 on the test host can import yaml: the image is not stock"
    assert "ModuleNotFoundError: No module named 'yaml'" in result.stderr, result.stderr
