# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The playbook variables through roles/revision and the deployment_plan action plugin (ansible-playbook)."""

from __future__ import annotations

from bundle_fixtures import git_repo, http_server, make_archive, moto_endpoint, run_playbook, s3  # noqa: F401 pylint: disable=unused-import

PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  roles:
    - appspec.deploy.revision
"""
APPSPEC = "version: 0.0\nos: linux\n"


def test_the_playbook_variable_reaches_the_deployment_record(tmp_path, http_server):
    sha = make_archive(http_server.root / "webapp.tgz", {"appspec.yml": APPSPEC})[1]
    url = http_server.url("webapp.tgz")
    checked, plan, record = run_playbook(tmp_path, PLAYBOOK, {"appspec_revision": url, "appspec_revision_download": "host",
                                                              "appspec_application_name": "webapp"})[:3]
    assert not checked.get("failed") and not plan.get("failed"), (checked, plan)  # the role's argument_specs too
    deployment = record["ansible_facts"]["revision_deployment"]
    assert (deployment["download_url"], deployment["sha256"], deployment["revision_kind"]) == (url, sha, "url")
    assert len(http_server.seen) == 1  # the controller fetched and validated it first

    default = run_playbook(tmp_path, PLAYBOOK, {"appspec_revision": url, "appspec_application_name": "webapp"})[2]
    assert default["ansible_facts"]["revision_deployment"]["download_url"] is None


def test_a_controller_path_is_refused_before_anything_is_fetched(tmp_path):
    checked, plan = run_playbook(tmp_path, PLAYBOOK, {"appspec_revision": str(tmp_path / "missing.tgz"),
                                                      "appspec_revision_download": "host", "appspec_application_name": "a"})
    assert not checked.get("failed") and plan["failed"] is True
    assert "appspec_revision_download=host" in plan["msg"] and "not a local revision" in plan["msg"]


# --- issue 10 --------------------------------------------------------------------------------------

FLEET_PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  pre_tasks:
    - name: A host beside localhost
      ansible.builtin.add_host: {name: web1, ansible_connection: local}
  roles:
    - appspec.deploy.revision
"""


def test_a_mistyped_revision_does_not_deploy_the_example_to_a_fleet(tmp_path):
    """Item 2: deploy.yml -e appspec_revison=... deployed the bundled example to every host, rc 0."""
    checked, plan = run_playbook(tmp_path, FLEET_PLAYBOOK, {"appspec_revison": str(tmp_path / "app.zip"),
                                                            "appspec_application_name": "nc-hello"})[1:]
    assert not checked.get("failed") and plan["failed"] is True
    assert "set appspec_revision" in plan["msg"] and "localhost alone" in plan["msg"]
    # Ansible shows no warnings of a failed task: the failure names the typo.
    assert "appspec_revison is not a variable of appspec.deploy and is ignored" in plan["msg"]
    assert "did you mean appspec_revision?" in plan["msg"]


def test_unknown_variables_fail_the_plan_in_strict_mode(tmp_path, http_server):
    make_archive(http_server.root / "app.tgz", {"appspec.yml": APPSPEC})
    given = {"appspec_revision": http_server.url("app.tgz"), "appspec_application_name": "app", "appspec_keep_release": 2}
    plan = run_playbook(tmp_path, PLAYBOOK, given)[1]
    assert not plan.get("failed") and any("did you mean appspec_keep_releases?" in w for w in plan["warnings"]), plan
    plan = run_playbook(tmp_path, PLAYBOOK, dict(given, appspec_strict_variables="true"))[1]
    assert plan["failed"] is True and "appspec_keep_release (did you mean appspec_keep_releases?)" in plan["msg"]
    assert len(http_server.seen) == 1  # refused before the revision was fetched again


def test_the_warnings_of_the_appspec_are_shown_with_their_line(tmp_path, http_server):
    """What CodeDeploy accepts but is probably a mistake: shown by the plan, not only by appspec_info."""
    appspec = APPSPEC + "files:\n  - source: /\n    destination: /srv/app\npermissions:\n  - object: /etc\n    mode: 0644\n"
    make_archive(http_server.root / "app.tgz", {"appspec.yml": appspec})
    plan = run_playbook(tmp_path, PLAYBOOK, {"appspec_revision": http_server.url("app.tgz"), "appspec_application_name": "app"})[1]
    assert not plan.get("failed"), plan
    shown = [w for w in plan["warnings"] if w.startswith(http_server.url("app.tgz") + ": permissions[0]")]
    assert [w.split(": ", 2)[1] for w in shown] == ["permissions[0].object (line 7)", "permissions[0].mode (line 8)"], plan
    assert "'/etc' is not a files destination" in shown[0] and "YAML integer 420" in shown[1]


