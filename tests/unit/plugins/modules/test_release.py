# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""release's main(): create+switch, check mode, mark, rollback, prune, absent, lock/unlock."""

from __future__ import annotations

import json
import os
import typing as t

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.appspec.deploy.plugins.modules import release


def run(capsys: t.Any, args: t.Dict[str, t.Any], check: bool = False) -> t.Dict[str, t.Any]:
    with patch_module_args(dict(args, _ansible_check_mode=check, _ansible_diff=True)):
        with pytest.raises(SystemExit):
            release.main()
    return json.loads(capsys.readouterr().out)


def rev(tmp_path: t.Any, name: str, version: str) -> str:
    path = tmp_path / name
    path.mkdir()
    (path / "VERSION").write_text(version)
    return str(path)


def test_release_lifecycle(capsys: t.Any, tmp_path: t.Any) -> None:
    root = str(tmp_path / "app")
    base = {"release_root": root, "state": "current", "shared_paths": ["log"]}
    args = dict(base, deployment_id="d-1", archive_dir=rev(tmp_path, "r1", "v1"))
    check = run(capsys, args, check=True)
    assert check["changed"] and check["current"] == "d-1" and not os.path.exists(root)
    real = run(capsys, args)
    assert real["changed"] and real["current"] == "d-1" and real["previous"] is None
    assert real["diff"] == {"before": {"current": None}, "after": {"current": "d-1", "removed": []}}
    assert run(capsys, args)["changed"] is False
    assert run(capsys, args, check=True)["changed"] is False
    assert run(capsys, {"release_root": root, "deployment_id": "d-1", "status": "good"})["changed"]
    second = run(capsys, dict(base, deployment_id="d-2", archive_dir=rev(tmp_path, "r2", "v2"), keep_releases=5))
    assert second["current"] == "d-2" and second["previous"] == "d-1" and second["previous_release_dir"].endswith("releases/d-1")
    assert [r["id"] for r in second["releases"]] == ["d-1", "d-2"]
    back = run(capsys, {"release_root": root, "state": "rolled_back"})
    assert back["changed"] and back["current"] == "d-1" and back["target"] == "d-1"
    assert open(os.path.join(root, "current", "VERSION")).read() == "v1"
    # Rolling back *from* d-2 again: current is no longer d-2, so nothing changes (idempotent).
    again = run(capsys, {"release_root": root, "state": "rolled_back", "deployment_id": "d-2", "status": "bad"})
    assert again["changed"] is True and again["target"] == "d-1" and again["current"] == "d-1"
    assert run(capsys, {"release_root": root, "state": "rolled_back", "deployment_id": "d-2", "status": "bad"})["changed"] is False
    refused = run(capsys, {"release_root": root, "state": "absent", "deployment_id": "d-1"})
    assert refused["failed"] and "is current" in refused["msg"]
    gone = run(capsys, {"release_root": root, "state": "absent", "deployment_id": "d-2"})
    assert gone["changed"] and gone["removed"] == ["d-2"] and not os.path.exists(os.path.join(root, "releases", "d-2"))


def test_prune_and_present(capsys: t.Any, tmp_path: t.Any) -> None:
    root = str(tmp_path / "app")
    for i in range(4):
        run(
            capsys,
            {"release_root": root, "state": "current", "deployment_id": "d-%d" % i, "archive_dir": rev(tmp_path, "r%d" % i, "v%d" % i), "status": "good"},
        )
    made = run(capsys, {"release_root": root, "deployment_id": "d-9", "archive_dir": rev(tmp_path, "r9", "v9")})
    assert made["changed"] and made["current"] == "d-3" and made["copied"] == 1
    pruned = run(capsys, {"release_root": root, "state": "pruned", "keep_releases": 2})
    assert pruned["changed"] and sorted(pruned["removed"]) == ["d-0", "d-1"]
    assert sorted(os.listdir(os.path.join(root, "releases"))) == ["d-2", "d-3", "d-9"]
    missing = run(capsys, {"release_root": root, "state": "pruned"})
    assert missing["failed"] and "keep_releases" in missing["msg"]


def test_lock_unlock(capsys: t.Any, tmp_path: t.Any) -> None:
    base = {"root_dir": str(tmp_path), "application_name": "web", "deployment_group_name": "prod"}
    got = run(capsys, dict(base, state="locked", deployment_id="d-1", lock_owner="ci"))
    assert got["changed"] and got["lock"]["deployment_id"] == "d-1"
    other = run(capsys, dict(base, state="locked", deployment_id="d-2"))
    assert other["failed"] and "d-1" in other["msg"] and "ci" in other["msg"]
    wrong = run(capsys, dict(base, state="unlocked", deployment_id="d-2"))
    assert wrong["failed"]
    assert run(capsys, dict(base, state="unlocked", deployment_id="d-1"))["changed"]
    assert run(capsys, dict(base, state="unlocked", deployment_id="d-1"))["changed"] is False
    run(capsys, dict(base, state="locked", deployment_id="d-3"))
    forced = run(capsys, dict(base, state="unlocked", force=True))
    assert forced["changed"] and forced["lock"]["deployment_id"] == "d-3"
