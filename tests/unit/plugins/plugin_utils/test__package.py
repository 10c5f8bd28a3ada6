# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The build stage: every problem of a revision listed at once, reproducible archives, publishing (real servers)."""

from __future__ import annotations

import hashlib
import http.server
import os
import shutil
import subprocess
import tarfile
import threading
import zipfile

import pytest

from bundle_fixtures import moto_endpoint, s3, write_files  # noqa: F401 pylint: disable=unused-import

from ansible_collections.appspec.deploy.plugins.module_utils._archive import plan_archive
from ansible_collections.appspec.deploy.plugins.plugin_utils import _package

APPSPEC = """
version: 0.0
os: linux
files:
  - source: app
    destination: /opt/app
hooks:
  ApplicationStart:
    - location: scripts/start.sh
"""


def revision(path, **extra):
    files = {"appspec.yml": APPSPEC, "app/index.html": "hello\n", "app/sub/data.txt": "data\n",
             "scripts/start.sh": "#!/bin/sh\ntrue\n"}
    files.update(extra)
    return write_files(str(path), files)


def build(src, dest_dir, fmt, **kwargs):
    built = _package.build_archive(str(src), str(dest_dir), fmt, **kwargs)
    with open(built.path, "rb") as handle:
        assert hashlib.sha256(handle.read()).hexdigest() == built.sha256
    return built


@pytest.mark.parametrize("fmt", _package.FORMATS)
def test_the_same_directory_gives_the_same_sha256_whatever_its_times_owner_and_copy(tmp_path, fmt):
    first = revision(tmp_path / "one")
    one = build(first, tmp_path / "out1", fmt)
    # A copy elsewhere, other mtimes, a group-writable file, a hardlink: the same content, the same bytes.
    second = tmp_path / "two"
    shutil.copytree(first, str(second))
    for here, dirs, files in os.walk(str(second)):
        for name in dirs + files:
            os.utime(os.path.join(here, name), (1700000000, 1700000000))
    os.chmod(str(second / "app" / "index.html"), 0o664)
    two = build(second, tmp_path / "out2", fmt)
    assert one.sha256 == two.sha256 and one.entries == two.entries == 7
    # Content matters, and so does the exec bit.
    os.chmod(str(second / "app" / "index.html"), 0o775)
    assert build(second, tmp_path / "out3", fmt).sha256 != one.sha256
    (second / "app" / "index.html").write_text("changed\n")
    assert build(second, tmp_path / "out4", fmt).sha256 != one.sha256


def test_tar_gz_entries_are_normalized(tmp_path):
    src = revision(tmp_path / "rev")
    os.symlink("index.html", os.path.join(src, "app", "link.html"))
    built = build(src, tmp_path / "out", "tar.gz")
    with open(built.path, "rb") as handle:
        header = handle.read(10)
    assert header[3] == 0 and header[4:8] == b"\0\0\0\0"  # no FNAME flag, mtime 0
    with tarfile.open(built.path) as archive:
        members = archive.getmembers()
    assert [m.name for m in members] == sorted(m.name for m in members)
    assert {(m.uid, m.gid, m.uname, m.gname, m.mtime) for m in members} == {(0, 0, "", "", _package.DEFAULT_EPOCH)}
    modes = {m.name: (m.type, m.mode, m.linkname) for m in members}
    assert modes["scripts/start.sh"] == (tarfile.REGTYPE, 0o755, "")
    assert modes["app/index.html"] == (tarfile.REGTYPE, 0o644, "")
    assert modes["app"] == (tarfile.DIRTYPE, 0o755, "")
    assert modes["app/link.html"] == (tarfile.SYMTYPE, 0o777, "index.html")
    # Hosts accept it (the same checks as before unpacking a revision), and GNU tar reads it.
    assert plan_archive(built.path).bundle_type == "tgz"
    listing = subprocess.run(["tar", "-tzvf", built.path], stdout=subprocess.PIPE, check=True).stdout.decode()
    assert "scripts/start.sh" in listing and "1980-01-01" in listing


