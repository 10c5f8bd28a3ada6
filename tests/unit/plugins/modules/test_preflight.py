# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""preflight's main(), driven through patch_module_args with real files and users."""

from __future__ import annotations

import json
import os

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.appspec.deploy.plugins.module_utils._lock import HostLock
from ansible_collections.appspec.deploy.plugins.modules import preflight

GROUP_ID = "35e3f43d-889e-59f9-b07d-8dc2ab5d9272"
APPSPEC = {"appspec": {"version": 0.0, "os": "linux", "hooks": {"ApplicationStart": [
    {"location": "scripts/start.sh", "timeout": 60, "runas": "nobody", "sudo": False}]}}, "compute_platform": "server"}


def run(capsys, args):
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            preflight.main()
    return json.loads(capsys.readouterr().out)


def test_a_good_host_passes_in_check_mode_and_not(capsys, tmp_path):
    root = str(tmp_path / "root")
    for check in (True, False):
        result = run(capsys, {"root_dir": root, "deployment_group_id": GROUP_ID, "appspec": APPSPEC, "_ansible_check_mode": check})
        assert not result.get("failed") and result["changed"] is False and result["problems"] == []
    assert not os.path.exists(root)


def test_problems_fail_the_host_with_every_one_listed(capsys, tmp_path):
    bad = json.loads(json.dumps(APPSPEC).replace("nobody", "no-such-user"))
    HostLock(str(tmp_path), GROUP_ID).acquire("d-AAAAAAAAA", ttl=600)
    # From a deployment plan, as the action plugin sends it.
    result = run(capsys, {"deployment": {"root_dir": str(tmp_path), "deployment_group_id": GROUP_ID, "appspec": bad,
                                         "release_root": ""}, "_ansible_check_mode": True})
    assert result["failed"] and result["changed"] is False
    assert result["msg"].startswith("preflight found 2 problems on this host: (1) user no-such-user does not exist")
    assert "(2) the deployment lock" in result["msg"] and len(result["problems"]) == 2


def test_without_a_root_dir(capsys):
    result = run(capsys, {"deployment": {"appspec": APPSPEC}})
    assert result["failed"] and "needs root_dir and deployment_group_id" in result["msg"]
