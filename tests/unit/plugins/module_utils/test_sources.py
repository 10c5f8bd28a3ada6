"""Revision sources against real servers on loopback: HTTP, S3 (moto server) and git."""

from __future__ import annotations

import hashlib
import os
import sys
import tarfile

import pytest

from bundle_fixtures import git_repo, http_server, moto_endpoint, s3  # noqa: F401 pylint: disable=unused-import

from ansible_collections.appspec.deploy.plugins.module_utils import _sources
from ansible_collections.appspec.deploy.plugins.module_utils._sources import SourceError


@pytest.mark.parametrize(
    "revision, revision_type, expected",
    [
        ("s3://bucket/key.zip", "auto", "s3"),
        ("S3://bucket/key.zip", "auto", "s3"),
        ("https://example.com/a.tgz", "auto", "url"),
        ("http://example.com/a", "auto", "url"),
        ("https://example.com/team/app.git", "auto", "git"),
        ("git@example.com:team/app", "auto", "git"),
        ("ssh://git@example.com/team/app", "auto", "git"),
        ("git://example.com/app", "auto", "git"),
        ("/srv/revisions/app.tgz", "auto", "local"),
        ("examples/webapp", "auto", "local"),
        ("https://example.com/app", "git", "git"),
        ("whatever", "url", "url"),
    ],
)
def test_classify(revision, revision_type, expected):
    assert _sources.classify(revision, revision_type) == expected


def test_classify_refuses_unknown_type():
    with pytest.raises(SourceError, match="revision_type must be one of"):
        _sources.classify("x", "ftp")


@pytest.mark.parametrize("value, expected", [(None, None), ("", None), ("A" * 64, "a" * 64), ("sha256:" + "b" * 64, "b" * 64)])
def test_normalize_sha256(value, expected):
    assert _sources.normalize_sha256(value) == expected


def test_normalize_sha256_refuses_garbage():
    with pytest.raises(SourceError, match="64 hexadecimal digits"):
        _sources.normalize_sha256("abc")


# --- HTTP -----------------------------------------------------------------------------------------


def test_http_fetch_with_headers_and_sha256(http_server, tmp_path):
    data = os.urandom(3 * 1024 * 1024 + 17)
    (http_server.root / "rev.tgz").write_bytes(data)
    http_server.require({"Authorization": "Bearer s3cret"})
    dest = tmp_path / "dest"
    dest.mkdir()
    fetched = _sources.fetch_url(
        http_server.url("rev.tgz"), str(dest), headers={"Authorization": "Bearer s3cret"}, expected_sha256=hashlib.sha256(data).hexdigest()
    )
    assert open(fetched.path, "rb").read() == data
    assert (fetched.size, fetched.bytes_transferred) == (len(data), len(data))
    assert fetched.sha256 == hashlib.sha256(data).hexdigest()
    assert fetched.env == {}
    assert http_server.seen[-1]["Authorization"] == "Bearer s3cret"


def test_http_missing_header_is_a_clear_error(http_server, tmp_path):
    (http_server.root / "rev.tgz").write_bytes(b"x")
    http_server.require({"Authorization": "Bearer s3cret"})
    with pytest.raises(SourceError, match="HTTP 403"):
        _sources.fetch_url(http_server.url("rev.tgz"), str(tmp_path))
    assert os.listdir(tmp_path) == ["www"]


def test_http_sha256_mismatch_leaves_nothing(http_server, tmp_path):
    (http_server.root / "rev.tgz").write_bytes(b"payload")
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(SourceError, match="sha256 mismatch .* expected 0{64}, got %s; nothing was staged" % hashlib.sha256(b"payload").hexdigest()) as err:
        _sources.fetch_url(http_server.url("rev.tgz"), str(dest), expected_sha256="0" * 64)
    assert err.value.details["actual_sha256"] == hashlib.sha256(b"payload").hexdigest()
    assert os.listdir(dest) == []


def test_http_not_found_and_unreachable(http_server, tmp_path):
    with pytest.raises(SourceError, match="HTTP 404"):
        _sources.fetch_url(http_server.url("nope.tgz"), str(tmp_path))
    from bundle_fixtures import free_port

    with pytest.raises(SourceError, match="cannot fetch http://127.0.0.1"):
        _sources.fetch_url("http://127.0.0.1:%d/x" % free_port(), str(tmp_path), timeout=5)


def test_url_passwords_are_masked():
    assert _sources._redact("https://user:pw@example.com:8443/a?b=1") == "https://user:********@example.com:8443/a?b=1"
    assert _sources._redact("https://example.com/a") == "https://example.com/a"


# --- S3 (moto server on loopback) ------------------------------------------------------------------