def test_zip_entries_are_normalized_and_source_date_epoch_is_used(tmp_path, monkeypatch):
    src = revision(tmp_path / "rev")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1704067200")  # 2024-01-01
    built = build(src, tmp_path / "out", "zip")
    with zipfile.ZipFile(built.path) as archive:
        infos = archive.infolist()
        assert archive.testzip() is None
    assert {i.date_time for i in infos} == {(2024, 1, 1, 0, 0, 0)}
    assert {i.filename: i.external_attr >> 16 for i in infos}["scripts/start.sh"] == 0o100755
    assert plan_archive(built.path).bundle_type == "zip"
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1704153600")  # a day later (zip times have 2 s steps)
    assert build(src, tmp_path / "out2", "zip").sha256 != built.sha256
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(_package.PackageError, match="SOURCE_DATE_EPOCH"):
        build(src, tmp_path / "out3", "zip")


def test_every_problem_is_listed_at_once(tmp_path):
    src = write_files(str(tmp_path / "bad"), {
        "appspec.yml": """
            version: 0.0
            os: linux
            file_exists_behavior: SOMETIMES
            files:
              - source: missing-dir
                destination: /opt/app
              - source: app
                destination: /opt/app
            hooks:
              ApplicationStart:
                - location: scripts/missing.sh
                - location: scripts/there.sh
              ValidateService:
                - location: scripts/gone.sh
                  timeout: 10
        """,
        "app/x": "x\n",
        "scripts/there.sh": "#!/bin/sh\n",
    })
    with pytest.raises(_package.PackageError) as err:
        _package.check_revision(src)
    problems = err.value.problems
    assert len(problems) == 4, problems
    assert problems[0].startswith("appspec.yml: line 3 col 23 file_exists_behavior: ") and "SOMETIMES" in problems[0]
    assert problems[1:] == [
        "appspec.yml: files[0].source 'missing-dir' does not exist in the revision",
        "appspec.yml: hooks.ApplicationStart[0].location 'scripts/missing.sh': the script does not exist in the revision",
        "appspec.yml: hooks.ValidateService[0].location 'scripts/gone.sh': the script does not exist in the revision",
    ]
    assert "4 problems" in str(err.value)
    # The same paths in a valid AppSpec: the same path problems, found by the parser's normalized AppSpec.
    with open(os.path.join(src, "appspec.yml")) as handle:
        text = handle.read().replace("file_exists_behavior: SOMETIMES\n", "")
    with open(os.path.join(src, "appspec.yml"), "w") as handle:
        handle.write(text)
    with pytest.raises(_package.PackageError) as err:
        _package.check_revision(src)
    assert err.value.problems == problems[1:]


def test_an_invalid_appspec_lists_each_of_its_errors(tmp_path):
    src = write_files(str(tmp_path / "bad"), {"appspec.yml": """
        version: 0.0
        os: windows
        hooks:
          AfterInstall:
            - location: scripts/a.sh
              timeout: soon
    """})
    with pytest.raises(_package.PackageError) as err:
        _package.check_revision(src)
    assert len(err.value.problems) == 3, err.value.problems
    assert "line 2" in err.value.problems[0] and "os" in err.value.problems[0]
    assert "line 6" in err.value.problems[1] and "timeout" in err.value.problems[1]
    assert "hooks.AfterInstall[0].location 'scripts/a.sh': the script does not exist" in err.value.problems[2]
    with pytest.raises(_package.PackageError, match="no AppSpec file"):
        _package.check_revision(write_files(str(tmp_path / "empty"), {"README": "x"}))


