"""After two deployments over SSH as `deploy` with become."""


def test_reached_over_ssh_as_deploy(host):
    assert host.backend.get_variables().get("ansible_connection") == "ssh"
    assert host.run("id -un").stdout.strip() in ("deploy", "root")


def test_serves_v2(host):
    assert "version=2.0.0" in host.check_output("curl -fsS http://127.0.0.1:8080/")


def test_installed_as_root(host):
    current = host.file("/opt/appspec-example/current")
    assert current.is_symlink
    assert host.file(current.linked_to + "/server.py").user == "root"


def test_runas_hook_ran_as_nobody(host):
    assert host.file("/var/tmp/appspec-whoami").content_string.strip() == "nobody"