def test_s3_fetch_version_and_bundle_env(s3, tmp_path):
    s3.create_bucket(Bucket="revisions")
    s3.put_bucket_versioning(Bucket="revisions", VersioningConfiguration={"Status": "Enabled"})
    v1 = s3.put_object(Bucket="revisions", Key="app/rev.zip", Body=b"version one")["VersionId"]
    s3.put_object(Bucket="revisions", Key="app/rev.zip", Body=b"version two")
    dest = tmp_path / "dest"
    dest.mkdir()

    old = _sources.fetch_s3("s3://revisions/app/rev.zip", str(dest), version_id=v1, endpoint_url=s3.endpoint, region="us-east-1")
    assert open(old.path, "rb").read() == b"version one"
    assert old.env == {"BUNDLE_BUCKET": "revisions", "BUNDLE_KEY": "app/rev.zip", "BUNDLE_VERSION": v1, "BUNDLE_ETAG": hashlib.md5(b"version one").hexdigest()}

    new = _sources.fetch_s3("s3://revisions/app/rev.zip", str(dest), endpoint_url=s3.endpoint)
    assert open(new.path, "rb").read() == b"version two"
    assert new.env["BUNDLE_VERSION"] != v1 and new.bytes_transferred == len(b"version two")

    head = _sources.s3_identity("s3://revisions/app/rev.zip", version_id=v1, endpoint_url=s3.endpoint)
    assert head == {"bucket": "revisions", "key": "app/rev.zip", "version": v1, "etag": hashlib.md5(b"version one").hexdigest(), "size": len(b"version one")}


def test_s3_unversioned_bucket_has_no_bundle_version(s3, tmp_path):
    s3.create_bucket(Bucket="plain")
    s3.put_object(Bucket="plain", Key="rev.tar", Body=b"abc")
    fetched = _sources.fetch_s3("s3://plain/rev.tar", str(tmp_path), endpoint_url=s3.endpoint)
    assert set(fetched.env) == {"BUNDLE_BUCKET", "BUNDLE_KEY", "BUNDLE_ETAG"}


def test_s3_sha256_mismatch_and_missing_key(s3, tmp_path):
    s3.create_bucket(Bucket="bucket-two")
    s3.put_object(Bucket="bucket-two", Key="rev.tar", Body=b"abc")
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(SourceError, match="sha256 mismatch for s3://bucket-two/rev.tar"):
        _sources.fetch_s3("s3://bucket-two/rev.tar", str(dest), endpoint_url=s3.endpoint, expected_sha256="1" * 64)
    with pytest.raises(SourceError, match="cannot fetch s3://bucket-two/missing.tar:.*NoSuchKey"):
        _sources.fetch_s3("s3://bucket-two/missing.tar", str(dest), endpoint_url=s3.endpoint)
    assert os.listdir(dest) == []


def test_s3_url_must_have_bucket_and_key():
    with pytest.raises(SourceError, match="s3://bucket/key"):
        _sources.parse_s3_url("s3://only-bucket")


def test_s3_without_boto3_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "boto3", None)
    with pytest.raises(SourceError, match="needs the Python library boto3"):
        _sources.fetch_s3("s3://b/k", str(tmp_path))


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
    fetched = _sources.fetch_git(git_repo.path, str(dest), ref=ref)
    commit = getattr(git_repo, which)
    assert fetched.identity["commit"] == commit
    assert fetched.env == {"BUNDLE_COMMIT": commit}
    assert _tar_file(fetched.path, "version.txt") == version
    assert os.listdir(dest) == [os.path.basename(fetched.path)]  # the clone is gone
    assert _sources.resolve_git_ref(git_repo.path, ref) == commit


def test_git_unknown_ref_leaves_nothing(git_repo, tmp_path):
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(SourceError, match="git ref 'nope' was not found"):
        _sources.fetch_git(git_repo.path, str(dest), ref="nope")
    assert os.listdir(dest) == []
    assert _sources.resolve_git_ref(git_repo.path, "nope") is None


def test_git_unreachable_repository(tmp_path):
    with pytest.raises(SourceError, match="git fetch failed"):
        _sources.fetch_git(str(tmp_path / "missing"), str(tmp_path))


def test_take_local_copies_or_moves(tmp_path):
    src = tmp_path / "rev.tar"
    src.write_bytes(b"abc")
    dest = tmp_path / "dest"
    dest.mkdir()
    copied = _sources.take_local(str(src), str(dest), hashlib.sha256(b"abc").hexdigest())
    assert src.exists() and open(copied.path, "rb").read() == b"abc"
    moved = _sources.take_local(str(src), str(dest), move=True)
    assert not src.exists() and open(moved.path, "rb").read() == b"abc"
    with pytest.raises(SourceError, match="does not exist on the host") as err:
        _sources.take_local(str(src), str(dest))
    assert err.value.details == {"revision_missing": True}
