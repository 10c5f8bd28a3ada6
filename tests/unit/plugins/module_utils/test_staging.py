"""Staging into the agent's layout: reuse, retention, check mode, local files and URLs end to end.

The AppSpec comes parsed from the controller (``StageOptions.appspec``) and is kept as appspec.json;
S3 and git revisions are fetched by the controller (tests/unit/plugins/plugin_utils/test__revision.py).
"""

from __future__ import annotations

import io
import json
import os
import socket
import tarfile
import time

import pytest

from bundle_fixtures import http_server, lambda_appspec, make_archive, server_appspec  # noqa: F401 pylint: disable=unused-import

from ansible_collections.appspec.deploy.plugins.module_utils._archive import remove_tree
from ansible_collections.appspec.deploy.plugins.module_utils._errors import DeployError
from ansible_collections.appspec.deploy.plugins.module_utils._layout import DeploymentRoot, deployment_group_id
from ansible_collections.appspec.deploy.plugins.module_utils._spec import read_appspec_json
from ansible_collections.appspec.deploy.plugins.module_utils import _staging
from ansible_collections.appspec.deploy.plugins.module_utils._staging import StageOptions, stage

GID = "group-1"
APPSPEC = b"version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - location: scripts/after.sh\n"
# What the controller's parser makes of APPSPEC (see bundle_fixtures.server_appspec).
PARSED = server_appspec({"AfterInstall": ["scripts/after.sh"]})
STAGED = [".bundle-info.json", "appspec.json", "bundle.tar", "deployment-archive", "logs"]


def revision(path, marker="1", appspec=APPSPEC, top=None):
    """A tar revision with an appspec and a marker file; returns (path, sha256)."""
    return make_archive(path, {"appspec.yml": (appspec, 0o755), "scripts/after.sh": (b"#!/bin/sh\n", 0o755),
                               "marker": (marker, 0o755)}, top=top)


def opts(root, deployment_id, rev, **kw):
    kw.setdefault("deployment_group_id", GID)
    kw.setdefault("remote_src", True)
    kw.setdefault("appspec", PARSED)
    return StageOptions(rev, deployment_id, root_dir=str(root), **kw)


@pytest.fixture
def root(tmp_path):
    return tmp_path / "root"


def test_stage_local_file_lays_out_like_the_agent(tmp_path, root):
    rev, sha = revision(tmp_path / "rev.tar")
    result = stage(opts(root, "d-AAAAAAAA1", rev, sha256=sha))
    ddir = root / GID / "d-AAAAAAAA1"
    assert result["changed"] is True and result["reused"] is False
    assert result["deployment_dir"] == str(ddir)
    assert result["archive_dir"] == str(ddir / "deployment-archive")
    assert result["bundle_path"] == str(ddir / "bundle.tar")
    assert (result["sha256"], result["size"], result["bundle_type"]) == (sha, os.path.getsize(rev), "tar")
    assert result["compute_platform"] == "server"
    assert result["appspec"]["hooks"]["AfterInstall"][0]["location"] == "scripts/after.sh"
    assert sorted(os.listdir(ddir)) == STAGED
    assert read_appspec_json(str(ddir)).as_dict() == PARSED.as_dict()  # what later steps read, not YAML
    assert (ddir / "deployment-archive" / "marker").read_text() == "1"
    record = root / "deployment-instructions" / ("%s_most_recent_install" % GID)
    assert record.read_text() == str(ddir)  # no trailing newline, as the agent writes it
    assert os.path.exists(rev)  # a user's file on the host is copied, not moved


def test_a_file_url_on_the_host_is_a_local_file(tmp_path, root):
    rev, sha = revision(tmp_path / "rev.tar")
    result = stage(opts(root, "d-AAAAAAAA1", "file://" + rev, sha256=sha))
    assert result["changed"] and result["source"] == {"type": "local", "revision": rev, "identity": {}}
    assert os.path.exists(rev)


def test_group_id_from_application_and_group(tmp_path, root):
    rev = revision(tmp_path / "rev.tar")[0]
    result = stage(StageOptions(rev, "d-AAAAAAAA1", remote_src=True, root_dir=str(root), application_name="app",
                                deployment_group_name="prod", appspec=PARSED))
    assert result["deployment_group_id"] == deployment_group_id("app", "prod")
    assert os.path.isdir(root / deployment_group_id("app", "prod") / "d-AAAAAAAA1" / "deployment-archive")
    with pytest.raises(DeployError, match="give deployment_group_id"):
        stage(StageOptions(rev, "d-AAAAAAAA1", remote_src=True, root_dir=str(root), application_name="app",
                           appspec=PARSED))


