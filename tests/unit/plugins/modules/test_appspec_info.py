# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""appspec_info's main(), driven through patch_module_args with real files."""

from __future__ import annotations

import json
import os
import typing as t

import pytest
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args

from ansible_collections.appspec.deploy.plugins.modules import appspec_info

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))


def run(capsys: t.Any, args: t.Dict[str, t.Any]) -> t.Dict[str, t.Any]:
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            appspec_info.main()
    return json.loads(capsys.readouterr().out)


def test_example_revision(capsys: t.Any, monkeypatch: t.Any) -> None:
    warned = []  # type: t.List[str]
    monkeypatch.setattr(AnsibleModule, "warn", lambda self, warning: warned.append(warning))
    result = run(capsys, {"path": os.path.join(REPO, "examples", "webapp")})
    assert not result.get("failed") and result["changed"] is False
    assert result["compute_platform"] == "server" and result["deployable"] is True
    assert result["source"].endswith("examples/webapp/appspec.yml")
    assert result["appspec"]["hooks"]["ApplicationStart"][1]["location"] == "scripts/start_server.sh"
    assert result["appspec"]["permissions"][0]["mode"] == "0755"
    assert warned == []


def test_content_with_warnings(capsys: t.Any, monkeypatch: t.Any) -> None:
    # Record module.warn calls: where ansible-core sends them depends on process-wide state
    # (once controller code is imported by another test, warnings go to Display, not the result).
    warned = []  # type: t.List[str]
    monkeypatch.setattr(AnsibleModule, "warn", lambda self, warning: warned.append(warning))
    result = run(capsys, {"content": "version: 0.0\nos: linux\npermissions:\n  - object: /srv\n    mode: 0640\n"})
    assert result["appspec"]["permissions"][0]["mode"] == "0640"
    assert result["source"] == "<content>"
    assert len(warned) == 1 and warned[0].startswith("permissions[0].mode (line 5): unquoted 0640 is the YAML integer 416")


def test_failure_returns_every_error(capsys: t.Any, tmp_path: t.Any) -> None:
    (tmp_path / "spec.yml").write_text(
        "version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - location: a.sh\n      timeout: 30s\n    -\n")
    result = run(capsys, {"path": str(tmp_path), "appspec_filename": "spec.yml"})
    assert result["failed"] is True
    assert result["msg"].startswith("%s: 2 errors: line 6 col 16 hooks.AfterInstall[0].timeout" % (tmp_path / "spec.yml"))
    assert [(e["path"], e["line"], e["column"]) for e in result["errors"]] == [
        ("hooks.AfterInstall[0].timeout", 6, 16), ("hooks.AfterInstall[1]", 7, 6)]


def test_strict_and_max_event_timeout(capsys: t.Any) -> None:
    content = "version: 0.0\nos: linux\nhooks:\n  AfterDeploy:\n    - location: a.sh\n      timeout: 5000\n"
    result = run(capsys, {"content": content, "strict": True, "max_event_timeout": 6000})
    assert result["failed"] is True
    assert [e["path"] for e in result["errors"]] == ["hooks.AfterDeploy"]
    assert "strict mode" in result["errors"][0]["message"]
    result = run(capsys, {"content": content})
    assert "more than the 3600 s" in result["msg"]


def test_lambda_is_not_deployable(capsys: t.Any) -> None:
    content = ("version: 0.0\nResources:\n  - fn:\n      Type: AWS::Lambda::Function\n      Properties:\n"
               "        Name: fn\n        Alias: live\n        CurrentVersion: 1\n        TargetVersion: 2\n")
    result = run(capsys, {"content": content})
    assert result["compute_platform"] == "lambda" and result["deployable"] is False
    assert "AWS Lambda" in result["not_deployable_reason"]


def test_path_and_content_are_exclusive(capsys: t.Any) -> None:
    result = run(capsys, {"path": "/nonexistent", "content": "x"})
    assert result["failed"] is True and "mutually exclusive" in result["msg"]
    result = run(capsys, {})
    assert result["failed"] is True and "one of the following is required" in result["msg"]


def test_missing_revision(capsys: t.Any, tmp_path: t.Any) -> None:
    result = run(capsys, {"path": str(tmp_path)})
    assert result["failed"] is True and "no AppSpec file in" in result["msg"]
