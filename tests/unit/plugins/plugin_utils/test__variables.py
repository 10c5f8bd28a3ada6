# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The playbook variable contract: the known names (the table of docs/variables.md), unknown names, typed values."""

from __future__ import annotations

import os
import re

import pytest

from bundle_fixtures import REPO

from ansible_collections.appspec.deploy.plugins.plugin_utils._variables import (
    VARIABLES,
    VariableError,
    check_variables,
    typed_options,
)


def documented_variables():
    """The names of the variable tables of docs/variables.md: the playbook contract (AWX's included) and the pipeline's."""
    with open(os.path.join(REPO, "docs", "variables.md")) as handle:
        text = handle.read()
    tables = [text.split(heading, 1)[1].split("\n#", 1)[0] for heading in ("## The playbook contract", "## Pipeline variables")]
    return [name for table in tables for name in re.findall(r"^\| `((?:appspec|awx)_[a-z0-9_]+)` \|", table, re.M)]


def test_the_known_variables_are_the_documented_table():
    documented = documented_variables()
    assert len(documented) == len(set(documented)), "a variable is documented twice"
    assert set(documented) == set(VARIABLES)


def test_an_unknown_variable_is_a_warning_naming_the_closest_known_one():
    names = {"appspec_revison": "x", "appspec_application_name": "app", "appspec_deployment": {}, "other": 1}
    warnings = check_variables(names, strict=False)
    assert len(warnings) == 1
    assert warnings[0].startswith("appspec_revison is not a variable of appspec.deploy and is ignored; "
                                  "did you mean appspec_revision? ")
    assert check_variables({"appspec_zzzzzz": 1}, strict=False) == [
        "appspec_zzzzzz is not a variable of appspec.deploy and is ignored. docs/variables.md lists the variables "
        "(appspec_strict_variables: true makes this an error)."]
    assert check_variables({"appspec_revision": "x", "appspec_deployment": {}}, strict=True) == []


def test_unknown_variables_are_an_error_in_strict_mode():
    with pytest.raises(VariableError) as err:
        check_variables({"appspec_keep_release": 3, "appspec_revison": "x"}, strict=True)
    message = str(err.value)
    assert "appspec_keep_release (did you mean appspec_keep_releases?)" in message
    assert "appspec_revison (did you mean appspec_revision?)" in message
    assert "appspec_strict_variables" in message


def options(**given):
    return dict(dict.fromkeys((v.option for v in VARIABLES.values() if v.option)), hosts=["localhost"], **given)


def test_survey_strings_are_converted():
    typed = typed_options(options(keep_releases="5", auto_rollback="false", ignore_application_stop_failures="yes",
                                  strict_variables="True", shared_paths="logs, tmp/cache", load_balancer='{"type": "haproxy"}',
                                  headers="Authorization=Bearer", revision_download="Host",
                                  file_exists_behavior="overwrite", deployment_group_id=42))
    assert (typed["keep_releases"], typed["auto_rollback"], typed["ignore_application_stop_failures"]) == (5, False, True)
    assert typed["strict_variables"] is True and typed["shared_paths"] == ["logs", "tmp/cache"]
    assert typed["load_balancer"] == {"type": "haproxy"} and typed["headers"] == {"Authorization": "Bearer"}
    assert (typed["revision_download"], typed["file_exists_behavior"]) == ("host", "OVERWRITE")
    assert typed["deployment_group_id"] == "42" and typed["hosts"] == ["localhost"]  # other options are left alone


def test_empty_values_mean_the_default():
    typed = typed_options(options(keep_releases="", auto_rollback="", load_balancer="", deployment_group_name="",
                                  s3_region=""))
    assert (typed["keep_releases"], typed["auto_rollback"], typed["load_balancer"]) == (5, True, {})
    assert (typed["deployment_group_name"], typed["s3_region"], typed["revision_download"]) == ("default", None, "controller")
    assert typed["deployment_config"] == "CodeDeployDefault.OneAtATime" and typed["shared_paths"] == []


@pytest.mark.parametrize("option, value, message", [
    ("keep_releases", "abc", "appspec_keep_releases must be a whole number of 1 or more, not 'abc'"),
    ("keep_releases", 0, "appspec_keep_releases must be a whole number of 1 or more, not 0"),
    ("keep_releases", True, "appspec_keep_releases must be a whole number of 1 or more, not True"),
    ("auto_rollback", "maybe", "appspec_auto_rollback must be true or false, not 'maybe'"),
    ("shared_paths", {"a": 1}, "appspec_shared_paths must be a list of paths (or one comma-separated string), not {'a': 1}"),
    ("shared_paths", [["a"]], "appspec_shared_paths must be a list of paths (or one comma-separated string), not [['a']]"),
    ("load_balancer", "haproxy", "appspec_load_balancer must be a mapping (YAML, or JSON text), not 'haproxy'"),
    ("revision_download", "hosts", "appspec_revision_download must be one of controller, host, not 'hosts'"),
    ("file_exists_behavior", "KEEP", "appspec_file_exists_behavior must be one of DISALLOW, OVERWRITE, RETAIN, not 'KEEP'"),
    ("git_ref", ["main"], "appspec_git_ref must be a string, not ['main']"),
])
def test_a_wrong_value_is_one_short_error_naming_the_playbook_variable(option, value, message):
    with pytest.raises(VariableError) as err:
        typed_options(options(**{option: value}))
    assert str(err.value) == message
