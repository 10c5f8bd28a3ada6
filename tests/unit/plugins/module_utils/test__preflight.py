# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_preflight: every check on real users, groups, files, a real small file system and a real lock."""

from __future__ import annotations

import json
import os
import time

import pytest

from bundle_fixtures import small_filesystem

from ansible_collections.appspec.deploy.plugins.module_utils import _preflight
from ansible_collections.appspec.deploy.plugins.module_utils._lock import HostLock

GROUP_ID = "35e3f43d-889e-59f9-b07d-8dc2ab5d9272"


def appspec(runas=None, owner=None, group=None, acls=None, sudo=False, destination="/tmp/x"):
    hook = {"location": "scripts/start.sh", "timeout": 60, "runas": runas, "sudo": sudo}
    rule = {"object": "/tmp/x", "owner": owner, "group": group, "acls": acls or []}
    return {"appspec": {"version": 0.0, "os": "linux", "files": [{"source": "/", "destination": destination}],
                        "hooks": {"ApplicationStart": [hook]}, "permissions": [rule]}, "compute_platform": "server"}


@pytest.mark.parametrize("spec, problems", [
    (appspec(runas="nobody", owner="root", group="root"), []),
    (appspec(runas="no-such-user"), ["user no-such-user does not exist (named by hooks.ApplicationStart[0].runas)"]),
    (appspec(owner="no-such-user", group="no-such-group"),
     ["user no-such-user does not exist (named by permissions[0].owner)",
      "group no-such-group does not exist (named by permissions[0].group)"]),
    (appspec(acls=["u:no-such-user:rwx", "d:g:no-such-group:r-x", "u::rw-", "m::rwx"]),
     ["user no-such-user does not exist (named by permissions[0].acls)",
      "group no-such-group does not exist (named by permissions[0].acls)"]),
    (appspec(runas="no-such-user", owner="no-such-user"),
     ["user no-such-user does not exist (named by hooks.ApplicationStart[0].runas, permissions[0].owner)"]),
    (appspec(owner="0", group="65534"), []),  # numeric ids are not looked up
])
def test_accounts(spec, problems):
    assert _preflight.check_accounts(spec) == problems
    assert _preflight.check_accounts(spec["appspec"]) == problems  # the AppSpec alone too


def test_commands(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty PATH: no setfacl, no sudo
    assert _preflight.check_commands(appspec()) == []  # no acls, no sudo: nothing needed
    assert _preflight.check_commands(appspec(acls=["u:nobody:r--"])) == [
        "the command setfacl is missing (package acl): the AppSpec's permissions use acls"]
    assert _preflight.check_commands(appspec(sudo=True), is_root=True) == []
    assert "the command sudo is missing" in _preflight.check_commands(appspec(sudo=True), is_root=False)[0]
    for name in ("setfacl", "sudo"):
        (tmp_path / name).write_text("#!/bin/sh\n")
        (tmp_path / name).chmod(0o755)
    assert _preflight.check_commands(appspec(acls=["u:nobody:r--"], sudo=True), is_root=False) == []


def test_python():
    assert _preflight.check_python() == []
    assert _preflight.check_python((3, 6, 9)) == ["Python 3.6.9 is too old: appspec.deploy needs Python 3.8 or later on the host"]


def test_lock(tmp_path):
    root = str(tmp_path)
    assert _preflight.check_lock(root, GROUP_ID) == []
    lock = HostLock(root, GROUP_ID)
    lock.acquire("d-AAAAAAAAA", ttl=600)
    problems = _preflight.check_lock(root, GROUP_ID)
    assert len(problems) == 1 and problems[0].startswith("the deployment lock %s is held: " % lock.path)
    assert "d-AAAAAAAAA" in problems[0]
    assert _preflight.check_lock(root, GROUP_ID, now=time.time() + 3600) == []  # stale: the deployment breaks it
    before = open(lock.path).read()
    _preflight.preflight(root, GROUP_ID)
    assert open(lock.path).read() == before  # read, never touched


def test_disk_on_a_small_file_system(tmp_path):
    with small_filesystem(tmp_path / "small", "1m") as small:
        root_dir = os.path.join(small, "deployment-root")
        result = _preflight.preflight(root_dir, GROUP_ID, appspec(destination=str(tmp_path / "files")),
                                      bundle_size=300 * 1024, unpacked_size=300 * 1024)
        assert result["problems"] == []
        assert sorted(entry["path"] for entry in result["disk"]) == sorted([small, str(tmp_path)])
        # Too big: the bundle and its unpacked revision together do not fit in 1 MiB.
        result = _preflight.preflight(root_dir, GROUP_ID, appspec(destination=str(tmp_path / "files")),
                                      bundle_size=600 * 1024, unpacked_size=600 * 1024)
        assert result["problems"] == ["not enough free disk on the file system of %s: 1.2 MiB needed for %s (the bundle and "
                                      "its unpacked revision, 1.2 MiB), 1.0 MiB free" % (small, root_dir)]
        # Needs on one file system add up: the release root on the same small file system.
        result = _preflight.preflight(root_dir, GROUP_ID, appspec(), bundle_size=300 * 1024, unpacked_size=400 * 1024,
                                      release_root=os.path.join(small, "srv"))
        assert len(result["problems"]) == 1 and "1.1 MiB needed" in result["problems"][0]
        assert os.listdir(small) == []  # nothing created


def test_root_dir_not_writable(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("")
    assert _preflight.check_root_dir(str(blocked / "root")) == ["%s cannot be created: %s is not a directory"
                                                                % (blocked / "root", blocked)]
    assert _preflight.check_root_dir(str(tmp_path / "a" / "b")) == []


def test_every_problem_together(tmp_path):
    HostLock(str(tmp_path), GROUP_ID).acquire("d-AAAAAAAAA", ttl=600)
    result = _preflight.preflight(str(tmp_path), GROUP_ID, appspec(runas="no-such-user", group="no-such-group"))
    assert [problem.split(" ")[0] for problem in result["problems"]] == ["user", "group", "the"]
    json.dumps(result)  # plain values
