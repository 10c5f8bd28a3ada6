# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""appspec.deploy.package and appspec.deploy.deployment_history through ansible-playbook: check mode predicts
the real run (check, real, check again, real again, with diff)."""

from __future__ import annotations

import json
import os

from bundle_fixtures import run_playbook, write_files

SHA = "ab" * 32


def four_times(tmp_path, task, extra_vars=None):
    """The task in check mode, for real, in check mode again, for real again (diff on)."""
    playbook = "- hosts: localhost\n  gather_facts: false\n  tasks:\n" + "".join(
        "    - %s\n      check_mode: %s\n      diff: true\n" % (task.replace("\n", "\n      "), check)
        for check in ("true", "false", "true", "false"))
    return run_playbook(tmp_path, playbook, extra_vars)


def test_package_check_mode_predicts_the_real_run(tmp_path):
    src = write_files(str(tmp_path / "rev"), {"appspec.yml": "version: 0.0\nos: linux\n", "index.html": "hi\n"})
    dest = tmp_path / "dist" / "rev.zip"
    task = "appspec.deploy.package:\n  src: %s\n  dest: %s" % (src, dest)
    check, real, check_again, real_again = four_times(tmp_path, task)
    assert check["changed"] and real["changed"] and not check_again["changed"] and not real_again["changed"]
    assert check["sha256"] == real["sha256"] == real_again["sha256"]
    assert check["diff"]["before"]["sha256"] is None and check["diff"]["after"]["sha256"] == real["sha256"]
    assert check_again["diff"]["before"] == check_again["diff"]["after"]
    assert sorted(os.listdir(str(tmp_path / "dist"))) == ["rev.zip", "rev.zip.sha256"]
    assert real["deploy_vars"] == {"appspec_revision": str(dest), "appspec_revision_sha256": real["sha256"]}


def test_block_check_mode_predicts_the_real_run(tmp_path):
    history = tmp_path / "history"
    task = ("appspec.deploy.deployment_history:\n  operation: block\n  history: %s\n  application: shop\n"
            "  sha256: %s\n  reason: broken" % (history, SHA))
    check, real, check_again, real_again = four_times(tmp_path, task)
    assert check["changed"] and real["changed"] and not check_again["changed"] and not real_again["changed"]
    assert check["diff"]["before"] == {} and check["diff"]["after"]["reason"] == "broken"
    block = json.loads((history / "shop" / "blocks" / (SHA + ".json")).read_text())
    assert (block["blocked"], block["reason"]) == (True, "broken")
    unblock = task.replace("operation: block", "operation: unblock")
    check, real, check_again, real_again = four_times(tmp_path, unblock)
    assert check["changed"] and real["changed"] and not check_again["changed"] and not real_again["changed"]
    assert json.loads((history / "shop" / "blocks" / (SHA + ".json")).read_text())["blocked"] is False


def test_record_in_check_mode_writes_nothing_and_a_broken_history_is_a_warning(tmp_path):
    deployment = {"deployment_id": "d-ABCDEFGHI", "application_name": "shop", "deployment_group_name": "staging",
                  "hosts": ["localhost"], "sha256": SHA, "revision": "/x.zip"}
    task = ("appspec.deploy.deployment_history:\n  operation: record\n  history: %s\n  deployment: \"{{ dep }}\"")
    check, real = four_times(tmp_path, task % (tmp_path / "history"), {"dep": deployment})[:2]
    assert check["changed"] and "would record" in check["msg"] and check["record"]["status"] == "failed"  # no outcome
    assert real["recorded"] is True and real["record"]["hosts"] == {"localhost": {"status": "not_deployed", "running": False}}
    assert len(os.listdir(str(tmp_path / "history" / "shop" / "deployments"))) == 2  # the two real runs, not the checks
    (tmp_path / "file").write_text("")
    broken = four_times(tmp_path, task % (tmp_path / "file" / "history"), {"dep": deployment})[1]
    assert not broken.get("failed") and broken["recorded"] is False
    assert "NOT recorded" in broken["warnings"][0]