def test_same_deployment_again_is_unchanged(tmp_path, root):
    rev, sha = revision(tmp_path / "rev.tar")
    stage(opts(root, "d-AAAAAAAA1", rev, sha256=sha))
    archive_inode = os.stat(root / GID / "d-AAAAAAAA1" / "deployment-archive" / "marker").st_ino
    again = stage(opts(root, "d-AAAAAAAA1", rev, sha256=sha))
    assert (again["changed"], again["reused"], again["bytes_transferred"]) == (False, True, 0)
    assert os.stat(root / GID / "d-AAAAAAAA1" / "deployment-archive" / "marker").st_ino == archive_inode


def test_same_revision_new_deployment_is_reused_with_hard_links(tmp_path, root):
    rev, sha = revision(tmp_path / "rev.tar")
    stage(opts(root, "d-AAAAAAAA1", rev, sha256=sha))
    # The probe of the action plugin: no file, only the checksum.
    result = stage(opts(root, "d-AAAAAAAA2", "", sha256=sha))
    assert (result["changed"], result["reused"], result["bytes_transferred"]) == (False, True, 0)
    assert result["reused_from"] == str(root / GID / "d-AAAAAAAA1")
    old, new = root / GID / "d-AAAAAAAA1", root / GID / "d-AAAAAAAA2"
    assert os.stat(old / "deployment-archive/marker").st_ino == os.stat(new / "deployment-archive/marker").st_ino
    assert os.stat(old / "bundle.tar").st_ino == os.stat(new / "bundle.tar").st_ino
    assert sorted(os.listdir(new)) == STAGED
    assert os.stat(old / "appspec.json").st_ino != os.stat(new / "appspec.json").st_ino  # each its own
    assert read_appspec_json(str(new)).as_dict() == PARSED.as_dict()
    assert json.loads((new / ".bundle-info.json").read_text())["deployment_id"] == "d-AAAAAAAA2"
    assert result["appspec"]["os"] == "linux" and result["sha256"] == sha
    record = root / "deployment-instructions" / ("%s_most_recent_install" % GID)
    assert record.read_text() == str(new)


def test_probe_without_staged_revision_reports_revision_missing(root):
    with pytest.raises(DeployError, match="not staged on this host") as err:
        stage(opts(root, "d-AAAAAAAA1", "", sha256="a" * 64))
    assert err.value.details["revision_missing"] is True
    assert err.value.details["deployment_dir"] == str(root / GID / "d-AAAAAAAA1")
    assert not root.exists()


def test_sha256_mismatch_stages_nothing(tmp_path, root):
    rev = revision(tmp_path / "rev.tar")[0]
    with pytest.raises(DeployError, match="sha256 mismatch"):
        stage(opts(root, "d-AAAAAAAA1", rev, sha256="0" * 64))
    assert os.listdir(root / GID) == []
    assert not (root / "deployment-instructions").exists()


@pytest.mark.parametrize("hostile", [False, True])
def test_uploaded_file_with_wrong_sha256_stages_nothing(tmp_path, root, hostile):
    """An upload is moved into place and hashed while it is unpacked: the mismatch still wins."""
    upload = tmp_path / "upload"
    if hostile:
        with tarfile.open(str(upload), "w") as archive:
            info = tarfile.TarInfo("../evil")
            archive.addfile(info, io.BytesIO(b""))
    else:
        revision(upload)
    with pytest.raises(DeployError, match="sha256 mismatch"):
        stage(opts(root, "d-AAAAAAAA1", str(upload), sha256="0" * 64, consume_upload=True))
    assert os.listdir(root / GID) == [] and not upload.exists()


def test_uploaded_file_is_moved(tmp_path, root):
    upload = tmp_path / "upload"
    sha = revision(upload)[1]
    inode = os.stat(upload).st_ino
    result = stage(opts(root, "d-AAAAAAAA1", str(upload), sha256=sha, consume_upload=True))
    assert result["changed"] and not upload.exists()
    assert os.stat(result["bundle_path"]).st_ino == inode


