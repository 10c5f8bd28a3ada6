# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The normalized AppSpec as hosts keep it: as_dict/from_dict and appspec.json, standard library only."""

from __future__ import annotations

import json
import os

import pytest

from bundle_fixtures import lambda_appspec, server_appspec

from ansible_collections.appspec.deploy.plugins.module_utils._errors import DeployError
from ansible_collections.appspec.deploy.plugins.module_utils._spec import (
    APPSPEC_JSON,
    ParsedAppSpec,
    deployment_dir_of,
    read_appspec_json,
    require_appspec_json,
    write_appspec_json,
)

FULL = server_appspec(
    hooks={"ApplicationStop": ["stop.sh"], "AfterInstall": [{"location": "a.sh", "timeout": 30, "runas": "app", "sudo": True}]},
    files=[{"source": "app", "destination": "/srv/app"}],
    permissions=[{"object": "/srv/app", "pattern": "**", "except": [], "owner": "app", "group": None, "mode": "0755",
                  "acls": [], "context": None, "type": ["file"]}],
    file_exists_behavior="OVERWRITE", source="/srv/rev/appspec.yml")


@pytest.mark.parametrize("parsed", [FULL, server_appspec(), lambda_appspec()], ids=["server", "minimal", "lambda"])
def test_as_dict_from_dict_round_trip_through_json(parsed):
    data = json.loads(json.dumps(parsed.as_dict()))  # what goes over the wire to a host
    again = ParsedAppSpec.from_dict(data)
    assert again.as_dict() == parsed.as_dict()
    assert (again.appspec, again.compute_platform, again.source) == (parsed.appspec, parsed.compute_platform, parsed.source)
    assert (again.deployable, again.not_deployable_reason) == (parsed.deployable, parsed.not_deployable_reason)
    assert again.hooks_for("AfterInstall") == parsed.hooks_for("AfterInstall")


def test_warnings_stay_on_the_controller():
    parsed = server_appspec()
    parsed.warnings.append("hooks.Foo: unknown lifecycle event")
    assert "warnings" not in parsed.as_dict()
    assert ParsedAppSpec.from_dict(parsed.as_dict()).warnings == []


@pytest.mark.parametrize(
    "data, deployable",
    [
        ({"appspec": {}, "compute_platform": "server"}, True),
        ({"appspec": {}, "compute_platform": "ecs"}, False),
        ({"appspec": {}, "compute_platform": "lambda", "deployable": False}, False),
    ],
)
def test_from_dict_defaults(data, deployable):
    parsed = ParsedAppSpec.from_dict(data)
    assert parsed.deployable is deployable and parsed.source == "<content>" and parsed.not_deployable_reason is None


@pytest.mark.parametrize(
    "data",
    [
        {"appspec": {}, "compute_platform": "lambda", "deployable": True},
        {"appspec": {}, "compute_platform": "ecs", "deployable": "yes"},
        {"appspec": {}, "compute_platform": "server", "deployable": False},
        {"appspec": {}, "compute_platform": "server", "deployable": None},
    ],
)
def test_from_dict_refuses_a_deployable_flag_the_platform_contradicts(data):
    """Only a server AppSpec deploys to hosts, as the parser decides: a dict cannot say otherwise."""
    with pytest.raises(DeployError, match="only a server AppSpec deploys to hosts"):
        ParsedAppSpec.from_dict(data, "appspec")


@pytest.mark.parametrize(
    "junk",
    [
        None,
        "version: 0.0\nos: linux\n",  # YAML text: the controller parses it, hosts never do
        [],
        {},
        {"appspec": {"version": "0.0"}},  # no compute_platform
        {"appspec": "version: 0.0", "compute_platform": "server"},
        {"appspec": None, "compute_platform": "server"},
        {"appspec": {}, "compute_platform": "windows"},
        {"appspec": {}, "compute_platform": None},
        {"version": "0.0", "os": "linux", "hooks": {}},  # a raw AppSpec, not the normalized result
    ],
)
def test_from_dict_refuses_junk(junk):
    with pytest.raises(DeployError, match="previous_appspec is not a normalized AppSpec"):
        ParsedAppSpec.from_dict(junk, "previous_appspec")


def test_hooks_for():
    assert FULL.hooks_for("AfterInstall") == [{"location": "a.sh", "timeout": 30, "runas": "app", "sudo": True}]
    assert FULL.hooks_for("ValidateService") == []
    FULL.hooks_for("ApplicationStop")[0]["location"] = "changed"  # a copy: the AppSpec is not touched
    assert FULL.hooks_for("ApplicationStop")[0]["location"] == "stop.sh"
    ecs = ParsedAppSpec({"hooks": {"AfterInstall": "LambdaFunctionToValidateAfterInstall"}}, "ecs", deployable=False)
    assert ecs.hooks_for("AfterInstall") == [{"function_name": "LambdaFunctionToValidateAfterInstall"}]


def test_write_and_read_appspec_json(tmp_path):
    deployment_dir = tmp_path / "g" / "d-1"
    deployment_dir.mkdir(parents=True)
    assert read_appspec_json(str(deployment_dir)) is None  # e.g. a revision the CodeDeploy agent deployed
    write_appspec_json(str(deployment_dir), FULL)
    assert os.listdir(str(deployment_dir)) == [APPSPEC_JSON]  # atomic: no temp file left beside it
    assert json.loads((deployment_dir / APPSPEC_JSON).read_text()) == FULL.as_dict()
    assert read_appspec_json(str(deployment_dir)).as_dict() == FULL.as_dict()
    assert require_appspec_json(str(deployment_dir)).as_dict() == FULL.as_dict()
    write_appspec_json(str(deployment_dir), server_appspec())  # replaced as a whole
    assert read_appspec_json(str(deployment_dir)).appspec["hooks"] == {}


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "is not valid JSON"),
        ('{"appspec": {}, "compute_platform": "windows"}', "is not a normalized AppSpec"),
        ("[]", "is not a normalized AppSpec"),
    ],
)
def test_a_broken_appspec_json_is_a_clear_error(tmp_path, content, message):
    (tmp_path / APPSPEC_JSON).write_text(content)
    with pytest.raises(DeployError, match=message) as err:
        read_appspec_json(str(tmp_path))
    assert str(tmp_path / APPSPEC_JSON) in str(err.value)


def test_require_appspec_json_explains_what_is_missing(tmp_path):
    with pytest.raises(DeployError, match="has no normalized AppSpec .*not staged by the bundle step"):
        require_appspec_json(str(tmp_path))


@pytest.mark.parametrize(
    "archive_dir, expected",
    [
        ("/root/g/d-1/deployment-archive", "/root/g/d-1"),
        ("/root/g/d-1/deployment-archive/", "/root/g/d-1"),
        ("/root/g/d-1/deployment-archive/./", "/root/g/d-1"),
    ],
)
def test_deployment_dir_of(archive_dir, expected):
    assert deployment_dir_of(archive_dir) == expected
