# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""appspec_info parses on the controller: ansible-playbook on localhost, files read through the connection."""

from __future__ import annotations

import os
import typing as t

import pytest

from bundle_fixtures import REPO, run_playbook

PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  vars:
    lambda_appspec: |
      version: 0.0
      Resources:
        - fn:
            Type: AWS::Lambda::Function
            Properties:
              Name: fn
              Alias: live
              CurrentVersion: 1
              TargetVersion: 2
    timeouts: "version: 0.0\\nos: linux\\nhooks:\\n  AfterDeploy:\\n    - location: a.sh\\n      timeout: 5000\\n"
  tasks:
    - name: The example revision (a directory on the host)
      appspec.deploy.appspec_info: {path: "{{ repo }}/examples/webapp"}
    - name: Content with a warning
      appspec.deploy.appspec_info:
        content: "version: 0.0\\nos: linux\\npermissions:\\n  - object: /srv\\n    mode: 0640\\nfiles:\\n  - {source: /, destination: /srv}\\n"
    - name: Every error at once, in a custom file name
      appspec.deploy.appspec_info: {path: "{{ dir }}", appspec_filename: spec.yml}
      ignore_errors: true
    - name: Strict mode
      appspec.deploy.appspec_info: {content: "{{ timeouts }}", strict: true, max_event_timeout: 6000}
      ignore_errors: true
    - name: Default max_event_timeout
      appspec.deploy.appspec_info: {content: "{{ timeouts }}"}
      ignore_errors: true
    - name: Lambda
      appspec.deploy.appspec_info: {content: "{{ lambda_appspec }}"}
    - name: Path and content
      appspec.deploy.appspec_info: {path: /nonexistent, content: x}
      ignore_errors: true
    - name: Neither
      appspec.deploy.appspec_info: {}
      ignore_errors: true
    - name: No AppSpec in the directory
      appspec.deploy.appspec_info: {path: "{{ empty }}"}
      ignore_errors: true
    - name: A file, not a directory
      appspec.deploy.appspec_info: {path: "{{ dir }}/spec.yml"}
      ignore_errors: true
    - name: An unknown option
      appspec.deploy.appspec_info: {content: x, bogus: 1}
      ignore_errors: true
"""


@pytest.fixture(scope="module")
def results(tmp_path_factory: t.Any) -> t.List[t.Dict[str, t.Any]]:
    tmp_path = tmp_path_factory.mktemp("appspec_info")
    (tmp_path / "rev").mkdir()
    (tmp_path / "rev" / "spec.yml").write_text(
        "version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - location: a.sh\n      timeout: 30s\n    -\n")
    (tmp_path / "empty").mkdir()
    return run_playbook(tmp_path, PLAYBOOK, {"repo": REPO, "dir": str(tmp_path / "rev"), "empty": str(tmp_path / "empty")})


def test_example_revision(results: t.Any) -> None:
    result = results[0]
    assert not result.get("failed") and result["changed"] is False
    assert result["compute_platform"] == "server" and result["deployable"] is True
    assert result["source"] == os.path.join(REPO, "examples", "webapp", "appspec.yml")
    assert result["appspec"]["hooks"]["ApplicationStart"][1]["location"] == "scripts/start_server.sh"
    assert result["appspec"]["permissions"][0]["mode"] == "0755"
    assert not result.get("warnings")


def test_content_with_warnings(results: t.Any) -> None:
    result = results[1]
    assert result["appspec"]["permissions"][0]["mode"] == "0640"
    assert result["source"] == "<content>"
    assert len(result["warnings"]) == 1
    assert result["warnings"][0].startswith("permissions[0].mode (line 5): unquoted 0640 is the YAML integer 416")


def test_failure_returns_every_error(results: t.Any) -> None:
    result = results[2]
    assert result["failed"] is True
    spec = result["msg"].split(":", 1)[0]
    assert spec.endswith("/rev/spec.yml")  # the file on the host
    assert result["msg"].startswith("%s: 2 errors: line 6 col 16 hooks.AfterInstall[0].timeout" % spec)
    assert [(e["path"], e["line"], e["column"]) for e in result["errors"]] == [
        ("hooks.AfterInstall[0].timeout", 6, 16), ("hooks.AfterInstall[1]", 7, 6)]


def test_strict_and_max_event_timeout(results: t.Any) -> None:
    strict, default = results[3], results[4]
    assert strict["failed"] is True
    assert [e["path"] for e in strict["errors"]] == ["hooks.AfterDeploy"]
    assert "strict mode" in strict["errors"][0]["message"]
    assert default["failed"] is True and "more than the 3600 s" in default["msg"]


def test_lambda_is_not_deployable(results: t.Any) -> None:
    result = results[5]
    assert result["compute_platform"] == "lambda" and result["deployable"] is False
    assert "AWS Lambda" in result["not_deployable_reason"]


def test_path_and_content_are_exclusive_and_one_is_required(results: t.Any) -> None:
    both, neither = results[6], results[7]
    assert both["failed"] is True and "exactly one of path and content" in both["msg"]
    assert neither["failed"] is True and "exactly one of path and content" in neither["msg"]


def test_missing_revision(results: t.Any) -> None:
    result = results[8]
    assert result["failed"] is True and "no AppSpec file in" in result["msg"]
    assert "looked for appspec.yml, appspec.yaml" in result["msg"]


def test_a_file_path_is_read_whatever_its_name(results: t.Any) -> None:
    result, in_directory = results[9], results[2]
    assert result["failed"] is True and result["msg"] == in_directory["msg"]  # the same file, read directly
    assert result["errors"] == in_directory["errors"]


def test_unknown_options_are_refused(results: t.Any) -> None:
    result = results[10]
    assert result["failed"] is True and "Unsupported parameters for appspec_info: bogus" in result["msg"]