def test_without_the_controllers_appspec_nothing_is_staged(tmp_path, root):
    """The AppSpec is parsed on the controller (bundle action plugin, appspec_info): a host never reads YAML."""
    rev, sha = revision(tmp_path / "rev.tar")
    with pytest.raises(DeployError, match="appspec is missing: the AppSpec is parsed on the controller"):
        stage(opts(root, "d-AAAAAAAA1", rev, sha256=sha, appspec=None))
    assert not root.exists()


@pytest.mark.parametrize("reuse", [False, True])
def test_no_complete_staging_without_its_appspec_json(tmp_path, root, monkeypatch, reuse):
    """.bundle-info.json marks a complete deployment dir: appspec.json must be there before it."""
    rev, sha = revision(tmp_path / "rev.tar")
    if reuse:
        stage(opts(root, "d-AAAAAAAA1", rev, sha256=sha))

    def disk_full(*_args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_staging, "write_appspec_json", disk_full)
    with pytest.raises(DeployError, match="on host %s, staging the revision.* could not write in %s: no space left on the "
                       "file system [(]ENOSPC[)]" % (socket.gethostname(), root / GID / "d-AAAAAAAA2")):
        stage(opts(root, "d-AAAAAAAA2", rev if not reuse else "", sha256=sha))
    assert _staging.read_info(str(root / GID / "d-AAAAAAAA2")) is None
    assert not (root / GID / "d-AAAAAAAA2").exists()  # the half-made deployment dir is gone


def test_lambda_appspec_is_not_deployable(tmp_path, root):
    appspec = (b"version: 0.0\nResources:\n  - fn:\n      Type: AWS::Lambda::Function\n      Properties:\n"
               b"        Name: f\n        Alias: live\n        CurrentVersion: '1'\n        TargetVersion: '2'\n")
    rev = revision(tmp_path / "rev.tar", appspec=appspec)[0]
    with pytest.raises(DeployError, match="is an AppSpec for lambda, not for EC2/on-premises hosts: this AppSpec is for AWS Lambda") as err:
        stage(opts(root, "d-AAAAAAAA1", rev, appspec=lambda_appspec()))
    assert err.value.details["compute_platform"] == "lambda"
    assert not root.exists()


def test_hostile_archive_stages_nothing(tmp_path, root):
    path = tmp_path / "evil.tar"
    with tarfile.open(str(path), "w") as archive:
        for name in ("appspec.yml", "../../evil"):
            info = tarfile.TarInfo(name)
            info.size = len(APPSPEC)
            archive.addfile(info, io.BytesIO(APPSPEC))
    with pytest.raises(DeployError, match="'..' path component"):
        stage(opts(root, "d-AAAAAAAA1", str(path)))
    assert os.listdir(root / GID) == [] and not (tmp_path / "evil").exists()


def test_restaging_a_deployment_with_another_revision_replaces_it(tmp_path, root):
    rev1, sha1 = revision(tmp_path / "one.tar", "1")
    rev2, sha2 = revision(tmp_path / "two.tgz", "2")
    stage(opts(root, "d-AAAAAAAA1", rev1, sha256=sha1))
    result = stage(opts(root, "d-AAAAAAAA1", rev2, sha256=sha2))
    ddir = root / GID / "d-AAAAAAAA1"
    assert result["changed"] and result["bundle_type"] == "tgz"
    assert sorted(os.listdir(ddir)) == [".bundle-info.json", "appspec.json", "bundle.tgz", "deployment-archive", "logs"]
    assert (ddir / "deployment-archive/marker").read_text() == "2"


def test_hoisted_revision(tmp_path, root):
    rev = revision(tmp_path / "rev.tgz", top="webapp-main")[0]
    result = stage(opts(root, "d-AAAAAAAA1", rev))
    assert result["hoisted"] == "webapp-main"
    assert (root / GID / "d-AAAAAAAA1" / "deployment-archive" / "appspec.yml").exists()


