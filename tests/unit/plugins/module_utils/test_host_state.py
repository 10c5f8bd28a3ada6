# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""GroupState: the records, the history and the rollback target of one deployment group, on real files."""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.appspec.deploy.plugins.module_utils._errors import DeployError
from ansible_collections.appspec.deploy.plugins.module_utils._host_state import GroupState
from ansible_collections.appspec.deploy.plugins.module_utils._releases import ReleaseRoot

GID = "group-1"


def kept(state: GroupState, *deployment_ids: str) -> None:
    for deployment_id in deployment_ids:
        os.makedirs(state.archive_dir(deployment_id))


@pytest.fixture
def state(tmp_path):
    return GroupState(str(tmp_path / "root"), GID)


def test_rollback_target_is_the_newest_good_deployment_other_than_the_one_left(state):
    kept(state, "d-1", "d-2", "d-3")
    assert state.rollback_target() is None
    for deployment_id, good in (("d-1", True), ("d-2", True), ("d-3", False)):
        state.record_installed(state.deployment_dir(deployment_id))
        state.record_outcome(deployment_id, good)
    assert state.installed() == "d-3"
    assert state.rollback_target() == "d-2"
    assert state.rollback_target(rollback_from="d-2") == "d-1"
    assert state.last_good_dir() == state.deployment_dir("d-2")
    state.record_outcome("d-2", False)  # an id's newest outcome decides
    assert state.rollback_target() == "d-1"
    os.rmdir(state.archive_dir("d-1"))  # its revision is gone: it cannot be gone back to
    assert state.rollback_target() is None


def test_an_explicit_target_must_be_kept(state):
    kept(state, "d-1")
    assert state.rollback_target(explicit="d-1") == "d-1"
    with pytest.raises(DeployError, match="cannot roll back to deployment d-9: its revision is no longer kept"):
        state.rollback_target(explicit="d-9")
    with pytest.raises(DeployError, match="may only hold"):
        state.rollback_target(explicit="../d-1")


def test_a_group_deployed_by_the_agent_starts_its_history_from_the_records(state):
    """The agent's last_successful_install is the rollback target once our Install has replaced it."""
    kept(state, "d-AGENT", "d-OURS")
    state.root.write_record(GID, "last_successful_install", state.deployment_dir("d-AGENT"))  # the agent wrote it
    assert state.history() == [{"deployment_id": "d-AGENT", "status": "good", "at": 0}]
    state.adopt_records()  # before our Install
    state.record_installed(state.deployment_dir("d-OURS"))
    state.record_outcome("d-OURS", False)
    assert [(e["deployment_id"], e["status"]) for e in state.history()] == [("d-AGENT", "good"), ("d-OURS", "bad")]
    assert state.rollback_target() == "d-AGENT"


def test_release_mode_needs_a_finished_release_and_reads_old_release_marks(tmp_path):
    release_root = str(tmp_path / "srv")
    state = GroupState(str(tmp_path / "root"), GID, release_root)
    releases = ReleaseRoot(release_root)
    for deployment_id in ("d-1", "d-2"):
        kept(state, deployment_id)
        with open(os.path.join(state.archive_dir(deployment_id), "VERSION"), "w") as handle:
            handle.write(deployment_id)
        releases.create_release(deployment_id, state.archive_dir(deployment_id))
        releases.switch(deployment_id)
        releases.mark(deployment_id, "good")
    # No history file: the release log's marks (a host deployed by an older version) are the history.
    assert [e["deployment_id"] for e in state.history()] == ["d-1", "d-2"]
    assert state.installed() == "d-2" and state.rollback_target() == "d-1"
    assert state.release_dirs("d-3") == (releases.release_dir("d-3"), releases.release_dir("d-2"))
    kept(state, "d-3")  # staged, but its release was never made
    state.record_outcome("d-3", True)
    assert state.rollback_target() == "d-1"


def test_unreadable_history_is_empty_not_an_error(state):
    kept(state, "d-1")
    state.record_outcome("d-1", True)
    with open(state.history_path, "w") as handle:
        handle.write("{not json")
    assert state.history() == [] and state.rollback_target() is None
    state.record_outcome("d-1", True)
    assert json.loads(open(state.history_path).read())[0]["deployment_id"] == "d-1"


@pytest.mark.parametrize("root_dir, release_root, message", [
    ("root", None, "root_dir must be an absolute path, not 'root'"),
    ("/opt/root", "srv/app", "release_root must be an absolute path, not 'srv/app'"),
    ("/opt/root", "./app", "release_root must be an absolute path"),
])
def test_relative_roots_are_refused(root_dir, release_root, message):
    """Issue 14.3: relative roots wrote files under the directory the module ran in."""
    with pytest.raises(DeployError, match=message):
        GroupState(root_dir, GID, release_root)


def test_a_deployment_id_with_a_trailing_newline_is_refused(state):
    """Issue 14.2: every id the group state turns into a path is checked in full."""
    kept(state, "d-1")
    for call in (lambda: state.record_outcome("d-1\n", True), lambda: state.rollback_target(explicit="d-1\n"),
                 lambda: GroupState(state.root.root_dir, GID + "\n")):
        with pytest.raises(DeployError, match="may only hold"):
            call()
