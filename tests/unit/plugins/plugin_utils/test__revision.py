# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Revisions resolved on the controller, with real archives, a real HTTP server, git repos and S3 (moto)."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import time
import stat
import struct
import tarfile
import tempfile
import zipfile

import pytest

from bundle_fixtures import git, git_repo, http_server, make_archive, moto_endpoint, s3  # noqa: F401 pylint: disable=unused-import

from ansible_collections.appspec.deploy.plugins.module_utils._errors import DeployError
from ansible_collections.appspec.deploy.plugins.module_utils._sources import classify
from ansible_collections.appspec.deploy.plugins.plugin_utils import _revision
from ansible_collections.appspec.deploy.plugins.plugin_utils._appspec import AppSpecError
from ansible_collections.appspec.deploy.plugins.plugin_utils._revision import (
    RevisionError,
    appspec_from_archive,
    resolve_local,
    resolve_remote,
)

APPSPEC = "version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - location: scripts/after.sh\n      timeout: 30\n"
HOOKS = {"AfterInstall": [{"location": "scripts/after.sh", "timeout": 30, "runas": None, "sudo": False}]}
NOT_AN_APPSPEC = "this: is not\nan: appspec\n"  # parsing it fails: proves which file was read
ECS_APPSPEC = """version: 0.0
Resources:
  - TargetService:
      Type: AWS::ECS::Service
      Properties:
        TaskDefinition: "arn:aws:ecs:us-east-1:111222333444:task-definition/app:1"
        LoadBalancerInfo:
          ContainerName: "web"
          ContainerPort: 80
"""
BODY = {"scripts/after.sh": ("#!/bin/sh\n", 0o755), "app/index.html": "<h1>hi</h1>\n"}


@pytest.fixture
def cache(tmp_path):
    return str(tmp_path / "cache")


@pytest.fixture
def parses(monkeypatch):
    """Records every AppSpec the controller parses (to prove a hostile archive is refused first)."""
    seen = []
    real = _revision.parse_appspec_bytes

    def record(data, source, **kw):
        seen.append(source)
        return real(data, source, **kw)

    monkeypatch.setattr(_revision, "parse_appspec_bytes", record)
    return seen


# --- appspec_from_archive -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, top, appspec_filename, files, read",
    [
        ("rev.zip", None, None, {"appspec.yml": APPSPEC}, "appspec.yml"),
        ("rev.tar", None, None, {"appspec.yml": APPSPEC}, "appspec.yml"),
        ("rev.tgz", None, None, {"appspec.yaml": APPSPEC}, "appspec.yaml"),
        ("rev.tar", None, None, {"appspec.yml": APPSPEC, "appspec.yaml": NOT_AN_APPSPEC}, "appspec.yml"),
        # a single top folder holding the AppSpec is lifted, as the agent does (GitHub tarballs)
        ("rev.tgz", "webapp-1.2", None, {"appspec.yml": APPSPEC}, "webapp-1.2/appspec.yml"),
        ("rev.zip", "webapp-1.2", None, {"appspec.yml": APPSPEC}, "webapp-1.2/appspec.yml"),
        # a custom AppSpec name wins over appspec.yml; when it is not there, the defaults are tried
        ("rev.tar", None, "deploy/prod.yml", {"deploy/prod.yml": APPSPEC, "appspec.yml": NOT_AN_APPSPEC}, "deploy/prod.yml"),
        ("rev.zip", None, "./prod.yml", {"prod.yml": APPSPEC, "appspec.yml": NOT_AN_APPSPEC}, "prod.yml"),
        ("rev.tgz", None, "missing.yml", {"appspec.yml": APPSPEC}, "appspec.yml"),
        ("rev.tgz", "top", "prod.yml", {"prod.yml": APPSPEC, "appspec.yml": NOT_AN_APPSPEC}, "top/prod.yml"),
    ],
)
def test_appspec_from_archive(tmp_path, parses, name, top, appspec_filename, files, read):
    path, _sha = make_archive(tmp_path / name, dict(BODY, **files), top=top)
    before = sorted(os.listdir(str(tmp_path)))
    parsed = appspec_from_archive(path, appspec_filename)
    assert parsed.compute_platform == "server" and parsed.deployable
    assert parsed.appspec["hooks"] == HOOKS
    assert parsed.source == "%s:%s" % (path, read) and parses == [parsed.source]
    assert sorted(os.listdir(str(tmp_path))) == before  # read in place: nothing unpacked


