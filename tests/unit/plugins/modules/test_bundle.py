# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""bundle's main(), driven through patch_module_args with real files."""

from __future__ import annotations

import json
import os
import typing as t

import pytest
from ansible.module_utils.testing import patch_module_args

from bundle_fixtures import make_archive, parsed_appspec

from ansible_collections.appspec.deploy.plugins.module_utils._spec import read_appspec_json
from ansible_collections.appspec.deploy.plugins.modules import bundle

APPSPEC = "version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - location: bin/tool\n"
# What the action plugin sends: the AppSpec as the controller parsed it.
PARSED = parsed_appspec(APPSPEC).as_dict()


def run(capsys: t.Any, args: t.Dict[str, t.Any]) -> t.Dict[str, t.Any]:
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            bundle.main()
    return json.loads(capsys.readouterr().out)


def make_revision(path: t.Any, setuid: bool = False) -> str:
    return make_archive(path, {"appspec.yml": APPSPEC, "bin/tool": (b"x", 0o4755 if setuid else 0o755)})[1]


def base(tmp_path: t.Any, **kw: t.Any) -> t.Dict[str, t.Any]:
    args = {"deployment_id": "d-AAAAAAAA1", "application_name": "app", "deployment_group_name": "prod",
            "root_dir": str(tmp_path / "root"), "remote_src": True, "appspec": PARSED}
    args.update(kw)
    return args


def test_stage_then_unchanged(capsys: t.Any, tmp_path: t.Any) -> None:
    sha = make_revision(tmp_path / "rev.tgz")
    first = run(capsys, base(tmp_path, revision=str(tmp_path / "rev.tgz"), sha256=sha, _ansible_diff=True))
    assert first["changed"] is True and first["sha256"] == sha and first["bundle_type"] == "tgz"
    assert first["diff"] == {"before": {"deployment_dir": first["deployment_dir"], "sha256": None},
                             "after": {"deployment_dir": first["deployment_dir"], "sha256": sha}}
    assert os.stat(os.path.join(first["archive_dir"], "bin/tool")).st_mode & 0o7777 == 0o755
    assert first["appspec"] == PARSED["appspec"] and first["compute_platform"] == "server"
    assert read_appspec_json(first["deployment_dir"]).as_dict() == PARSED  # what lifecycle_event reads
    second = run(capsys, base(tmp_path, revision=str(tmp_path / "rev.tgz"), sha256=sha))
    assert (second["changed"], second["reused"], second["bytes_transferred"]) == (False, True, 0)
    assert "diff" not in second


def test_allow_setuid_and_size_limit(capsys: t.Any, tmp_path: t.Any) -> None:
    make_revision(tmp_path / "rev.tgz", setuid=True)
    kept = run(capsys, base(tmp_path, revision=str(tmp_path / "rev.tgz"), allow_setuid=True))
    assert os.stat(os.path.join(kept["archive_dir"], "bin/tool")).st_mode & 0o7777 == 0o4755
    small = run(capsys, base(tmp_path, revision=str(tmp_path / "rev.tgz"), root_dir=str(tmp_path / "other"),
                             max_unpacked_size="10B"))
    assert small["failed"] is True and "more than the limit of 10 bytes" in small["msg"]
    bad = run(capsys, base(tmp_path, revision=str(tmp_path / "rev.tgz"), max_unpacked_size="lots"))
    assert bad["failed"] is True and bad["msg"].startswith("max_unpacked_size:")


def test_probe_failure_carries_revision_missing(capsys: t.Any, tmp_path: t.Any) -> None:
    result = run(capsys, base(tmp_path, revision="", sha256="a" * 64))
    assert result["failed"] is True and result["revision_missing"] is True
    assert result["deployment_dir"].endswith("/d-AAAAAAAA1")


def test_controller_path_without_action_plugin_is_refused(capsys: t.Any, tmp_path: t.Any) -> None:
    result = run(capsys, base(tmp_path, revision="/nonexistent/rev.tgz", remote_src=False))
    assert result["failed"] is True and "transferred by the bundle action plugin" in result["msg"]


def test_check_mode(capsys: t.Any, tmp_path: t.Any) -> None:
    make_revision(tmp_path / "rev.tgz")
    result = run(capsys, base(tmp_path, revision=str(tmp_path / "rev.tgz"), _ansible_check_mode=True))
    assert result["changed"] is True and "would fetch" in result["msg"]
    assert not (tmp_path / "root").exists()


def test_upload_in_the_task_tmpdir_is_consumed(capsys: t.Any, tmp_path: t.Any) -> None:
    """The action plugin's upload is moved (not copied) and its temp dir removed by the module."""
    tmpdir = tmp_path / "ansible-tmp-1"
    tmpdir.mkdir()
    sha = make_revision(tmpdir / "bundle-upload")
    result = run(capsys, base(tmp_path, revision=str(tmpdir / "bundle-upload"), sha256=sha,
                              _ansible_tmpdir=str(tmpdir)))
    assert result["changed"] is True and not tmpdir.exists()


def test_the_appspec_comes_from_the_controller(capsys: t.Any, tmp_path: t.Any) -> None:
    sha = make_revision(tmp_path / "rev.tgz")
    missing = run(capsys, dict(base(tmp_path, revision=str(tmp_path / "rev.tgz"), sha256=sha), appspec=None))
    assert missing["failed"] is True and missing["msg"].startswith("appspec is missing: the AppSpec is parsed on the controller")
    junk = run(capsys, base(tmp_path, revision=str(tmp_path / "rev.tgz"), sha256=sha, appspec={"version": "0.0", "os": "linux"}))
    assert junk["failed"] is True and junk["msg"].startswith("appspec is not a normalized AppSpec")
    assert not (tmp_path / "root").exists()


def test_bundle_env_of_a_controller_fetch_is_kept(capsys: t.Any, tmp_path: t.Any) -> None:
    sha = make_revision(tmp_path / "rev.tgz")
    env = {"BUNDLE_COMMIT": "0123456789abcdef0123456789abcdef01234567"}
    result = run(capsys, base(tmp_path, revision=str(tmp_path / "rev.tgz"), sha256=sha, bundle_env=env))
    assert result["changed"] is True and result["bundle_env"] == env


@pytest.mark.parametrize("revision", ["s3://bucket/app.zip", "git@example.com:team/app.git"])
def test_s3_and_git_are_not_fetched_by_hosts(capsys: t.Any, tmp_path: t.Any, revision: str) -> None:
    result = run(capsys, base(tmp_path, revision=revision, remote_src=True))
    assert result["failed"] is True and "s3/git revisions are fetched by the controller" in result["msg"]