def test_check_mode_changes_nothing(tmp_path, root):
    rev, sha = revision(tmp_path / "rev.tar")
    result = stage(opts(root, "d-AAAAAAAA1", rev, sha256=sha), check_mode=True)
    assert result["changed"] is True and "would fetch" in result["msg"]
    assert result["deployment_dir"] == str(root / GID / "d-AAAAAAAA1") and result["size"] == os.path.getsize(rev)
    assert not root.exists()
    stage(opts(root, "d-AAAAAAAA1", rev, sha256=sha))
    before = sorted(os.listdir(root / GID))
    reuse = stage(opts(root, "d-AAAAAAAA2", "", sha256=sha), check_mode=True)
    assert (reuse["changed"], reuse["reused"]) == (False, True) and "would reuse" in reuse["msg"]
    assert reuse["appspec"]["os"] == "linux"
    assert sorted(os.listdir(root / GID)) == before and not (root / GID / "d-AAAAAAAA2").exists()


# --- retention -------------------------------------------------------------------------------------


def _stage_many(tmp_path, root, count, max_revisions=3, **kw):
    results = []
    for number in range(1, count + 1):
        rev, sha = revision(tmp_path / ("r%d.tar" % number), str(number))
        results.append(stage(opts(root, "d-00000000%d" % number, rev, sha256=sha, max_revisions=max_revisions, **kw)))
        ddir = root / GID / ("d-00000000%d" % number)
        os.utime(ddir, (time.time() - 1000 + number, time.time() - 1000 + number))
    return results


def test_retention_keeps_max_revisions(tmp_path, root):
    results = _stage_many(tmp_path, root, 6, max_revisions=3)
    assert sorted(os.listdir(root / GID)) == ["d-000000004", "d-000000005", "d-000000006"]
    assert results[-1]["pruned"] == [str(root / GID / "d-000000003")]


def test_retention_never_removes_protected_deployments(tmp_path, root):
    layout = DeploymentRoot(str(root))
    _stage_many(tmp_path, root, 2, max_revisions=10)
    layout.write_record(GID, "last_successful_install", str(root / GID / "d-000000001"))
    layout.write_record(GID, "last_good_deployment", str(root / GID / "d-000000002"))
    release_root = tmp_path / "release"
    (release_root / "releases" / "d-000000003").mkdir(parents=True)
    os.symlink("releases/d-000000003", str(release_root / "current"))
    for number in range(3, 9):
        rev, sha = revision(tmp_path / ("r%d.tar" % number), str(number))
        stage(opts(root, "d-00000000%d" % number, rev, sha256=sha, max_revisions=2, release_root=str(release_root)))
        os.utime(root / GID / ("d-00000000%d" % number), (time.time() - 100 + number,) * 2)
    # 1: last successful, 2: last good, 3: current release, 8: being deployed. Everything else went.
    assert sorted(os.listdir(root / GID)) == ["d-000000001", "d-000000002", "d-000000003", "d-000000008"]


def test_retention_without_release_root_and_check_mode(tmp_path, root):
    _stage_many(tmp_path, root, 3, max_revisions=5)
    rev, sha = revision(tmp_path / "r9.tar", "9")
    result = stage(opts(root, "d-000000009", rev, sha256=sha, max_revisions=1), check_mode=True)
    assert result["pruned"] == [] and len(os.listdir(root / GID)) == 3  # nothing staged, nothing pruned
    result = stage(opts(root, "d-000000009", rev, sha256=sha, max_revisions=1))
    assert sorted(os.listdir(root / GID)) == ["d-000000009"]
    assert len(result["pruned"]) == 3


def test_max_revisions_must_be_positive(tmp_path, root):
    rev = revision(tmp_path / "rev.tar")[0]
    with pytest.raises(DeployError, match="at least 1"):
        stage(opts(root, "d-AAAAAAAA1", rev, max_revisions=0))


# --- sources end to end ---------------------------------------------------------------------------


def test_stage_from_http(tmp_path, root, http_server):
    rev, sha = revision(http_server.root / "rev.tgz")
    http_server.require({"X-Token": "t"})
    url = http_server.url("rev.tgz")
    result = stage(opts(root, "d-AAAAAAAA1", url, remote_src=False, headers={"X-Token": "t"}, sha256=sha))
    assert result["changed"] and result["bytes_transferred"] == os.path.getsize(rev)
    assert result["source"] == {"type": "url", "revision": url, "identity": {"url": url}}
    # Without sha256 the URL has to be read to know; the staged copy is still reused.
    again = stage(opts(root, "d-AAAAAAAA2", url, remote_src=False, headers={"X-Token": "t"}))
    assert (again["changed"], again["reused"]) == (False, True)
    with pytest.raises(DeployError, match="sha256 mismatch"):
        stage(opts(root, "d-AAAAAAAA3", url, remote_src=False, headers={"X-Token": "t"}, sha256="f" * 64))
    assert sorted(os.listdir(root / GID)) == ["d-AAAAAAAA1", "d-AAAAAAAA2"]