def test_a_revision_without_an_application_name_is_refused(tmp_path, http_server):
    """Item 6: app-1.1.0.zip and app-1.2.0.zip must not become two applications."""
    make_archive(http_server.root / "app-1.1.0.zip", {"appspec.yml": APPSPEC})
    checked, plan = run_playbook(tmp_path, PLAYBOOK, {"appspec_revision": http_server.url("app-1.1.0.zip")})
    assert not checked.get("failed") and plan["failed"] is True and "set appspec_application_name" in plan["msg"]
    assert http_server.seen == []  # refused before anything was fetched


def test_a_wrong_type_is_one_short_error_naming_the_playbook_variable(tmp_path, http_server):
    """Item 9: appspec_keep_releases=abc reported revision_keep_releases in 110 lines of argument spec."""
    make_archive(http_server.root / "app.tgz", {"appspec.yml": APPSPEC})
    given = {"appspec_revision": http_server.url("app.tgz"), "appspec_application_name": "app"}
    checked, plan = run_playbook(tmp_path, PLAYBOOK, dict(given, appspec_keep_releases="abc"))
    assert not checked.get("failed"), checked
    assert plan["failed"] is True and plan["msg"] == "appspec_keep_releases must be a whole number of 1 or more, not 'abc'"
    # AWX survey answers are text.
    survey = dict(given, appspec_keep_releases="3", appspec_auto_rollback="false", appspec_shared_paths="logs,tmp",
                  appspec_ignore_application_stop_failures="yes", appspec_load_balancer="", appspec_revision_download="host")
    checked, plan, record = run_playbook(tmp_path, PLAYBOOK, survey)[:3]
    assert not checked.get("failed") and not plan.get("failed"), plan
    deployment = record["ansible_facts"]["revision_deployment"]
    assert (deployment["keep_releases"], deployment["auto_rollback"], deployment["shared_paths"]) == (3, False, ["logs", "tmp"])
    assert (deployment["ignore_application_stop_failures"], deployment["load_balancer"]) == (True, {})


def test_source_options_reach_the_fetch(tmp_path, http_server, git_repo, s3):
    """Item 8: HTTP headers, git ref, S3 endpoint, region and version from playbook variables."""
    make_archive(http_server.root / "app.tgz", {"appspec.yml": APPSPEC})
    http_server.require({"X-Token": "secret"})
    base = {"appspec_application_name": "app"}
    record = run_playbook(tmp_path, PLAYBOOK, dict(base, appspec_revision=http_server.url("app.tgz"),
                                                   appspec_http_headers={"X-Token": "secret"}))[2]
    assert record["ansible_facts"]["revision_deployment"]["revision_kind"] == "url"

    record = run_playbook(tmp_path, PLAYBOOK, dict(base, appspec_revision="file://" + git_repo.path, appspec_git_ref="v1"))[2]
    assert record["ansible_facts"]["revision_deployment"]["bundle_env"] == {"BUNDLE_COMMIT": git_repo.first}

    s3.create_bucket(Bucket="plays")
    s3.put_bucket_versioning(Bucket="plays", VersioningConfiguration={"Status": "Enabled"})
    one = make_archive(tmp_path / "one.tar", {"appspec.yml": APPSPEC, "marker": "1"})[0]
    version = s3.put_object(Bucket="plays", Key="app.tar", Body=open(one, "rb").read())["VersionId"]
    s3.put_object(Bucket="plays", Key="app.tar", Body=b"not an archive")
    record = run_playbook(tmp_path, PLAYBOOK, dict(base, appspec_revision="s3://plays/app.tar", appspec_s3_version_id=version,
                                                   appspec_s3_endpoint_url=s3.endpoint, appspec_s3_region="us-east-1"))[2]
    assert record["ansible_facts"]["revision_deployment"]["bundle_env"]["BUNDLE_VERSION"] == version
