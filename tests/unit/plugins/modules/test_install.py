# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""install's main(): check mode, real run, again (no change), failure with all errors."""

from __future__ import annotations

import json
import os
import typing as t

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.appspec.deploy.plugins.module_utils._layout import DeploymentRoot, deployment_group_id
from ansible_collections.appspec.deploy.plugins.modules import install


def run(capsys: t.Any, args: t.Dict[str, t.Any], check: bool = False, diff: bool = False) -> t.Dict[str, t.Any]:
    args = dict(args, _ansible_check_mode=check, _ansible_diff=diff)
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            install.main()
    return json.loads(capsys.readouterr().out)


def staged(tmp_path: t.Any, dest: str, extra: str = "") -> t.Tuple[str, str]:
    root = DeploymentRoot(str(tmp_path / "root"))
    gid = deployment_group_id("web", "prod")
    archive = root.archive_dir(gid, "d-AAAAAAAAA")
    os.makedirs(os.path.join(archive, "app"))
    with open(os.path.join(archive, "app", "index.html"), "w") as handle:
        handle.write("hello")
    with open(os.path.join(archive, "appspec.yml"), "w") as handle:
        handle.write("version: 0.0\nos: linux\nfiles:\n  - source: app\n    destination: %s\n%s" % (dest, extra))
    return root.root_dir, gid


def test_check_real_check_real(capsys: t.Any, tmp_path: t.Any) -> None:
    dest = str(tmp_path / "www")
    root_dir, gid = staged(tmp_path, dest, "permissions:\n  - object: %s\n    mode: '0600'\n" % dest)
    args = {"deployment_id": "d-AAAAAAAAA", "application_name": "web", "deployment_group_name": "prod", "root_dir": root_dir}
    first = run(capsys, args, check=True, diff=True)
    assert first["changed"] and first["plan"]["create"] == [dest + "/index.html"] and not os.path.exists(dest)
    assert dest + "/index.html" in first["diff"]["after"]
    real = run(capsys, args, diff=True)
    assert real["changed"] and open(dest + "/index.html").read() == "hello"
    assert oct(os.stat(dest + "/index.html").st_mode & 0o777) == "0o600"
    assert real["deployment_group_id"] == gid
    record = DeploymentRoot(root_dir).read_record(gid, "last_successful_install")
    assert record == DeploymentRoot(root_dir).deployment_dir(gid, "d-AAAAAAAAA")
    again_check = run(capsys, args, check=True)
    assert again_check["changed"] is False
    again = run(capsys, args)
    assert again["changed"] is False and again["plan"]["unchanged"] == 2


def test_failure_lists_every_conflict(capsys: t.Any, tmp_path: t.Any) -> None:
    dest = str(tmp_path / "www")
    root_dir, gid = staged(tmp_path, dest, "permissions:\n  - object: %s\n    owner: nobody-xyz-q\n" % dest)
    os.makedirs(dest)
    with open(dest + "/index.html", "w") as handle:
        handle.write("foreign")
    result = run(capsys, {"deployment_id": "d-AAAAAAAAA", "deployment_group_id": gid, "root_dir": root_dir})
    assert result["failed"] and len(result["errors"]) == 2
    assert "nothing was changed" in result["msg"]
    ok = run(capsys, {"deployment_id": "d-AAAAAAAAA", "deployment_group_id": gid, "root_dir": root_dir, "file_exists_behavior": "RETAIN"})
    assert ok["failed"], "the unknown owner still fails"


def test_missing_archive(capsys: t.Any, tmp_path: t.Any) -> None:
    result = run(capsys, {"archive_dir": str(tmp_path / "nope"), "deployment_group_id": "g1", "root_dir": str(tmp_path)})
    assert result["failed"] and "does not exist" in result["msg"]
