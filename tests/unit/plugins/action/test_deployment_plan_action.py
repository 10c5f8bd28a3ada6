# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""appspec_revision_download through roles/revision and the deployment_plan action plugin (ansible-playbook)."""

from __future__ import annotations

from bundle_fixtures import http_server, make_archive, run_playbook  # noqa: F401 pylint: disable=unused-import

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
    checked, plan, record = run_playbook(tmp_path, PLAYBOOK, {"appspec_revision": url, "appspec_revision_download": "host"})[:3]
    assert not checked.get("failed") and not plan.get("failed"), (checked, plan)  # the role's argument_specs too
    deployment = record["ansible_facts"]["revision_deployment"]
    assert (deployment["download_url"], deployment["sha256"], deployment["revision_kind"]) == (url, sha, "url")
    assert len(http_server.seen) == 1  # the controller fetched and validated it first

    default = run_playbook(tmp_path, PLAYBOOK, {"appspec_revision": url})[2]
    assert default["ansible_facts"]["revision_deployment"]["download_url"] is None


def test_a_controller_path_is_refused_before_anything_is_fetched(tmp_path):
    checked, plan = run_playbook(tmp_path, PLAYBOOK, {"appspec_revision": str(tmp_path / "missing.tgz"),
                                                      "appspec_revision_download": "host"})
    assert not checked.get("failed") and plan["failed"] is True
    assert "appspec_revision_download=host" in plan["msg"] and "not a local revision" in plan["msg"]