def test_install_writes_the_archive_and_its_sha256_once(tmp_path):
    src = revision(tmp_path / "rev")
    dest = str(tmp_path / "dist" / "app.tar.gz")
    built = build(src, tmp_path / "dist", "tar.gz")
    assert _package.install(built, dest) is True
    assert open(dest + ".sha256").read() == "%s  app.tar.gz\n" % built.sha256
    assert subprocess.run(["sha256sum", "-c", "app.tar.gz.sha256"], cwd=str(tmp_path / "dist"), check=False).returncode == 0
    again = build(src, tmp_path / "dist", "tar.gz")
    assert _package.install(again, dest) is False
    assert sorted(os.listdir(str(tmp_path / "dist"))) == ["app.tar.gz", "app.tar.gz.sha256"]  # no temp file left


def test_archive_format():
    assert _package.archive_format("a/app.zip") == "zip"
    assert _package.archive_format("a/app.TGZ") == "tar.gz"
    assert _package.archive_format("a/app.bin", "zip") == "zip"
    with pytest.raises(_package.PackageError, match="cannot tell"):
        _package.archive_format("a/app.tar")


# --- publishing -------------------------------------------------------------------------------------


def test_publish_to_a_directory(tmp_path):
    src = revision(tmp_path / "rev")
    dest = str(tmp_path / "dist" / "app.zip")
    built = build(src, tmp_path / "dist", "zip")
    _package.install(built, dest)
    published = _package.publish(dest, built.sha256, str(tmp_path / "repo") + "/")
    assert published["location"] == str(tmp_path / "repo" / "app.zip")
    assert open(published["location"], "rb").read() == open(dest, "rb").read()
    assert open(published["location"] + ".sha256").read() == "%s  app.zip\n" % built.sha256
    variables = _package.deploy_variables(published["location"], built.sha256, "dir")
    assert variables == {"appspec_revision": published["location"], "appspec_revision_sha256": built.sha256}


class _PutHandler(http.server.BaseHTTPRequestHandler):
    def do_PUT(self):  # noqa: N802 (http.server API)
        if self.headers.get("Authorization") != "Bearer t":
            self.send_error(401)
            return
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with open(os.path.join(self.server.root, self.path.strip("/").replace("/", "_")), "wb") as handle:
            handle.write(body)
        self.send_response(201)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_publish_with_http_put(tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _PutHandler)
    server.root = str(tmp_path)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        src = revision(tmp_path / "rev")
        dest = str(tmp_path / "dist" / "app.tar.gz")
        built = build(src, tmp_path / "dist", "tar.gz")
        _package.install(built, dest)
        url = "http://127.0.0.1:%d/revisions/" % server.server_address[1]
        published = _package.publish(dest, built.sha256, url, headers={"Authorization": "Bearer t"})
        assert published["location"] == url + "app.tar.gz"
        assert open(str(tmp_path / "revisions_app.tar.gz"), "rb").read() == open(dest, "rb").read()
        assert open(str(tmp_path / "revisions_app.tar.gz.sha256")).read().startswith(built.sha256)
        with pytest.raises(_package.PackageError, match="HTTP 401"):
            _package.publish(dest, built.sha256, url)
    finally:
        server.shutdown()
        server.server_close()


def test_publish_to_s3(s3, tmp_path):
    s3.create_bucket(Bucket="builds")
    s3.put_bucket_versioning(Bucket="builds", VersioningConfiguration={"Status": "Enabled"})
    src = revision(tmp_path / "rev")
    dest = str(tmp_path / "dist" / "app.zip")
    built = build(src, tmp_path / "dist", "zip")
    _package.install(built, dest)
    published = _package.publish(dest, built.sha256, "s3://builds/app/", s3_endpoint_url=s3.endpoint, s3_region="us-east-1")
    assert published["location"] == "s3://builds/app/app.zip" and published["version_id"]
    head = s3.head_object(Bucket="builds", Key="app/app.zip")
    assert head["Metadata"]["sha256"] == built.sha256
    body = s3.get_object(Bucket="builds", Key="app/app.zip")["Body"].read()
    assert hashlib.sha256(body).hexdigest() == built.sha256
    variables = _package.deploy_variables(published["location"], built.sha256, "s3", version_id=published["version_id"],
                                          s3_endpoint_url=s3.endpoint)
    assert variables["appspec_s3_version_id"] == published["version_id"]
