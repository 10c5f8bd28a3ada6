"""After two in-place deployments (v1 then v2) on every host."""

GROUP_ID = "ccfdebf6-7906-511f-9347-105ddd88ec7f"  # _layout.deployment_group_id("webapp", "default")
ROOT = "/opt/codedeploy-agent/deployment-root"
MARKERS = "/var/lib/appspec-example/markers"
EVENTS = ["ApplicationStop", "BeforeInstall", "AfterInstall", "ApplicationStart", "ValidateService"]


def marker(host, event):
    text = host.file("%s/%s" % (MARKERS, event)).content_string
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def last_install(host):
    return host.file("%s/deployment-instructions/%s_last_successful_install" % (ROOT, GROUP_ID)).content_string.strip()


def test_serves_v2(host):
    body = host.check_output("curl -fsS http://127.0.0.1:8080/")
    assert "version=2.0.0" in body
    assert "deployment=%s" % last_install(host).rsplit("/", 1)[1] in body


def test_files_installed_in_place(host):
    current = host.file("/opt/appspec-example/current")
    assert current.is_directory and not current.is_symlink
    assert host.file("/opt/appspec-example/current/VERSION").content_string.strip() == "2.0.0"
    assert host.file("/opt/appspec-example/current/server.py").mode == 0o755


def test_every_event_marker_of_the_second_deployment(host):
    second = last_install(host).rsplit("/", 1)[1]
    for event in EVENTS:
        values = marker(host, event)
        assert values["LIFECYCLE_EVENT"] == event
        assert values["DEPLOYMENT_ID"] == second
        assert values["APPLICATION_NAME"] == "webapp"
        assert values["DEPLOYMENT_GROUP_NAME"] == "default"
        assert values["DEPLOYMENT_GROUP_ID"] == GROUP_ID


def test_application_stop_ran_the_previous_revision(host):
    second = last_install(host).rsplit("/", 1)[1]
    script_dir = marker(host, "ApplicationStop")["SCRIPT_DIR"]
    first_archive = script_dir.rsplit("/scripts", 1)[0]
    assert second not in script_dir
    assert first_archive.startswith("%s/%s/d-" % (ROOT, GROUP_ID))
    assert host.file(first_archive + "/app/VERSION").content_string.strip() == "1.0.0"


def test_history_in_codedeploy_order(host):
    lines = [line.split() for line in host.file(MARKERS + "/history").content_string.splitlines()]
    first, second = lines[0][1], lines[-1][1]
    assert first != second
    # The first deployment had no earlier revision: its ApplicationStop had nothing to run.
    assert [event for _stamp, dep, event in lines if dep == first] == EVENTS[1:]
    assert [event for _stamp, dep, event in lines if dep == second] == EVENTS


def test_recorded_as_good(host):
    good = host.file("%s/deployment-instructions/%s_last_good_deployment" % (ROOT, GROUP_ID)).content_string.strip()
    assert good == last_install(host)
    assert not host.file("%s/locks/%s.lock" % (ROOT, GROUP_ID)).exists
