# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of bundle: deterministic directory packs and the caches that avoid transfers."""

from __future__ import annotations

import hashlib
import os
import tarfile
import time

from ansible_collections.appspec.deploy.plugins.plugin_utils._transfer import StagedCache
from ansible_collections.appspec.deploy.plugins.plugin_utils._revision import file_sha256, pack_directory, tree_signature


def make_tree(root):
    (root / "scripts").mkdir(parents=True)
    (root / "appspec.yml").write_text("version: 0.0\nos: linux\n")
    (root / "scripts" / "start.sh").write_text("#!/bin/sh\n")
    os.chmod(str(root / "scripts" / "start.sh"), 0o755)
    os.symlink("scripts/start.sh", str(root / "start"))


def test_pack_is_deterministic_and_shared(tmp_path):
    src = tmp_path / "rev"
    make_tree(src)
    cache = str(tmp_path / "cache")
    first = pack_directory(str(src), cache)
    sha = hashlib.sha256(open(first, "rb").read()).hexdigest()
    os.unlink(first)
    again = pack_directory(str(src), cache)
    assert again == first and hashlib.sha256(open(again, "rb").read()).hexdigest() == sha
    with tarfile.open(again) as archive:
        members = {m.name: m for m in archive.getmembers()}
    assert sorted(members) == ["appspec.yml", "scripts", "scripts/start.sh", "start"]
    assert members["start"].issym() and members["start"].linkname == "scripts/start.sh"
    assert members["scripts/start.sh"].mode == 0o755
    assert all(m.uid == 0 and m.uname == "" for m in members.values())


def test_changed_tree_gives_a_new_pack(tmp_path):
    src = tmp_path / "rev"
    make_tree(src)
    before = tree_signature(str(src))
    (src / "appspec.yml").write_text("version: 0.0\nos: linux\n# changed\n")
    assert tree_signature(str(src)) != before
    cache = str(tmp_path / "cache")
    assert pack_directory(str(src), cache) != os.path.join(cache, "packed", before + ".tar")


def test_only_a_few_idle_packs_are_kept(tmp_path):
    """Packs unused for days are pruned beyond the newest four (those in use: test__revision.py)."""
    src = tmp_path / "rev"
    make_tree(src)
    cache = str(tmp_path / "cache")
    for number in range(7):
        (src / "n").write_text(str(number))
        os.utime(pack_directory(str(src), cache), (time.time() - 3 * 24 * 3600 + number,) * 2)
    assert len([n for n in os.listdir(os.path.join(cache, "packed")) if n.endswith(".tar")]) == 4


def test_file_sha256_is_cached_by_stat(tmp_path):
    path = tmp_path / "rev.tar"
    path.write_bytes(b"one")
    cache = str(tmp_path / "cache")
    assert file_sha256(str(path), cache) == hashlib.sha256(b"one").hexdigest()
    path.write_bytes(b"two")  # another size: a new key
    assert file_sha256(str(path), cache) == hashlib.sha256(b"two").hexdigest()


def test_staged_cache_per_host_root_and_group(tmp_path):
    cache = str(tmp_path / "cache")
    web1 = StagedCache("web1", "/opt/root", "g1", cache)
    assert not web1.known_host and not web1.has("a" * 64)
    web1.add("a" * 64)
    again = StagedCache("web1", "/opt/root", "g1", cache)
    assert again.known_host and again.has("a" * 64)
    assert not StagedCache("web2", "/opt/root", "g1", cache).known_host
    assert not StagedCache("web1", "/opt/root", "g2", cache).known_host
    again.forget("a" * 64)
    assert not StagedCache("web1", "/opt/root", "g1", cache).has("a" * 64)
    for number in range(40):
        again.add("%064x" % number)
    assert len(StagedCache("web1", "/opt/root", "g1", cache).shas) == 32


PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  vars:
    common: &common
      deployment_group_id: g1
      root_dir: "{{ root }}"
  tasks:
    - name: New revision, cold controller cache (probe, transfer, run)
      appspec.deploy.bundle: {revision: "{{ src }}", deployment_id: d-1, <<: *common}
    - name: Same revision, new deployment (reuse, nothing transferred)
      appspec.deploy.bundle: {revision: "{{ src }}", deployment_id: d-2, <<: *common}
    - name: Check mode, another new deployment
      appspec.deploy.bundle: {revision: "{{ src }}", deployment_id: d-3, <<: *common}
      check_mode: true
    - name: Change the revision
      ansible.builtin.copy: {dest: "{{ src }}/new.txt", content: "new\\n", mode: "0644"}
    - name: Changed revision in check mode (nothing transferred)
      appspec.deploy.bundle: {revision: "{{ src }}", deployment_id: d-3, <<: *common}
      check_mode: true
    - name: The check left nothing
      ansible.builtin.stat: {path: "{{ root }}/g1/d-3"}
    - name: Changed revision, warm cache (transfer first, one run)
      appspec.deploy.bundle: {revision: "{{ src }}", deployment_id: d-3, <<: *common}
    - name: Wrong checksum
      appspec.deploy.bundle: {revision: "{{ src }}", deployment_id: d-4, sha256: "{{ '0' * 64 }}", <<: *common}
      ignore_errors: true
"""


def test_action_plugin_end_to_end(tmp_path):
    """ansible-playbook on localhost: transfers only what the host does not have."""
    import json
    import shutil
    import subprocess
    import sys

    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
    src = tmp_path / "rev"
    shutil.copytree(os.path.join(repo, "examples", "webapp"), str(src), symlinks=True)
    (tmp_path / "pb.yml").write_text(PLAYBOOK)
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", APPSPEC_DEPLOY_CACHE_DIR=str(tmp_path / "cache"),
               ANSIBLE_CONFIG=os.path.join(repo, "ansible.cfg"), ANSIBLE_LOCAL_TEMP=str(tmp_path / "ltmp"))
    proc = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", os.path.join(repo, "inventory", "localhost.yml"),
         str(tmp_path / "pb.yml"), "-e", json.dumps({"src": str(src), "root": str(tmp_path / "root")})],
        cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    # raw_decode: aggregate callbacks enabled in ansible.cfg (deployment_summary) may print after the JSON.
    data = json.JSONDecoder().raw_decode(proc.stdout.decode().lstrip())[0]
    results = [task["hosts"]["localhost"] for task in data["plays"][0]["tasks"]]
    first, reused, checked, _copy, check_changed, stat_d3, changed, wrong = results
    size = os.path.getsize(first["bundle_path"])
    assert (first["changed"], first["reused"], first["bytes_transferred"]) == (True, False, size)
    assert (reused["changed"], reused["reused"], reused["bytes_transferred"]) == (False, True, 0)
    assert reused["reused_from"] == first["deployment_dir"]
    assert (checked["changed"], checked["reused"]) == (False, True)
    assert check_changed["changed"] is True and "would transfer" in check_changed["msg"]
    assert check_changed["bytes_transferred"] == 0 and stat_d3["stat"]["exists"] is False
    assert changed["changed"] is True and changed["sha256"] != first["sha256"]
    assert changed["bytes_transferred"] == os.path.getsize(changed["bundle_path"])
    assert os.path.exists(os.path.join(changed["archive_dir"], "new.txt"))
    assert wrong["failed"] is True and "sha256 mismatch" in wrong["msg"]
    assert sorted(os.listdir(str(tmp_path / "root" / "g1"))) == ["d-1", "d-2", "d-3"]


def test_upload_needs_no_chmod_round_trip(tmp_path):
    """Without become to another unprivileged user, the upload is not chmod'ed: one command less per host."""
    import subprocess
    import sys

    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
    src = tmp_path / "rev"
    make_tree(src)
    (tmp_path / "pb.yml").write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        "    - appspec.deploy.bundle: {revision: '%s', deployment_id: d-1, deployment_group_id: g1, root_dir: '%s'}\n"
        % (src, tmp_path / "root"))
    env = dict(os.environ, APPSPEC_DEPLOY_CACHE_DIR=str(tmp_path / "cache"), ANSIBLE_CONFIG=os.path.join(repo, "ansible.cfg"),
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "ltmp"), ANSIBLE_REMOTE_TMP=str(tmp_path / "rtmp"))
    proc = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-vvv", "-i",
         os.path.join(repo, "inventory", "localhost.yml"), str(tmp_path / "pb.yml")],
        cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    out = proc.stdout.decode()
    assert proc.returncode == 0, out[-3000:]
    assert "PUT " in out and "bundle-upload" in out  # the revision was transferred...
    # ...and not chmod'ed (the local connection does not pipeline: its AnsiballZ file still is).
    chmods = [line for line in out.splitlines() if "EXEC" in line and "chmod u+" in line]
    assert not [line for line in chmods if "bundle-upload" in line]
    assert os.path.isfile(str(tmp_path / "root" / "g1" / "d-1" / "deployment-archive" / "appspec.yml"))
