"""What hosts fetch themselves, against real servers on loopback: local files and HTTP; and classify().

S3 and git are fetched by the controller: tests/unit/plugins/plugin_utils/test__fetch.py.
"""

from __future__ import annotations

import hashlib
import os

import pytest

from bundle_fixtures import http_server  # noqa: F401 pylint: disable=unused-import

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


@pytest.mark.parametrize(
    "revision, expected",
    [
        # scp-like and git schemes: git, whatever the user or host name
        ("deploy@git.example.com:team/app", "git"),
        ("git@github.com:o/r.git", "git"),
        ("ssh://git@host/r", "git"),
        ("git://host/r", "git"),
        ("git+https://host/r", "git"),
        # http(s): a URL, unless it names a repository (.git); the scheme in any case
        ("https://host/r.git", "git"),
        ("HTTPS://host/a.zip", "url"),
        ("Http://host/a.tgz", "url"),
        ("https://user@host:8443/a.zip", "url"),  # user@host: inside a URL is not scp-like git
        # S3, the scheme in any case, even with a .git key
        ("S3://bucket/key", "s3"),
        ("s3://b/k.zip", "s3"),
        ("s3://b/mirror.git", "s3"),
        # paths and file:// URLs of things that are not repositories
        ("/tmp/a.zip", "local"),
        ("./rel/dir", "local"),
        ("file:///tmp/x.tar", "local"),
    ],
)
def test_classification_table(revision, expected):
    assert _sources.classify(revision) == expected


def test_file_urls_of_repositories_are_git(tmp_path):
    from bundle_fixtures import git

    work, bare = tmp_path / "work", tmp_path / "bare"
    work.mkdir()
    git(work, "init", "-q")
    git(tmp_path, "init", "-q", "--bare", str(bare))
    (tmp_path / "plain").mkdir()
    assert _sources.classify("file://%s" % work) == "git"
    assert _sources.classify("file://%s" % bare) == "git"  # a bare repository has no .git inside
    assert _sources.classify("file://%s" % (tmp_path / "plain")) == "local"
    assert _sources.classify(str(bare)) == "local"  # a plain path is a path: give file:// or revision_type


@pytest.mark.parametrize(
    "revision, expected",
    [
        ("/srv/app.tgz", "/srv/app.tgz"),
        ("rel/dir", "rel/dir"),
        ("file:///srv/app.tgz", "/srv/app.tgz"),
        ("FILE:///srv/app.tgz", "/srv/app.tgz"),
        ("file://localhost/srv/my%20app.tgz", "/srv/my app.tgz"),
    ],
)
def test_local_path(revision, expected):
    assert _sources.local_path(revision) == expected


def test_local_path_refuses_another_host():
    with pytest.raises(SourceError, match="names another host"):
        _sources.local_path("file://fileserver/srv/app.tgz")


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


# --- local files -----------------------------------------------------------------------------------


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
