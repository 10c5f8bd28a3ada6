# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller-only fetches against real servers on loopback: S3 (moto server) and git (local repositories)."""

from __future__ import annotations

import hashlib
import os
import sys
import tarfile

import pytest

from bundle_fixtures import git_repo, moto_endpoint, s3  # noqa: F401 pylint: disable=unused-import

from ansible_collections.appspec.deploy.plugins.module_utils._sources import SourceError
from ansible_collections.appspec.deploy.plugins.plugin_utils import _fetch


# --- S3 (moto server on loopback) ------------------------------------------------------------------


def test_s3_fetch_version_and_bundle_env(s3, tmp_path):
    s3.create_bucket(Bucket="revisions")
    s3.put_bucket_versioning(Bucket="revisions", VersioningConfiguration={"Status": "Enabled"})
    v1 = s3.put_object(Bucket="revisions", Key="app/rev.zip", Body=b"version one")["VersionId"]
    s3.put_object(Bucket="revisions", Key="app/rev.zip", Body=b"version two")
    dest = tmp_path / "dest"
    dest.mkdir()

    old = _fetch.fetch_s3("s3://revisions/app/rev.zip", str(dest), version_id=v1, endpoint_url=s3.endpoint, region="us-east-1")
    assert open(old.path, "rb").read() == b"version one"
    assert old.env == {"BUNDLE_BUCKET": "revisions", "BUNDLE_KEY": "app/rev.zip", "BUNDLE_VERSION": v1, "BUNDLE_ETAG": hashlib.md5(b"version one").hexdigest()}

    new = _fetch.fetch_s3("s3://revisions/app/rev.zip", str(dest), endpoint_url=s3.endpoint)
    assert open(new.path, "rb").read() == b"version two"
    assert new.env["BUNDLE_VERSION"] != v1 and new.bytes_transferred == len(b"version two")

    head = _fetch.s3_identity("s3://revisions/app/rev.zip", version_id=v1, endpoint_url=s3.endpoint)
    assert head == {"bucket": "revisions", "key": "app/rev.zip", "version": v1, "etag": hashlib.md5(b"version one").hexdigest(), "size": len(b"version one")}


def test_s3_unversioned_bucket_has_no_bundle_version(s3, tmp_path):
    s3.create_bucket(Bucket="plain")
    s3.put_object(Bucket="plain", Key="rev.tar", Body=b"abc")
    fetched = _fetch.fetch_s3("s3://plain/rev.tar", str(tmp_path), endpoint_url=s3.endpoint)
    assert set(fetched.env) == {"BUNDLE_BUCKET", "BUNDLE_KEY", "BUNDLE_ETAG"}


def test_s3_sha256_mismatch_and_missing_key(s3, tmp_path):
    s3.create_bucket(Bucket="bucket-two")
    s3.put_object(Bucket="bucket-two", Key="rev.tar", Body=b"abc")
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(SourceError, match="sha256 mismatch for s3://bucket-two/rev.tar"):
        _fetch.fetch_s3("s3://bucket-two/rev.tar", str(dest), endpoint_url=s3.endpoint, expected_sha256="1" * 64)
    with pytest.raises(SourceError, match="cannot fetch s3://bucket-two/missing.tar:.*NoSuchKey"):
        _fetch.fetch_s3("s3://bucket-two/missing.tar", str(dest), endpoint_url=s3.endpoint)
    assert os.listdir(dest) == []


def test_s3_url_must_have_bucket_and_key():
    with pytest.raises(SourceError, match="s3://bucket/key"):
        _fetch.parse_s3_url("s3://only-bucket")


def test_s3_without_boto3_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "boto3", None)
    with pytest.raises(SourceError, match="needs the Python library boto3"):
        _fetch.fetch_s3("s3://b/k", str(tmp_path))
    with pytest.raises(SourceError, match="needs the Python library boto3"):
        _fetch.presign_s3("s3://b/k")


# --- git (local repository) -----------------------------------------------------------------------


def _tar_file(path, name):
    with tarfile.open(path) as archive:
        return archive.extractfile(name).read()


@pytest.mark.parametrize(
    "ref, which, version",
    [
        (None, "second", b"2\n"),
        ("main", "second", b"2\n"),
        ("v1", "first", b"1\n"),
        ("old", "first", b"1\n"),
        ("first-sha", "first", b"1\n"),
    ],
)
def test_git_ref_to_commit(git_repo, tmp_path, ref, which, version):
    if ref == "first-sha":
        ref = git_repo.first
    dest = tmp_path / "dest"
    dest.mkdir()
    fetched = _fetch.fetch_git(git_repo.path, str(dest), ref=ref)
    commit = getattr(git_repo, which)
    assert fetched.identity["commit"] == commit
    assert fetched.env == {"BUNDLE_COMMIT": commit}
    assert _tar_file(fetched.path, "version.txt") == version
    assert os.listdir(dest) == [os.path.basename(fetched.path)]  # the clone is gone
    assert _fetch.resolve_git_ref(git_repo.path, ref) == commit


def test_git_unknown_ref_leaves_nothing(git_repo, tmp_path):
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(SourceError, match="git ref 'nope' was not found"):
        _fetch.fetch_git(git_repo.path, str(dest), ref="nope")
    assert os.listdir(dest) == []
    assert _fetch.resolve_git_ref(git_repo.path, "nope") is None


def test_git_unreachable_repository(tmp_path):
    with pytest.raises(SourceError, match="git fetch failed"):
        _fetch.fetch_git(str(tmp_path / "missing"), str(tmp_path))


def test_git_file_urls_in_any_case_and_not_of_another_host(git_repo, tmp_path):
    """git knows only a lower-case file:// scheme; a file URL of another host is refused, as for a local revision."""
    fetched = _fetch.fetch_git("FILE://localhost%s" % git_repo.path, str(tmp_path), ref="v1")
    assert fetched.identity["commit"] == git_repo.first
    assert _fetch.resolve_git_ref("File://%s" % git_repo.path, "main") == git_repo.second
    with pytest.raises(SourceError, match="names another host"):
        _fetch.fetch_git("file://elsewhere%s" % git_repo.path, str(tmp_path))