def _tar(path, members):
    """members: [(name, kind, data or link target)] with kind file, symlink, hardlink, dir."""
    with tarfile.open(str(path), "w") as archive:
        for name, kind, value in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size, info.mode = len(value), 0o644
                archive.addfile(info, io.BytesIO(value))
                continue
            info.type = {"symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE, "dir": tarfile.DIRTYPE}[kind]
            info.linkname = value or ""
            archive.addfile(info)
    return str(path)


def _zip(path, members):
    with zipfile.ZipFile(str(path), "w") as archive:
        for name, kind, value in members:
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = ((stat.S_IFLNK | 0o777) if kind == "symlink" else (stat.S_IFREG | 0o644)) << 16
            archive.writestr(info, value.encode() if isinstance(value, str) else value)
    return str(path)


@pytest.mark.parametrize(
    "build, members",
    [
        (_tar, [("conf/appspec.yml", "file", APPSPEC.encode()), ("appspec.yml", "symlink", "conf/appspec.yml")]),
        (_tar, [("conf/appspec.yml", "file", APPSPEC.encode()), ("appspec.yml", "hardlink", "conf/appspec.yml")]),
        (_zip, [("conf/appspec.yml", "file", APPSPEC), ("appspec.yml", "symlink", "conf/appspec.yml")]),
        (_tar, [("conf/real.yml", "file", APPSPEC.encode()), ("conf/appspec.yml", "symlink", "real.yml"),
                ("appspec.yml", "symlink", "./conf/appspec.yml")]),
    ],
    ids=["tar-symlink", "tar-hardlink", "zip-symlink", "symlink-chain"],
)
def test_an_appspec_reached_through_a_link_of_the_archive(tmp_path, build, members):
    """As on a host after unpacking (the agent reads the AppSpec through links): not 'no AppSpec file'."""
    path = build(tmp_path / "rev", members + [("scripts/after.sh", "file", b"#!/bin/sh\n")])
    assert appspec_from_archive(path).appspec["hooks"] == HOOKS


@pytest.mark.parametrize(
    "files, top, appspec_filename, looked_for",
    [
        ({"README": "x"}, None, None, "appspec.yml, appspec.yaml"),
        ({"README": "x"}, None, "deploy/prod.yml", "deploy/prod.yml, appspec.yml, appspec.yaml"),
        ({"app/appspec.yml": APPSPEC, "README": "x"}, None, None, "appspec.yml, appspec.yaml"),  # not at the root
        ({"APPSPEC.YML": APPSPEC}, None, None, "appspec.yml, appspec.yaml"),  # names are case-sensitive
        # the agent lifts a single top folder only when a name in it matches /appspec/i
        ({"prod.yml": APPSPEC}, "top", "prod.yml", "prod.yml, appspec.yml, appspec.yaml"),
    ],
)
def test_a_missing_appspec_lists_the_names_tried(tmp_path, parses, files, top, appspec_filename, looked_for):
    path = make_archive(tmp_path / "rev.tgz", files, top=top)[0]
    with pytest.raises(RevisionError) as err:
        appspec_from_archive(path, appspec_filename)
    assert str(err.value) == "no AppSpec file at the root of the revision %s: looked for %s" % (path, looked_for)
    assert parses == []


def test_an_appspec_filename_out_of_the_revision_is_refused(tmp_path):
    path = make_archive(tmp_path / "rev.tgz", {"appspec.yml": APPSPEC})[0]
    with pytest.raises(DeployError, match="must be a path inside the revision"):
        appspec_from_archive(path, "../appspec.yml")


def test_an_invalid_appspec_gives_every_error_of_the_parser(tmp_path):
    path = make_archive(tmp_path / "rev.tar", {"appspec.yml": "version: 0.0\nos: windows-ish\nhooks: [1]\n"})[0]
    with pytest.raises(AppSpecError) as err:
        appspec_from_archive(path)
    assert str(err.value).startswith("%s:appspec.yml: 2 errors" % path)
    assert [e["path"] for e in err.value.details["errors"]] == ["os", "hooks"]


@pytest.mark.parametrize(
    "build, members, message",
    [
        (_tar, [("appspec.yml", "file", APPSPEC.encode()), ("../../evil", "file", b"x")], "'..' path component"),
        (_tar, [("appspec.yml", "file", APPSPEC.encode()), ("/etc/evil", "file", b"x")], "has an absolute path"),
        (_tar, [("appspec.yml", "file", APPSPEC.encode()), ("up", "symlink", "../../etc")], "points outside the archive"),
        (_tar, [("appspec.yml", "file", APPSPEC.encode()), ("abs", "symlink", "/etc/passwd")], "points outside the archive"),
        (_tar, [("appspec.yml", "file", APPSPEC.encode()), ("d", "symlink", "."), ("d/../../x", "file", b"x")],
         "'..' path component"),
        (_tar, [("appspec.yml", "file", APPSPEC.encode()), ("etc", "symlink", "/etc"), ("etc/cron.d/x", "file", b"x")],
         "points outside the archive"),
        (_zip, [("appspec.yml", "file", APPSPEC), ("../evil", "file", "x")], "'..' path component"),
        (_zip, [("appspec.yml", "file", APPSPEC), ("/evil", "file", "x")], "has an absolute path"),
        (_zip, [("appspec.yml", "file", APPSPEC), ("up", "symlink", "../../../etc/shadow")], "points outside the archive"),
    ],
)
def test_a_hostile_archive_is_refused_before_its_appspec_is_parsed(tmp_path, parses, build, members, message):
    path = build(tmp_path / "evil", members)
    with pytest.raises(RevisionError, match=message) as err:
        appspec_from_archive(path)
    assert str(err.value).startswith("the revision %s is refused: " % path)
    assert err.value.details.get("archive_entry")
    assert parses == []
    assert not (tmp_path.parent / "evil").exists() and not os.path.lexists(str(tmp_path / "up"))


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """An empty temp dir for everything tempfile makes: what appears in it was written to disk."""
    path = tmp_path / "tmpdir"
    path.mkdir()
    monkeypatch.setenv("TMPDIR", str(path))
    monkeypatch.setattr(tempfile, "tempdir", str(path))
    return path


def _zip_bomb(path, size):
    """A zip of an AppSpec and `size` bytes of zeros (deflated to ~1/1000)."""
    with zipfile.ZipFile(str(path), "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("appspec.yml", APPSPEC)
        with archive.open("zeros.bin", "w", force_zip64=True) as handle:
            chunk = bytes(1024 * 1024)
            for _chunk in range(size // len(chunk)):
                handle.write(chunk)
    return str(path)


def test_a_zip_bomb_over_max_unpacked_size_is_refused_without_writing(tmp_path, private_tmp, parses):
    bomb = _zip_bomb(tmp_path / "bomb.zip", 256 * 1024 * 1024)
    assert os.path.getsize(bomb) < 2 * 1024 * 1024
    before = sorted(os.listdir(str(tmp_path)))
    with pytest.raises(RevisionError, match="unpacks to more than the limit of 1048576 bytes") as err:
        appspec_from_archive(bomb, max_unpacked_size=1024 * 1024)
    assert err.value.details["limit"] == 1024 * 1024 and err.value.details["declared"] > 1024 * 1024
    assert parses == [] and os.listdir(str(private_tmp)) == [] and sorted(os.listdir(str(tmp_path))) == before
    with pytest.raises(RevisionError, match="unpacks to more than the limit"):
        resolve_local(bomb, max_unpacked_size=1024 * 1024, cache=str(tmp_path / "cache"))
    assert os.listdir(str(private_tmp)) == []


def test_an_appspec_that_inflates_past_its_declared_size_is_refused(tmp_path, private_tmp):
    """A zip entry whose headers understate its size: read up to the declared size only, then refused."""
    path = str(tmp_path / "liar.zip")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("appspec.yml", APPSPEC + "#" * (64 * 1024 * 1024))
    data = bytearray(open(path, "rb").read())
    struct.pack_into("<I", data, 22, len(APPSPEC))  # local header: uncompressed size
    struct.pack_into("<I", data, data.rfind(b"PK\x01\x02") + 24, len(APPSPEC))  # central directory
    open(path, "wb").write(bytes(data))
    with pytest.raises(RevisionError, match="cannot read entry 0 of .*liar.zip: Bad CRC-32"):
        appspec_from_archive(path)
    assert os.listdir(str(private_tmp)) == []


# --- resolve_local --------------------------------------------------------------------------------


def test_a_non_deployable_appspec_is_refused_by_resolve_local(tmp_path, cache):
    path = make_archive(tmp_path / "ecs.zip", {"appspec.yml": ECS_APPSPEC})[0]
    parsed = appspec_from_archive(path)  # valid: appspec_info would describe it
    assert (parsed.compute_platform, parsed.deployable) == ("ecs", False)
    with pytest.raises(RevisionError, match="is an AppSpec for ecs, not for EC2/on-premises hosts: .*Amazon ECS") as err:
        resolve_local(path, cache=cache)
    assert err.value.details == {"compute_platform": "ecs"}
    directory = tmp_path / "ecs"
    directory.mkdir()
    (directory / "appspec.yml").write_text(ECS_APPSPEC)
    with pytest.raises(RevisionError, match="is an AppSpec for ecs"):
        resolve_local(str(directory), cache=cache)


def test_resolve_local_packs_a_directory_with_a_stable_sha256(tmp_path, cache):
    src = tmp_path / "rev"
    (src / "scripts").mkdir(parents=True)
    (src / "appspec.yml").write_text(APPSPEC)
    (src / "scripts" / "after.sh").write_text("#!/bin/sh\n")
    first = resolve_local(str(src), cache=cache)
    second = resolve_local(str(src), cache=cache)
    assert first.packed and first.kind == "local" and first.source == str(src)
    assert os.path.dirname(first.path) == os.path.join(cache, "packed")
    assert first.sha256 == hashlib.sha256(open(first.path, "rb").read()).hexdigest()
    assert (second.path, second.sha256, second.size) == (first.path, first.sha256, os.path.getsize(first.path))
    assert first.appspec.appspec["hooks"] == HOOKS and first.bundle_env == {}
    assert resolve_local(str(src), sha256="SHA256:" + first.sha256.upper(), cache=cache).sha256 == first.sha256
    (src / "scripts" / "after.sh").write_text("#!/bin/sh\necho changed\n")
    assert resolve_local(str(src), cache=cache).sha256 != first.sha256


def test_packs_in_use_are_never_pruned_by_other_runs(tmp_path, cache):
    """Another run packing other directories must not remove a pack a running deployment still uploads: only
    packs beyond the newest few AND unused for two days go (a rolling deployment lost its archive otherwise)."""
    from ansible_collections.appspec.deploy.plugins.plugin_utils import _revision

    def pack(name):
        src = tmp_path / name
        (src / "scripts").mkdir(parents=True)
        (src / "appspec.yml").write_text(APPSPEC)
        (src / "scripts" / "after.sh").write_text("#!/bin/sh\necho %s\n" % name)
        return _revision.pack_directory(str(src), cache)

    in_use = pack("in-use")
    stale = pack("stale")
    long_ago = time.time() - _revision._PACK_IDLE_SECONDS - 60
    os.utime(stale, (long_ago, long_ago))
    for index in range(_revision._KEEP_PACKS + 2):
        pack("other-%d" % index)
    assert os.path.exists(in_use), "a pack used minutes ago was pruned"
    assert not os.path.exists(stale), "a pack unused for days and beyond the newest few was kept"


def test_resolve_local_refuses_a_directory_a_host_would_refuse(tmp_path, cache):
    """A directory is checked like its pack will be on the host: a link out of it is refused here."""
    src = tmp_path / "rev"
    src.mkdir()
    (src / "appspec.yml").write_text(APPSPEC)
    os.symlink("/etc/passwd", str(src / "passwd"))
    with pytest.raises(RevisionError, match="the revision %s is refused: symlink 'passwd' points outside" % src):
        resolve_local(str(src), cache=cache)


@pytest.mark.parametrize("name", ["rev.tgz", "rev.zip"])
def test_resolve_local_checks_the_sha256_of_an_archive(tmp_path, cache, parses, name):
    path, sha = make_archive(tmp_path / name, dict(BODY, **{"appspec.yml": APPSPEC}))
    with pytest.raises(RevisionError, match="sha256 mismatch for the revision %s: expected 0{64}, got %s" % (path, sha)) as err:
        resolve_local(path, sha256="0" * 64, cache=cache)
    assert err.value.details == {"expected_sha256": "0" * 64, "actual_sha256": sha}
    assert parses == []  # refused before the AppSpec is read
    resolved = resolve_local(path, sha256=sha, cache=cache)
    assert (resolved.path, resolved.sha256, resolved.packed) == (path, sha, False)
    assert resolved.appspec.appspec["hooks"] == HOOKS
    assert resolve_local("file://" + path, cache=cache).path == path


def test_resolve_local_of_nothing(tmp_path, cache):
    with pytest.raises(RevisionError, match="does not exist on the controller"):
        resolve_local(str(tmp_path / "nope.tgz"), cache=cache)


# --- resolve_remote -------------------------------------------------------------------------------


def _store(cache):
    return sorted(os.listdir(os.path.join(cache, "revisions")))


def test_resolve_remote_url_is_fetched_once(tmp_path, cache, http_server):
    path, sha = make_archive(http_server.root / "rev.tgz", dict(BODY, **{"appspec.yml": APPSPEC}))
    http_server.require({"X-Token": "t"})
    url = http_server.url("rev.tgz")
    first = resolve_remote("url", url, headers={"X-Token": "t"}, cache=cache)  # no sha256: fetched
    assert len(http_server.seen) == 1
    assert (first.kind, first.source, first.sha256, first.size) == ("url", url, sha, os.path.getsize(path))
    assert first.path == os.path.join(cache, "revisions", sha) and first.identity == {"url": url}
    assert first.appspec.appspec["hooks"] == HOOKS and first.bundle_env == {}
    assert _store(cache) == [sha, sha + ".json"]  # no temp dir left
    second = resolve_remote("url", url, sha256=sha, headers={"X-Token": "t"}, cache=cache)
    assert len(http_server.seen) == 1  # known sha256: the server was not asked again
    assert (second.path, second.sha256, second.identity) == (first.path, sha, first.identity)
    os.unlink(path)  # even gone at the source
    assert resolve_remote("url", url, sha256=sha, cache=cache).sha256 == sha and len(http_server.seen) == 1


def test_resolve_remote_url_with_a_wrong_sha256_keeps_nothing(tmp_path, cache, http_server):
    make_archive(http_server.root / "rev.tgz", {"appspec.yml": APPSPEC})
    with pytest.raises(DeployError, match="sha256 mismatch"):
        resolve_remote("url", http_server.url("rev.tgz"), sha256="f" * 64, cache=cache)
    assert _store(cache) == []
    with pytest.raises(DeployError, match="HTTP 404"):
        resolve_remote("url", http_server.url("missing.tgz"), cache=cache)
    assert _store(cache) == []


def test_resolve_remote_url_refuses_a_hostile_archive(tmp_path, cache, http_server, parses):
    _tar(http_server.root / "evil.tar", [("appspec.yml", "file", APPSPEC.encode()), ("../evil", "file", b"x")])
    with pytest.raises(RevisionError, match="'..' path component"):
        resolve_remote("url", http_server.url("evil.tar"), cache=cache)
    assert parses == []


@pytest.fixture
def bare_repos(tmp_path, git_repo):
    """git_repo (two commits, tag v1 on the first) as two bare repos: app.git, and one without the suffix."""
    suffixed, plain = tmp_path / "app.git", tmp_path / "bare"
    git(tmp_path, "clone", "-q", "--bare", git_repo.path, str(suffixed))
    git(tmp_path, "clone", "-q", "--bare", git_repo.path, str(plain))
    return git_repo, str(suffixed), "file://%s" % plain


@pytest.mark.parametrize("which", [1, 2])
def test_resolve_remote_git_records_the_commit(tmp_path, cache, bare_repos, monkeypatch, which):
    repo, revision = bare_repos[0], bare_repos[which]
    assert classify(revision) == "git"
    head = resolve_remote("git", revision, cache=cache)
    assert head.bundle_env == {"BUNDLE_COMMIT": repo.second}
    assert head.identity == {"repository": revision, "commit": repo.second, "ref": None}
    assert head.appspec.appspec["os"] == "linux" and head.kind == "git"
    with tarfile.open(head.path) as archive:
        assert archive.extractfile("version.txt").read() == b"2\n"
    tagged = resolve_remote("git", revision, git_ref="v1", cache=cache)
    assert tagged.bundle_env == {"BUNDLE_COMMIT": repo.first} and tagged.sha256 != head.sha256

    def no_fetch(*_args):
        raise AssertionError("fetched again")

    monkeypatch.setattr(_revision, "_fetch", no_fetch)
    again = resolve_remote("git", revision, git_ref="v1", sha256=tagged.sha256, cache=cache)
    assert (again.path, again.bundle_env, again.identity) == (tagged.path, tagged.bundle_env, tagged.identity)


def test_resolve_remote_git_unknown_ref(cache, bare_repos):
    with pytest.raises(DeployError, match="git ref 'nope' was not found"):
        resolve_remote("git", bare_repos[1], git_ref="nope", cache=cache)
    assert _store(cache) == []


def test_resolve_remote_s3_with_version(tmp_path, cache, s3, monkeypatch):
    s3.create_bucket(Bucket="stage-bucket")
    s3.put_bucket_versioning(Bucket="stage-bucket", VersioningConfiguration={"Status": "Enabled"})
    one = make_archive(tmp_path / "one.tar", dict(BODY, **{"appspec.yml": APPSPEC, "marker": "1"}))[0]
    two = make_archive(tmp_path / "two.tar", dict(BODY, **{"appspec.yml": APPSPEC, "marker": "2"}))[0]
    v1 = s3.put_object(Bucket="stage-bucket", Key="app.tar", Body=open(one, "rb").read())["VersionId"]
    s3.put_object(Bucket="stage-bucket", Key="app.tar", Body=open(two, "rb").read())
    kw = dict(s3_endpoint_url=s3.endpoint, s3_region="us-east-1", cache=cache)
    old = resolve_remote("s3", "s3://stage-bucket/app.tar", s3_version_id=v1, **kw)
    assert old.bundle_env == {"BUNDLE_BUCKET": "stage-bucket", "BUNDLE_KEY": "app.tar", "BUNDLE_VERSION": v1,
                              "BUNDLE_ETAG": hashlib.md5(open(one, "rb").read()).hexdigest()}
    assert old.identity["endpoint"] == s3.endpoint and old.sha256 == hashlib.sha256(open(one, "rb").read()).hexdigest()
    with tarfile.open(old.path) as archive:
        assert archive.extractfile("marker").read() == b"1"
    latest = resolve_remote("s3", "s3://stage-bucket/app.tar", **kw)
    assert latest.bundle_env["BUNDLE_VERSION"] != v1 and latest.sha256 != old.sha256
    monkeypatch.setattr(_revision, "_fetch", lambda *_args: pytest.fail("fetched again"))
    again = resolve_remote("s3", "s3://stage-bucket/app.tar", s3_version_id=v1, sha256=old.sha256, **kw)
    assert again.bundle_env == old.bundle_env and again.path == old.path


def test_a_git_work_tree_is_packed_without_its_git_metadata(tmp_path, cache, git_repo):
    """A directory that is a git work tree deploys what it holds (uncommitted changes too), not its .git."""
    src = tmp_path / "repo"
    (src / "version.txt").write_text("3 (uncommitted)\n")
    (src / "vendor" / "lib").mkdir(parents=True)
    (src / "vendor" / "lib" / ".git").write_text("gitdir: ../../.git/modules/lib\n")  # a submodule's pointer
    (src / "vendor" / "lib" / "lib.py").write_text("x = 1\n")
    assert classify(str(src)) == "local"
    resolved = resolve_local(str(src), cache=cache)
    with tarfile.open(resolved.path) as archive:
        names = archive.getnames()
        assert archive.extractfile("version.txt").read() == b"3 (uncommitted)\n"
    assert sorted(names) == ["appspec.yml", "vendor", "vendor/lib", "vendor/lib/lib.py", "version.txt"]
    git(src, "commit", "-q", "--allow-empty", "-m", "three")  # only .git changed: the same pack
    assert resolve_local(str(src), cache=cache).path == resolved.path


def test_every_spelling_of_a_file_url_of_a_repository_deploys_it(tmp_path, cache, git_repo):
    """docs/bundle.md: a file:// URL of a repository (work tree or bare) is a git revision."""
    spaced = tmp_path / "my repo"
    git(tmp_path, "clone", "-q", git_repo.path, str(spaced))
    bare = tmp_path / "bare.git"
    git(tmp_path, "clone", "-q", "--bare", git_repo.path, str(bare))
    spellings = [
        "file://%s" % git_repo.path,
        "file://%s/" % git_repo.path,
        "file://localhost%s" % git_repo.path,
        "FILE://%s" % git_repo.path,
        "File://localhost%s" % git_repo.path,
        "file://%s" % str(spaced).replace(" ", "%20"),
        "file://%s" % spaced,
        "file://%s/.git" % git_repo.path,
        "file://%s" % bare,
        "FILE://%s/" % bare,
    ]
    for url in spellings:
        assert classify(url) == "git", url
        resolved = resolve_remote("git", url, cache=cache)
        assert resolved.bundle_env == {"BUNDLE_COMMIT": git_repo.second}, url
        assert resolve_remote("git", url, git_ref="v1", cache=cache).bundle_env == {"BUNDLE_COMMIT": git_repo.first}, url
    with pytest.raises(DeployError, match="names another host"):
        resolve_remote("git", "file://build-server%s" % bare, cache=cache)
    assert not [name for name in _store(cache) if name.startswith(".")]  # no temp dir left behind


def test_appspec_errors_name_the_revision_given_not_the_cache(tmp_path, cache, http_server):
    """Issue 14.5: an AppSpec error named the controller's cache file, not the revision the user gave."""
    bad = {"appspec.yml": "version: 0.0\nos: linux\nfiles:\n  - source: app\n    destination: \"/srv/a\\nb\"\n"}
    make_archive(http_server.root / "rev.tgz", bad)
    url = http_server.url("rev.tgz")
    with pytest.raises(AppSpecError) as err:
        resolve_remote("url", url, cache=cache)
    assert err.value.source == url + ":appspec.yml"
    assert str(err.value).startswith(url + ":appspec.yml: line 5 col 18 files[0].destination: ")
    assert cache not in str(err.value)
    # A directory (packed into the cache) and an archive of the controller: their own paths.
    top = tmp_path / "rev"
    top.mkdir()
    (top / "appspec.yml").write_text(bad["appspec.yml"])
    with pytest.raises(AppSpecError) as err:
        resolve_local(str(top), cache=cache)
    assert err.value.source == os.path.join(str(top), "appspec.yml")
    path = make_archive(tmp_path / "rev.zip", {"app/appspec.yml": bad["appspec.yml"]})[0]
    with pytest.raises(AppSpecError) as err:
        resolve_local(path, cache=cache)
    assert err.value.source == path + ":app/appspec.yml"


def test_archive_errors_name_the_revision_given(tmp_path, cache, http_server):
    make_archive(http_server.root / "none.tgz", {"index.html": "x"})
    url = http_server.url("none.tgz")
    with pytest.raises(RevisionError, match="no AppSpec file at the root of the revision %s:" % url):
        resolve_remote("url", url, cache=cache)
    _tar(http_server.root / "evil.tar", [("appspec.yml", "file", APPSPEC.encode()), ("../evil", "file", b"x")])
    with pytest.raises(RevisionError) as err:
        resolve_remote("url", http_server.url("evil.tar"), cache=cache)
    assert str(err.value).startswith("the revision %s is refused: " % http_server.url("evil.tar"))


def _declared_tgz_bomb(path, size):
    """A few hundred bytes of gzip: an AppSpec, then a GNU tar header declaring ``size`` bytes of zeros."""
    head = tarfile.TarInfo("appspec.yml")
    data = APPSPEC.encode()
    head.size = len(data)
    body = tarfile.TarInfo("zeros.bin")
    body.size = size
    raw = head.tobuf(tarfile.GNU_FORMAT) + data + b"\0" * (512 - len(data)) + body.tobuf(tarfile.GNU_FORMAT) + b"\0" * 512
    with open(str(path), "wb") as handle:
        handle.write(gzip.compress(raw))
    return str(path)


def _disk_usage(path):
    total = 0
    for here, dummy, files in os.walk(str(path)):
        total += sum(os.lstat(os.path.join(here, name)).st_blocks * 512 for name in files)
    return total


@pytest.mark.parametrize("limit", [None, 10 * 1024 ** 3])  # None: the default, as an API caller gets it
def test_a_revision_declaring_20_gib_is_refused_on_the_controller_by_its_headers(tmp_path, private_tmp, parses, limit):
    # Issue 14: validating a revision must never unpack it whole; a few MB that expand to many GB are refused
    # by their declared sizes before anything is written.
    bomb = _declared_tgz_bomb(tmp_path / "bomb.tgz", 20 * 1024 ** 3)
    assert os.path.getsize(bomb) < 4096
    cache = tmp_path / "cache"
    with pytest.raises(RevisionError, match=r"the revision %s is refused: archive unpacks to more than the limit of 10737418240 "
                                            r"bytes \(max_unpacked_size\), by the sizes its entries declare" % bomb):
        resolve_local(bomb, max_unpacked_size=limit, cache=str(cache))
    with pytest.raises(RevisionError, match="more than the limit of 10737418240 bytes"):
        appspec_from_archive(bomb, max_unpacked_size=limit)
    assert parses == [] and os.listdir(str(private_tmp)) == []
    assert _disk_usage(tmp_path) < 256 * 1024  # nothing was unpacked anywhere


def test_the_controller_reads_one_appspec_member_with_a_size_cap(tmp_path):
    # Whatever a header says, the one member read into memory is capped (MAX_APPSPEC_BYTES).
    path = str(tmp_path / "big.tar")
    with tarfile.open(path, "w") as archive:
        info = tarfile.TarInfo("appspec.yml")
        info.size = 4096
        archive.addfile(info, io.BytesIO(b"#" * 4096))
    assert len(_revision._read_entry(path, "tar", 0, limit=4096)) == 4096
    with pytest.raises(RevisionError, match="entry 0 of .* holds more than 1000 bytes"):
        _revision._read_entry(path, "tar", 0, limit=1000)


PATHS_APPSPEC = """version: 0.0
os: linux
files:
  - source: %s
    destination: /srv/app
hooks:
  AfterInstall:
    - location: %s
"""


@pytest.mark.parametrize(
    "source, location, members",
    [
        ("/", "scripts/after.sh", []),  # the whole revision; a script in an implicit directory
        ("app", "/scripts/after.sh", [("app/", "dir", None)]),  # a leading / is the revision root
        ("app/", "run", [("app/x", "file", b"x"), ("run", "symlink", "scripts/after.sh")]),  # a link to a script
        ("current/x", "bin/after.sh", [("real/x", "file", b"x"), ("current", "symlink", "real"),
                                       ("bin", "symlink", "scripts")]),  # through linked directories
        ("app/../app/x", "scripts/./after.sh", [("app/x", "file", b"x")]),
        ("dangling", "scripts/hard.sh", [("dangling", "symlink", "nowhere"),  # hosts copy a source link as a link
                                         ("scripts/hard.sh", "hardlink", "scripts/after.sh")]),
    ],
)
def test_files_sources_and_scripts_found_as_hosts_find_them(tmp_path, source, location, members):
    members = [("appspec.yml", "file", (PATHS_APPSPEC % (source, location)).encode()),
               ("scripts/after.sh", "file", b"#!/bin/sh\n")] + members
    assert appspec_from_archive(_tar(tmp_path / "rev.tar", members)).appspec["files"][0]["source"] == source


@pytest.mark.parametrize(
    "source, location, members, problems",
    [
        ("/etc", "/bin/true", [], ["files[0].source '/etc' does not exist in the revision",
                                   "hooks.AfterInstall[0].location '/bin/true': the script does not exist"]),
        ("app", "scripts", [("app/../x", "file", b"")], None),  # refused as an archive entry
        ("app/x/y", "scripts/after.sh", [("app/x", "file", b"x")], ["files[0].source 'app/x/y' does not exist"]),
        ("/", "scripts/", [], ["hooks.AfterInstall[0].location 'scripts/': the script does not exist"]),  # a dir
        ("/", "loop.sh", [("loop.sh", "symlink", "loop.sh")], None),  # refused as a link that resolves nowhere
        ("/", "gone.sh", [("gone.sh", "symlink", "scripts/gone.sh")], ["location 'gone.sh': the script does not"]),
    ],
)
def test_a_path_hosts_would_not_find_is_refused_before_any_host(tmp_path, source, location, members, problems):
    """Hosts would find out only after ApplicationStop of the running revision; every problem is named at once."""
    members = [("appspec.yml", "file", (PATHS_APPSPEC % (source, location)).encode()),
               ("scripts/after.sh", "file", b"#!/bin/sh\n")] + members
    path = _tar(tmp_path / "rev.tar", members)
    with pytest.raises(RevisionError) as err:
        appspec_from_archive(path, shown="my-revision.tar")
    assert "my-revision.tar" in str(err.value)
    if problems is not None:
        assert str(err.value).startswith("the revision my-revision.tar cannot deploy, %d problem" % len(problems))
        for problem in problems:
            assert problem in str(err.value)
        assert len(err.value.details["problems"]) == len(problems)


def test_a_hoisted_revision_is_looked_up_below_its_top_folder(tmp_path):
    """The agent lifts a single top folder: paths are relative to it, and links resolve inside it."""
    appspec = (PATHS_APPSPEC % ("app", "scripts/after.sh")).encode()
    ok = [("top/appspec.yml", "file", appspec), ("top/app/x", "file", b"x"), ("top/scripts/after.sh", "file", b"")]
    assert appspec_from_archive(_tar(tmp_path / "ok.tar", ok)).appspec["files"][0]["source"] == "app"
    named_with_top = [("top/appspec.yml", "file", (PATHS_APPSPEC % ("top/app", "scripts/after.sh")).encode()),
                      ("top/app/x", "file", b"x"), ("top/scripts/after.sh", "file", b"")]
    with pytest.raises(RevisionError, match=r"files\[0\].source 'top/app' does not exist"):
        appspec_from_archive(_tar(tmp_path / "named-with-top.tar", named_with_top))
    up = [("top/appspec.yml", "file", appspec), ("top/app/x", "file", b"x"), ("top/scripts/real.sh", "file", b""),
          ("top/scripts/after.sh", "symlink", "../scripts/real.sh")]
    assert appspec_from_archive(_tar(tmp_path / "up.tar", up)).appspec["hooks"]["AfterInstall"][0]["location"] == \
        "scripts/after.sh"


def test_a_directory_revision_is_checked_before_any_host(tmp_path):
    root = tmp_path / "rev"
    (root / "scripts").mkdir(parents=True)
    (root / "scripts" / "after.sh").write_text("#!/bin/sh\n")
    (root / "appspec.yml").write_text(PATHS_APPSPEC % ("app", "scripts/after.sh"))
    with pytest.raises(RevisionError, match=r"files\[0\].source 'app' does not exist in the revision"):
        resolve_local(str(root), cache=str(tmp_path / "cache"))
    (root / "app").mkdir()
    assert resolve_local(str(root), cache=str(tmp_path / "cache")).appspec.appspec["files"][0]["source"] == "app"