def test_a_revision_the_controller_fetched_keeps_its_bundle_env(tmp_path, root):
    """S3 and git revisions reach the host as an uploaded archive with the BUNDLE_* the controller recorded."""
    rev, sha = revision(tmp_path / "rev.tar")
    env = {"BUNDLE_BUCKET": "b", "BUNDLE_KEY": "app.tar", "BUNDLE_VERSION": "v1", "BUNDLE_ETAG": "e"}
    result = stage(opts(root, "d-AAAAAAAA1", rev, sha256=sha, bundle_env=env))
    assert result["bundle_env"] == env
    assert json.loads((root / GID / "d-AAAAAAAA1" / ".bundle-info.json").read_text())["bundle_env"] == env
    again = stage(opts(root, "d-AAAAAAAA2", "", sha256=sha, bundle_env=env))  # the action plugin's probe
    assert (again["changed"], again["reused"], again["bundle_env"]) == (False, True, env)


@pytest.mark.parametrize("revision_, revision_type", [
    ("s3://bucket/app.tar", "auto"),
    ("git@example.com:team/app", "auto"),
    ("https://example.com/team/app.git", "auto"),
    ("/srv/repo", "git"),
    ("/srv/app.tar", "s3"),
])
def test_s3_and_git_revisions_are_fetched_by_the_controller(root, revision_, revision_type):
    with pytest.raises(DeployError, match=r"s3/git revisions are fetched by the controller \(the bundle action plugin\)"):
        stage(opts(root, "d-AAAAAAAA1", revision_, remote_src=False, revision_type=revision_type))
    assert not root.exists()


def _deepen(top, levels=1200):
    """``top/d/d/.../d`` (not os.makedirs: it recurses on depth itself); returns the deepest dir."""
    here = str(top)
    for dummy in range(levels):
        here = os.path.join(here, "d")
        os.mkdir(here)
    return here


def test_reuse_and_retention_survive_a_deep_tree_staged_before_the_depth_limit(tmp_path, root):
    """Issue 14: a 1,200-level tree in a deployment dir made every later retention fail (RecursionError)."""
    _stage_many(tmp_path, root, 1)
    first = root / GID / "d-000000001"
    open(os.path.join(_deepen(first / "deployment-archive"), "f"), "w").close()
    clone = tmp_path / "clone"
    try:
        _staging._clone_tree(str(first / "deployment-archive"), str(clone))
        assert os.path.isfile(os.path.join(str(clone), *(["d"] * 1200 + ["f"])))
    finally:
        remove_tree(str(clone))  # pytest's own clean-up of tmp_path would recurse on it
    os.utime(str(first), (time.time() - 2000, time.time() - 2000))
    results = []
    for number in (2, 3):
        rev, sha = revision(tmp_path / ("n%d.tar" % number), str(number))
        results.append(stage(opts(root, "d-00000000%d" % number, rev, sha256=sha, max_revisions=2)))
    assert results[-1]["pruned"] == [str(first)]
    assert sorted(os.listdir(root / GID)) == ["d-000000002", "d-000000003"]


def test_a_revision_that_does_not_fit_is_refused_before_it_is_copied(tmp_path, root, monkeypatch):
    """Plain logic (tests/unit/plugins/modules/test_lifecycle_event.py fills a real small file system)."""
    rev, sha = revision(tmp_path / "rev.tar")
    monkeypatch.setattr(_staging, "free_bytes", lambda path: 100)
    ddir = root / GID / "d-AAAAAAAA1"
    with pytest.raises(DeployError, match="on host %s, staging the revision needs %d bytes for the archive in %s but only 100 "
                                          "bytes are free: refused before anything was written"
                                          % (socket.gethostname(), os.path.getsize(rev), ddir)):
        stage(opts(root, "d-AAAAAAAA1", rev, sha256=sha))
    assert not ddir.exists()
