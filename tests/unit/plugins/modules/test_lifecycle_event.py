# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""lifecycle_event's main() end to end, with real revisions, scripts, records and locks."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
import time

import pytest

from ansible.module_utils.testing import patch_module_args

from bundle_fixtures import make_archive, parsed_appspec, small_filesystem, write_revision

from ansible_collections.appspec.deploy.plugins.module_utils import _archive, _releases
from ansible_collections.appspec.deploy.plugins.module_utils._layout import DeploymentRoot, deployment_group_id
from ansible_collections.appspec.deploy.plugins.module_utils._lock import HostLock
from ansible_collections.appspec.deploy.plugins.module_utils._spec import read_appspec_json
from ansible_collections.appspec.deploy.plugins.modules import lifecycle_event

GID = deployment_group_id("webapp", "production")


def run_module(capsys, **args):
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            lifecycle_event.main()
    return json.loads(capsys.readouterr().out)


def stage(root: DeploymentRoot, deployment_id: str, appspec: str, files: dict, appspec_json: bool = True) -> str:
    """What the bundle module leaves behind: <root>/<gid>/<id>/deployment-archive and appspec.json beside it,
    the AppSpec parsed by the controller's parser (without appspec.json: as the CodeDeploy agent leaves it)."""
    return write_revision(root.archive_dir(GID, deployment_id), files, appspec, appspec_json=appspec_json)


@pytest.fixture
def env(tmp_path):
    root = DeploymentRoot(str(tmp_path / "root"))
    trace = tmp_path / "trace"
    dest = tmp_path / "dest"
    appspec = """
        version: 0.0
        os: linux
        files:
          - source: app
            destination: %s
        hooks:
          ApplicationStop:
            - location: scripts/hook.sh
              timeout: 10
          BeforeInstall:
            - location: scripts/hook.sh
              timeout: 10
          AfterInstall:
            - location: scripts/hook.sh
              timeout: 10
          ApplicationStart:
            - location: scripts/hook.sh
              timeout: 10
          ValidateService:
            - location: scripts/validate.sh
              timeout: 10
    """ % dest
    scripts = {
        "scripts/hook.sh": '#!/bin/sh\necho "$DEPLOYMENT_ID $LIFECYCLE_EVENT $(cat %s/VERSION 2>/dev/null)" >> %s\n' % (dest, trace),
        "scripts/validate.sh": '#!/bin/sh\ngrep -q good %s/VERSION || { echo "bad version" >&2; exit 2; }\n' % dest,
    }

    def files_of(version):
        files = dict(scripts)
        files["app/VERSION"] = version + "\n"
        return files

    def make(deployment_id, version="good", appspec_json=True):
        return stage(root, deployment_id, appspec, files_of(version), appspec_json)

    make.appspec = appspec  # for revisions staged by the module itself (DownloadBundle)
    make.files = files_of
    return root, trace, dest, make


def common(root, deployment_id, **extra):
    args = dict(deployment_id=deployment_id, application_name="webapp", deployment_group_name="production", root_dir=root.root_dir)
    args.update(extra)
    return args


FULL = ["BeforeInstall", "Install", "AfterInstall", "ApplicationStart", "ValidateService"]


def test_two_deployments_in_place(capsys, env):
    root, trace, dest, make = env
    make("d-FIRST0001", "good 1")
    first = run_module(capsys, events=["ApplicationStop"], lock="acquire", **common(root, "d-FIRST0001"))
    assert first["events"][0]["status"] == "skipped" and first["lock"]["deployment_id"] == "d-FIRST0001"
    result = run_module(capsys, events=FULL, mark_success=True, lock="release", **common(root, "d-FIRST0001"))
    assert not result.get("failed"), result
    assert [e["status"] for e in result["events"]] == ["succeeded"] * 5
    assert result["events"][1]["install"]["changed"] is True
    assert result["deployment_group_id"] == GID and result["lock"] is None
    assert (dest / "VERSION").read_text() == "good 1\n"
    assert root.read_record(GID, "last_successful_install") == root.deployment_dir(GID, "d-FIRST0001")
    assert root.read_record(GID, "last_good_deployment") == root.deployment_dir(GID, "d-FIRST0001")
    assert not os.path.exists(os.path.join(root.root_dir, "locks", "%s.lock" % GID))

    make("d-SECOND001", "good 2")
    stop = run_module(capsys, events=["ApplicationStop"], **common(root, "d-SECOND001"))
    assert stop["events"][0]["status"] == "succeeded"
    assert stop["events"][0]["revision"] == root.archive_dir(GID, "d-FIRST0001")
    run_module(capsys, events=FULL, mark_success=True, **common(root, "d-SECOND001"))
    assert trace.read_text().splitlines() == [
        "d-FIRST0001 BeforeInstall ", "d-FIRST0001 AfterInstall good 1", "d-FIRST0001 ApplicationStart good 1",
        "d-SECOND001 ApplicationStop good 1",  # the previous revision's script, the new deployment's env
        "d-SECOND001 BeforeInstall good 1", "d-SECOND001 AfterInstall good 2", "d-SECOND001 ApplicationStart good 2",
    ]
    log = open(root.scripts_log(GID, "d-SECOND001")).read()
    assert log.index("LifecycleEvent - ApplicationStop") < log.index("LifecycleEvent - BeforeInstall")
    assert "Script - scripts/validate.sh" in log


def test_failed_validation_reports_the_event_and_keeps_last_good(capsys, env):
    root, _trace, _dest, make = env
    make("d-GOOD00001")
    run_module(capsys, events=FULL, mark_success=True, **common(root, "d-GOOD00001"))
    make("d-BAD000001", "broken")
    result = run_module(capsys, events=FULL, mark_success=True, lock="release", **common(root, "d-BAD000001"))
    assert result["failed"] is True
    assert result["failed_event"] == "ValidateService"
    assert "scripts/validate.sh failed with exit code 2" in result["msg"]
    assert result["events"][-1]["scripts"][0]["output_tail"] == "bad version\n"
    # agent semantics: Install succeeded, so the failed revision is the last successful install...
    assert root.read_record(GID, "last_successful_install") == root.deployment_dir(GID, "d-BAD000001")
    # ...but the rollback target stays the last good one
    assert root.read_record(GID, "last_good_deployment") == root.deployment_dir(GID, "d-GOOD00001")
    assert result["lock"] is None


def test_rollback_runs_an_older_archive(capsys, env):
    root, trace, dest, make = env
    good = make("d-GOOD00001", "good old")
    run_module(capsys, events=FULL, mark_success=True, **common(root, "d-GOOD00001"))
    make("d-BAD000001", "broken")
    run_module(capsys, events=FULL, **common(root, "d-BAD000001"))
    trace.write_text("")
    result = run_module(capsys, events=["Install", "ApplicationStart", "ValidateService"], archive_dir=good,
                        **common(root, "d-BAD000001"))
    assert not result.get("failed"), result
    assert (dest / "VERSION").read_text() == "good old\n"
    assert trace.read_text() == "d-BAD000001 ApplicationStart good old\n"
    assert root.read_record(GID, "last_successful_install") == root.deployment_dir(GID, "d-GOOD00001")


def test_check_mode_runs_nothing(capsys, env):
    root, trace, dest, make = env
    archive = make("d-CHECK0001")
    result = run_module(capsys, events=FULL, mark_success=True, _ansible_check_mode=True, **common(root, "d-CHECK0001"))
    assert not result.get("failed"), result
    assert result["changed"] is True
    assert [e["status"] for e in result["events"]] == ["skipped"] * 5
    # Install says what it would write: the AppSpec's files, from the staged revision.
    assert result["events"][1]["install"]["changed"] is True
    assert os.path.join(str(dest), "VERSION") in json.dumps(result["events"][1]["install"])
    assert result["events"][0]["scripts"][0]["path"] == os.path.join(archive, "scripts/hook.sh")
    assert result["events"][0]["scripts"][0]["runas"] == "root"
    assert not trace.exists() and not dest.exists()
    assert root.read_record(GID, "last_successful_install") is None
    assert root.read_record(GID, "last_good_deployment") is None


def test_check_mode_previews_hooks_of_a_revision_it_did_not_stage(capsys, env):
    """A blue/green --check run previews BeforeAllowTraffic in a task of its own, after a DownloadBundle that staged
    nothing: the hooks are planned from the AppSpec the controller parsed, and nothing runs."""
    root, trace, dest, make = env
    appspec = parsed_appspec(make.appspec).as_dict()
    result = run_module(capsys, events=["ValidateService"], appspec=appspec, _ansible_check_mode=True,
                        **common(root, "d-CHECK0002"))
    assert not result.get("failed"), result
    assert [e["status"] for e in result["events"]] == ["skipped"]
    assert result["events"][0]["scripts"][0]["path"].endswith("d-CHECK0002/deployment-archive/scripts/validate.sh")
    assert not trace.exists() and not os.path.exists(root.archive_dir(GID, "d-CHECK0002"))
    # Outside check mode the same call still needs the staged revision.
    failed = run_module(capsys, events=["ValidateService"], appspec=appspec, **common(root, "d-CHECK0002"))
    assert failed["failed"] and "the revision is not staged" in failed["msg"]


def test_lock_held_by_another_deployment_fails_fast(capsys, env):
    root, trace, _dest, make = env
    make("d-ONE000001")
    make("d-TWO000001")
    run_module(capsys, events=["BeforeInstall"], lock="acquire", **common(root, "d-ONE000001"))
    result = run_module(capsys, events=["BeforeInstall"], lock="acquire", **common(root, "d-TWO000001"))
    assert result["failed"] is True and "d-ONE000001" in result["msg"]
    assert trace.read_text().splitlines() == ["d-ONE000001 BeforeInstall "]
    released = run_module(capsys, events=["AfterInstall"], lock="release", **common(root, "d-ONE000001"))
    assert released["lock"] is None
    again = run_module(capsys, events=["BeforeInstall"], lock="acquire", **common(root, "d-TWO000001"))
    assert again["lock"]["deployment_id"] == "d-TWO000001"


def test_stale_lock_is_broken_only_when_asked(capsys, env):
    root, trace, _dest, make = env
    make("d-ONE000001")
    make("d-TWO000001")
    HostLock(root.root_dir, GID).acquire("d-ONE000001", ttl=1)
    time.sleep(1.1)  # the lock of d-ONE000001 is now past its expiry
    refused = run_module(capsys, events=["BeforeInstall"], lock="acquire", **common(root, "d-TWO000001"))
    assert refused["failed"] is True and "d-ONE000001" in refused["msg"]
    taken = run_module(capsys, events=["BeforeInstall"], lock="acquire", break_stale_lock=True, **common(root, "d-TWO000001"))
    assert not taken.get("failed"), taken
    assert taken["lock"]["deployment_id"] == "d-TWO000001"
    assert trace.read_text().splitlines() == ["d-TWO000001 BeforeInstall "]


def test_ignore_application_stop_failures(capsys, env, monkeypatch):
    shown = []
    # module.warn's storage depends on what other tests imported (controller or not): capture directly
    monkeypatch.setattr(lifecycle_event.AnsibleModule, "warn", lambda self, warning: shown.append(warning))
    root, _trace, _dest, make = env
    make("d-OLD000001")
    archive = root.archive_dir(GID, "d-OLD000001")
    with open(os.path.join(archive, "scripts/hook.sh"), "a") as handle:
        handle.write('[ "$LIFECYCLE_EVENT" = ApplicationStop ] && exit 9\nexit 0\n')
    run_module(capsys, events=FULL, **common(root, "d-OLD000001"))
    make("d-NEW000001")
    failed = run_module(capsys, events=["ApplicationStop"], **common(root, "d-NEW000001"))
    assert failed["failed"] is True and "ignore_application_stop_failures" in failed["msg"]
    ignored = run_module(capsys, events=["ApplicationStop"], ignore_application_stop_failures=True, **common(root, "d-NEW000001"))
    assert not ignored.get("failed") and ignored["events"][0]["ignored"] is True
    assert len(shown) == 1 and shown[0].startswith("ignored (ignore_application_stop_failures): ApplicationStop:")


def test_bad_arguments(capsys, env):
    root, _trace, _dest, make = env
    make("d-ARGS00001")
    result = run_module(capsys, events=["ValidateService", "ApplicationStart"], **common(root, "d-ARGS00001"))
    assert result["failed"] and "out of place" in result["msg"]
    result = run_module(capsys, events=["AfterInstall"], **common(root, "../escape"))
    assert result["failed"] and "deployment id" in result["msg"]


def test_release_mode_switches_current_after_after_install(capsys, tmp_path):
    root = DeploymentRoot(str(tmp_path / "root"))
    release_root = tmp_path / "srv"
    trace = tmp_path / "trace"
    appspec = """
        version: 0.0
        os: linux
        files:
          - source: app
            destination: %s/current
        hooks:
          AfterInstall:
            - location: scripts/hook.sh
              timeout: 10
          ApplicationStart:
            - location: scripts/hook.sh
              timeout: 10
    """ % release_root
    hook = ('#!/bin/sh\necho "$LIFECYCLE_EVENT dir=$RELEASE_DIR prev=$PREVIOUS_RELEASE_DIR root=$RELEASE_ROOT '
            'current=$(cat $RELEASE_ROOT/current/VERSION 2>/dev/null)" >> %s\n' % trace)
    events = ["Install", "AfterInstall", "ApplicationStart"]
    for deployment_id, version in (("d-REL000001", "v1"), ("d-REL000002", "v2")):
        stage(root, deployment_id, appspec, {"scripts/hook.sh": hook, "app/VERSION": version + "\n"})
        result = run_module(capsys, events=events, release_root=str(release_root), mark_success=True, keep_releases=1,
                            **common(root, deployment_id))
        assert not result.get("failed"), result
        assert result["release_dir"] == str(release_root / "releases" / deployment_id)
        assert result["events"][1]["switch"]["changed"] is True
    first, second = str(release_root / "releases" / "d-REL000001"), str(release_root / "releases" / "d-REL000002")
    assert result["previous_release_dir"] == first
    assert trace.read_text().splitlines() == [
        "AfterInstall dir=%s prev= root=%s current=" % (first, release_root),
        "ApplicationStart dir=%s prev= root=%s current=v1" % (first, release_root),
        "AfterInstall dir=%s prev=%s root=%s current=v1" % (second, first, release_root),  # not switched yet
        "ApplicationStart dir=%s prev=%s root=%s current=v2" % (second, first, release_root),
    ]
    assert os.readlink(str(release_root / "current")) == "releases/d-REL000002"
    assert (release_root / "releases" / "d-REL000001").is_dir()  # the previous good release survives pruning


def test_release_mode_rollback_sees_the_older_revisions_release(capsys, tmp_path):
    """Re-running an older revision's hooks (archive_dir) gives them that revision's RELEASE_DIR."""
    root = DeploymentRoot(str(tmp_path / "root"))
    release_root = tmp_path / "srv"
    trace = tmp_path / "trace"
    appspec = """
        version: 0.0
        os: linux
        hooks:
          ApplicationStart:
            - location: scripts/hook.sh
              timeout: 10
    """
    hook = '#!/bin/sh\necho "$DEPLOYMENT_ID dir=$RELEASE_DIR" >> %s\n' % trace
    for deployment_id in ("d-REL000001", "d-REL000002"):
        stage(root, deployment_id, appspec, {"scripts/hook.sh": hook})
        result = run_module(capsys, events=["Install", "ApplicationStart"], release_root=str(release_root),
                            mark_success=True, **common(root, deployment_id))
        assert not result.get("failed"), result
    older = root.archive_dir(GID, "d-REL000001")
    result = run_module(capsys, events=["ApplicationStart"], release_root=str(release_root), archive_dir=older,
                        mark_success=True, **common(root, "d-ROLLBACK1"))
    assert not result.get("failed"), result
    assert result["release_dir"] == str(release_root / "releases" / "d-REL000001")
    assert trace.read_text().splitlines()[-1] == "d-ROLLBACK1 dir=%s" % (release_root / "releases" / "d-REL000001")
    assert not (release_root / "releases" / "d-ROLLBACK1").exists()


def test_a_previous_revision_of_the_agent_needs_its_appspec_from_the_controller(capsys, env):
    """No appspec.json beside the last successful revision: the module asks (the action plugin answers)."""
    root, trace, _dest, make = env
    make("d-AGENT0001", "agent", appspec_json=False)
    root.write_record(GID, "last_successful_install", root.deployment_dir(GID, "d-AGENT0001"))
    make("d-NEW000001")
    needed = run_module(capsys, events=["ApplicationStop", "BeforeInstall"], lock="acquire", **common(root, "d-NEW000001"))
    assert needed["failed"] is True and "has no appspec.json" in needed["msg"]
    assert needed["appspec_needed"] == {"archive_dir": root.archive_dir(GID, "d-AGENT0001"),
                                        "deployment_dir": root.deployment_dir(GID, "d-AGENT0001"),
                                        "option": "previous_appspec"}
    assert not trace.exists()
    # The action plugin runs the module again with the AppSpec it parsed from that revision's appspec.yml
    # (the lock this deployment took is re-entrant).
    previous = parsed_appspec(open(os.path.join(root.archive_dir(GID, "d-AGENT0001"), "appspec.yml")).read())
    done = run_module(capsys, events=["ApplicationStop", "BeforeInstall"], lock="acquire",
                      previous_appspec=previous.as_dict(), **common(root, "d-NEW000001"))
    assert not done.get("failed"), done
    assert [e["status"] for e in done["events"]] == ["succeeded", "succeeded"]
    assert done["events"][0]["revision"] == root.archive_dir(GID, "d-AGENT0001")
    assert done["lock"]["deployment_id"] == "d-NEW000001"
    assert trace.read_text().splitlines() == ["d-NEW000001 ApplicationStop ", "d-NEW000001 BeforeInstall "]


def test_previous_appspec_error_and_junk(capsys, env):
    root, trace, _dest, make = env
    make("d-AGENT0001", appspec_json=False)
    root.write_record(GID, "last_successful_install", root.deployment_dir(GID, "d-AGENT0001"))
    make("d-NEW000001")
    error = "the last successful revision's AppSpec cannot be used: appspec.yml: line 1 col 1: broken"
    failed = run_module(capsys, events=["ApplicationStop"], previous_appspec_error=error, **common(root, "d-NEW000001"))
    assert failed["failed"] is True and failed["failed_event"] == "ApplicationStop"
    assert failed["msg"].startswith("ApplicationStop: " + error) and "ignore_application_stop_failures" in failed["msg"]
    ignored = run_module(capsys, events=["ApplicationStop"], previous_appspec_error=error,
                         ignore_application_stop_failures=True, **common(root, "d-NEW000001"))
    assert not ignored.get("failed") and ignored["events"][0]["ignored"] is True
    junk = run_module(capsys, events=["ApplicationStop"], previous_appspec={"version": 0.0}, **common(root, "d-NEW000001"))
    assert junk["failed"] is True and junk["msg"].startswith("previous_appspec is not a normalized AppSpec")
    assert not trace.exists()


def test_install_needs_the_appspec_json_of_the_revision(capsys, env):
    root, trace, dest, make = env
    make("d-NOJSON001", appspec_json=False)
    result = run_module(capsys, events=["Install"], **common(root, "d-NOJSON001"))
    assert result["failed"] is True and "has no normalized AppSpec" in result["msg"]
    assert not dest.exists() and not trace.exists()


# --- DownloadBundle in the same call: a host's whole lifecycle in one module run ---------------------

ONE_CALL = ["ApplicationStop", "DownloadBundle"] + FULL


def upload(make, path, version, extra=None):
    """An archive of the env's revision where the action plugin uploads it; returns (path, sha256)."""
    files = {name: (body, 0o755 if name.endswith(".sh") else 0o644) for name, body in make.files(version).items()}
    files.update(extra or {})
    path.parent.mkdir(parents=True, exist_ok=True)
    return make_archive(path, files)


def installed_first(capsys, root, make):
    """d-FIRST0001 installed and good: its ApplicationStop script runs first in the next deployment."""
    make("d-FIRST0001", "good 1")
    result = run_module(capsys, events=FULL, mark_success=True, **common(root, "d-FIRST0001"))
    assert not result.get("failed"), result


def lock_path(root):
    return os.path.join(root.root_dir, "locks", "%s.lock" % GID)


def tree(path):
    """Every path under ``path`` with its size and mtime: any write shows."""
    found = {}
    for here, dirs, files in os.walk(str(path)):
        for name in dirs + files:
            full = os.path.join(here, name)
            st = os.lstat(full)
            found[os.path.relpath(full, str(path))] = (st.st_size, st.st_mtime_ns)
    return found


def test_one_call_runs_the_whole_lifecycle_then_reuses_the_staged_revision(capsys, env, tmp_path):
    root, trace, dest, make = env
    installed_first(capsys, root, make)
    trace.write_text("")
    tmpdir = tmp_path / "ansible-tmp-1"
    path, sha = upload(make, tmpdir / "upload", "good 2")
    appspec = parsed_appspec(make.appspec).as_dict()
    result = run_module(capsys, events=ONE_CALL, revision=path, sha256=sha, appspec=appspec, mark_success=True,
                        lock="release", _ansible_tmpdir=str(tmpdir), _ansible_diff=True, **common(root, "d-SECOND001"))
    assert not result.get("failed"), result
    assert [e["event"] for e in result["events"]] == ONE_CALL
    assert [e["status"] for e in result["events"]] == ["succeeded"] * len(ONE_CALL)
    download = result["events"][1]
    second_dir = root.deployment_dir(GID, "d-SECOND001")
    assert (download["reused"], download["sha256"], download["deployment_dir"], download["scripts"]) == (False, sha, second_dir, [])
    assert result["bundle"]["size"] == os.path.getsize(result["bundle"]["bundle_path"]) > 0
    assert download["bytes_transferred"] == result["bundle"]["bytes_transferred"]  # the upload was moved, not copied
    assert result["bundle"]["archive_dir"] == root.archive_dir(GID, "d-SECOND001") and "diff" not in result["bundle"]
    assert result["diff"][0] == {"before": {"deployment_dir": second_dir, "sha256": None},
                                 "after": {"deployment_dir": second_dir, "sha256": sha}}
    assert trace.read_text().splitlines() == [
        "d-SECOND001 ApplicationStop good 1",  # the previous revision's script
        "d-SECOND001 BeforeInstall good 1", "d-SECOND001 AfterInstall good 2", "d-SECOND001 ApplicationStart good 2",
    ]
    assert (dest / "VERSION").read_text() == "good 2\n"
    assert read_appspec_json(second_dir).as_dict() == appspec
    assert root.read_record(GID, "last_successful_install") == second_dir
    assert root.read_record(GID, "last_good_deployment") == second_dir
    assert not tmpdir.exists()  # the upload was moved into place and its temp dir removed
    assert not os.path.exists(lock_path(root)) and result["lock"] is None
    deployments_log = open(os.path.join(root.deployment_logs_dir, "codedeploy-agent-deployments.log")).read()
    assert "[d-SECOND001]LifecycleEvent - DownloadBundle: succeeded" in deployments_log

    # The same revision again, for another deployment: nothing to upload, the staged copy is reused.
    trace.write_text("")
    again = run_module(capsys, events=ONE_CALL, sha256=sha, appspec=appspec, mark_success=True,
                       **common(root, "d-THIRD0001"))
    assert not again.get("failed"), again
    assert (again["events"][1]["reused"], again["events"][1]["bytes_transferred"]) == (True, 0)
    assert again["bundle"]["reused_from"] == second_dir
    assert trace.read_text().splitlines() == [
        "d-THIRD0001 ApplicationStop good 2", "d-THIRD0001 BeforeInstall good 2",
        "d-THIRD0001 AfterInstall good 2", "d-THIRD0001 ApplicationStart good 2",
    ]
    assert root.read_record(GID, "last_good_deployment") == root.deployment_dir(GID, "d-THIRD0001")


@pytest.mark.parametrize("revision, args, expected", [
    ("", {}, "the revision is not staged on this host and has not been transferred yet"),
    ("/nonexistent/upload", {}, "the revision is not staged on this host and /nonexistent/upload does not exist"),
    ("", {"_ansible_check_mode": True}, "the revision is not staged on this host"),
])
def test_a_revision_neither_uploaded_nor_staged_runs_nothing(capsys, env, revision, args, expected):
    root, trace, _dest, make = env
    installed_first(capsys, root, make)
    trace.write_text("")
    result = run_module(capsys, events=ONE_CALL, revision=revision, sha256="a" * 64,
                        appspec=parsed_appspec(make.appspec).as_dict(), lock="acquire", **dict(common(root, "d-SECOND001"), **args))
    assert result["failed"] is True and result["revision_missing"] is True
    assert result["msg"].startswith(expected)
    assert trace.read_text() == ""  # the previous revision's ApplicationStop did not run
    assert not os.path.exists(lock_path(root))
    assert not os.path.exists(root.deployment_dir(GID, "d-SECOND001"))


@pytest.mark.parametrize("args, expected", [
    ({"appspec": None}, "appspec is required when DownloadBundle is in events"),
    ({"sha256": None}, "sha256 is required when DownloadBundle is in events"),
    ({"max_unpacked_size": "lots"}, "max_unpacked_size:"),
    ({"archive_dir": "/srv/elsewhere"}, "archive_dir runs an already staged revision"),
    ({"events": ["DownloadBundle", "ApplicationStop"]}, "events must be given once each, in CodeDeploy's order"),
    ({"appspec": {"version": "0.0"}}, "appspec is not a normalized AppSpec"),
])
def test_download_bundle_arguments_are_checked_before_anything_runs(capsys, env, tmp_path, args, expected):
    root, trace, _dest, make = env
    installed_first(capsys, root, make)
    trace.write_text("")
    path, sha = upload(make, tmp_path / "uploads" / "rev.tgz", "good 2")
    given = dict(events=ONE_CALL, revision=path, sha256=sha, appspec=parsed_appspec(make.appspec).as_dict(), lock="acquire")
    given.update(args)
    result = run_module(capsys, **dict(common(root, "d-SECOND001"), **given))
    assert result["failed"] is True and result["msg"].startswith(expected), result["msg"]
    assert trace.read_text() == "" and not os.path.exists(lock_path(root))
    assert not os.path.exists(root.deployment_dir(GID, "d-SECOND001"))


@pytest.mark.parametrize("case, reason", [("sha256 mismatch", "sha256"), ("hostile archive", "..")])
def test_a_failed_download_skips_the_later_events(capsys, env, tmp_path, case, reason):
    root, trace, dest, make = env
    installed_first(capsys, root, make)
    trace.write_text("")
    tmpdir = tmp_path / "ansible-tmp-2"
    extra = {"../escape.sh": ("#!/bin/sh\n", 0o755)} if case == "hostile archive" else None
    path, sha = upload(make, tmpdir / "upload", "good 2", extra)
    if case == "sha256 mismatch":
        sha = "b" * 64
    result = run_module(capsys, events=ONE_CALL, revision=path, sha256=sha, appspec=parsed_appspec(make.appspec).as_dict(),
                        mark_success=True, lock="release", _ansible_tmpdir=str(tmpdir), **common(root, "d-SECOND001"))
    assert result["failed"] is True and result["failed_event"] == "DownloadBundle"
    assert result["msg"].startswith("DownloadBundle: ") and reason in result["msg"], result["msg"]
    assert [(e["event"], e["status"]) for e in result["events"]] == [("ApplicationStop", "succeeded"), ("DownloadBundle", "failed")] + [
        (event, "skipped") for event in FULL]
    assert all(e["reason"] == "an earlier event failed" for e in result["events"][2:])
    assert result["bundle"] is None and result["lock"] is None
    assert trace.read_text().splitlines() == ["d-SECOND001 ApplicationStop good 1"]
    assert (dest / "VERSION").read_text() == "good 1\n"
    assert not os.path.exists(lock_path(root))
    # Only the logs of the ApplicationStop that ran are in the deployment dir: nothing staged
    assert sorted(os.listdir(root.deployment_dir(GID, "d-SECOND001"))) == ["logs"]
    assert not os.path.exists(str(tmp_path / "escape.sh")) and not os.path.exists(os.path.join(root.root_dir, GID, "escape.sh"))
    assert root.read_record(GID, "last_successful_install") == root.deployment_dir(GID, "d-FIRST0001")
    assert root.read_record(GID, "last_good_deployment") == root.deployment_dir(GID, "d-FIRST0001")
    assert not tmpdir.exists()  # the upload is removed on failure too


def test_check_mode_with_download_bundle_writes_nothing(capsys, env, tmp_path):
    root, trace, dest, make = env
    installed_first(capsys, root, make)
    trace.write_text("")
    path, sha = upload(make, tmp_path / "uploads" / "rev.tgz", "good 2")
    before, dest_before = tree(root.root_dir), tree(dest)
    result = run_module(capsys, events=ONE_CALL, revision=path, sha256=sha, appspec=parsed_appspec(make.appspec).as_dict(),
                        mark_success=True, lock="release", _ansible_check_mode=True, _ansible_diff=True, **common(root, "d-SECOND001"))
    assert not result.get("failed"), result
    assert result["changed"] is True
    assert tree(root.root_dir) == before and tree(dest) == dest_before and trace.read_text() == ""
    assert os.path.isfile(path)  # not an upload in the task's temp dir: left alone
    assert not [name for name in os.listdir(tempfile.gettempdir()) if name.startswith("appspec-check-mode-")]
    statuses = [(e["event"], e["status"], e.get("reason")) for e in result["events"]]
    assert statuses == [
        ("ApplicationStop", "skipped", "check mode"),
        ("DownloadBundle", "skipped", "check mode: would fetch %s (local) into %s" % (path, root.deployment_dir(GID, "d-SECOND001"))),
        ("BeforeInstall", "skipped", "check mode"),
        ("Install", "skipped", "check mode: what it would write is in install"),
        ("AfterInstall", "skipped", "check mode"),
        ("ApplicationStart", "skipped", "check mode"),
        ("ValidateService", "skipped", "check mode"),
    ]
    scripts = {e["event"]: [s["path"] for s in e["scripts"]] for e in result["events"]}
    assert scripts["ApplicationStop"] == [os.path.join(root.archive_dir(GID, "d-FIRST0001"), "scripts/hook.sh")]
    assert scripts["BeforeInstall"] == [os.path.join(root.archive_dir(GID, "d-SECOND001"), "scripts/hook.sh")]
    assert scripts["ValidateService"] == [os.path.join(root.archive_dir(GID, "d-SECOND001"), "scripts/validate.sh")]
    assert result["bundle"]["reused"] is False and result["events"][1]["sha256"] == sha
    # What Install would do, from the upload unpacked aside (and removed): VERSION replaced by the new revision's.
    plan = result["events"][3]["install"]["plan"]
    assert plan["update"] == [os.path.join(str(dest), "VERSION")] and plan["conflict"] == [] and plan["remove"] == []


def test_a_previous_revision_of_the_agent_is_asked_for_before_the_upload_is_touched(capsys, env, tmp_path):
    root, trace, _dest, make = env
    make("d-AGENT0001", "agent", appspec_json=False)
    root.write_record(GID, "last_successful_install", root.deployment_dir(GID, "d-AGENT0001"))
    tmpdir = tmp_path / "ansible-tmp-3"
    path, sha = upload(make, tmpdir / "upload", "good 2")
    args = dict(events=ONE_CALL, revision=path, sha256=sha, appspec=parsed_appspec(make.appspec).as_dict(),
                lock="acquire", _ansible_tmpdir=str(tmpdir), **common(root, "d-NEW000001"))
    needed = run_module(capsys, **args)
    assert needed["failed"] is True and needed["appspec_needed"]["archive_dir"] == root.archive_dir(GID, "d-AGENT0001")
    assert os.path.isfile(path) and not os.path.exists(lock_path(root)) and not trace.exists()
    assert not os.path.exists(root.deployment_dir(GID, "d-NEW000001"))
    previous = parsed_appspec(open(os.path.join(root.archive_dir(GID, "d-AGENT0001"), "appspec.yml")).read())
    done = run_module(capsys, previous_appspec=previous.as_dict(), **args)
    assert not done.get("failed"), done
    assert [e["status"] for e in done["events"]] == ["succeeded"] * len(ONE_CALL)
    assert trace.read_text().splitlines()[0] == "d-NEW000001 ApplicationStop "  # the agent revision's script
    assert not tmpdir.exists()


# --- rollback=true: the host finds the target (a deployment id) in its own history --------------------

ROLLBACK = ["ApplicationStop", "Install", "ApplicationStart", "ValidateService"]


def test_rollback_in_place_goes_back_to_the_last_good_deployment(capsys, env):
    root, trace, dest, make = env
    for deployment_id, version in (("d-GOOD00001", "good 1"), ("d-GOOD00002", "good 2")):
        make(deployment_id, version)
        assert not run_module(capsys, events=FULL, mark_success=True, **common(root, deployment_id)).get("failed")
    make("d-BAD000001", "broken")
    assert run_module(capsys, events=FULL, mark_success=True, **common(root, "d-BAD000001"))["failed"]
    trace.write_text("")
    result = run_module(capsys, events=ROLLBACK, rollback=True, rollback_from="d-BAD000001", mark_success=True,
                        lock="release", file_exists_behavior="OVERWRITE", **common(root, "d-RB0000001"))
    assert not result.get("failed"), result
    assert (result["rollback_target"], result["rollback_from"]) == ("d-GOOD00002", "d-BAD000001")
    assert (dest / "VERSION").read_text() == "good 2\n"
    # ApplicationStop of the revision installed now (the bad one), then the target's scripts, under the rollback's id.
    assert trace.read_text().splitlines() == ["d-RB0000001 ApplicationStop broken", "d-RB0000001 ApplicationStart good 2"]
    assert root.read_record(GID, "last_successful_install") == root.deployment_dir(GID, "d-GOOD00002")
    assert root.read_record(GID, "last_good_deployment") == root.deployment_dir(GID, "d-GOOD00002")
    # A manual rollback now (from what runs, d-GOOD00002) goes one further back; the bad one never comes back.
    again = run_module(capsys, events=ROLLBACK, rollback=True, mark_success=True, lock="release",
                       file_exists_behavior="OVERWRITE", **common(root, "d-RB0000002"))
    assert (again["rollback_target"], again["rollback_from"]) == ("d-GOOD00001", "d-GOOD00002")
    assert (dest / "VERSION").read_text() == "good 1\n"


def test_rollback_of_a_deployment_that_succeeded_on_this_host(capsys, env):
    """The fleet failed elsewhere: this host's good deployment is rolled back to the one before it, and marked bad."""
    root, _trace, dest, make = env
    make("d-GOOD00001", "good 1")
    run_module(capsys, events=FULL, mark_success=True, **common(root, "d-GOOD00001"))
    make("d-FLEET0001", "good fleet")
    run_module(capsys, events=FULL, mark_success=True, **common(root, "d-FLEET0001"))
    result = run_module(capsys, events=ROLLBACK, rollback=True, rollback_from="d-FLEET0001", mark_success=True,
                        file_exists_behavior="OVERWRITE", **common(root, "d-RB0000001"))
    assert result["rollback_target"] == "d-GOOD00001" and (dest / "VERSION").read_text() == "good 1\n"
    history = json.loads(open(os.path.join(root.instructions_dir, GID + "_deployment_history.json")).read())
    assert [(e["deployment_id"], e["status"]) for e in history] == [
        ("d-GOOD00001", "good"), ("d-FLEET0001", "good"), ("d-FLEET0001", "bad"), ("d-GOOD00001", "good")]


def test_rollback_with_nothing_to_go_back_to_runs_nothing(capsys, env):
    root, trace, _dest, make = env
    make("d-FIRST0001", "broken")
    assert run_module(capsys, events=FULL, mark_success=True, **common(root, "d-FIRST0001"))["failed"]
    trace.write_text("")
    result = run_module(capsys, events=ROLLBACK, rollback=True, rollback_from="d-FIRST0001", mark_success=True,
                        lock="release", **common(root, "d-RB0000001"))
    assert not result.get("failed") and result["changed"] is False, result
    assert result["rollback_target"] is None and "nothing to roll back to" in result["msg"]
    assert result["events"] == [] and trace.read_text() == ""
    assert not os.path.exists(lock_path(root))


def test_rollback_to_a_named_deployment_must_be_kept_on_the_host(capsys, env):
    root, _trace, _dest, make = env
    make("d-GOOD00001")
    run_module(capsys, events=FULL, mark_success=True, **common(root, "d-GOOD00001"))
    result = run_module(capsys, events=ROLLBACK, rollback=True, rollback_to="d-GONE00001", **common(root, "d-RB0000001"))
    assert result["failed"] is True
    assert "cannot roll back to deployment d-GONE00001: its revision is no longer kept" in result["msg"]
    refused = run_module(capsys, events=["DownloadBundle"], rollback=True, **common(root, "d-RB0000001"))
    assert "cannot be combined with DownloadBundle" in refused["msg"]


def test_rollback_in_release_mode_switches_current_back(capsys, tmp_path):
    root = DeploymentRoot(str(tmp_path / "root"))
    release_root = tmp_path / "srv"
    trace = tmp_path / "trace"
    appspec = """
        version: 0.0
        os: linux
        files:
          - source: app
            destination: %s/current
        hooks:
          ApplicationStart:
            - location: scripts/hook.sh
              timeout: 10
    """ % release_root
    hook = '#!/bin/sh\necho "$DEPLOYMENT_ID $LIFECYCLE_EVENT dir=$RELEASE_DIR $(cat $RELEASE_ROOT/current/VERSION)" >> %s\n' % trace
    for deployment_id in ("d-REL000001", "d-REL000002"):
        stage(root, deployment_id, appspec, {"scripts/hook.sh": hook, "app/VERSION": deployment_id + "\n"})
        result = run_module(capsys, events=["Install", "ApplicationStart"], release_root=str(release_root),
                            mark_success=True, **common(root, deployment_id))
        assert not result.get("failed"), result
    result = run_module(capsys, events=ROLLBACK, rollback=True, release_root=str(release_root), mark_success=True,
                        lock="release", **common(root, "d-RB0000001"))
    assert not result.get("failed"), result
    assert (result["rollback_target"], result["rollback_from"]) == ("d-REL000001", "d-REL000002")
    assert os.readlink(str(release_root / "current")) == "releases/d-REL000001"
    assert trace.read_text().splitlines()[-1] == "d-RB0000001 ApplicationStart dir=%s d-REL000001" % (
        release_root / "releases" / "d-REL000001")
    log = json.loads((release_root / ".appspec-releases.json").read_text())
    assert {e["id"]: e["status"] for e in log["releases"]} == {"d-REL000001": "good", "d-REL000002": "bad"}
    assert not (release_root / "releases" / "d-RB0000001").exists()


def test_rollback_to_a_revision_the_agent_deployed_asks_for_its_appspec(capsys, env):
    root, _trace, dest, make = env
    make("d-AGENT0001", "good agent", appspec_json=False)
    root.write_record(GID, "last_successful_install", root.deployment_dir(GID, "d-AGENT0001"))  # as the agent leaves it
    make("d-NEW000001", "broken")
    assert run_module(capsys, events=FULL, mark_success=True, **common(root, "d-NEW000001"))["failed"]
    args = dict(events=ROLLBACK, rollback=True, rollback_from="d-NEW000001", mark_success=True,
                file_exists_behavior="OVERWRITE", **common(root, "d-RB0000001"))
    needed = run_module(capsys, **args)
    assert "appspec_needed" in needed, needed
    assert needed["appspec_needed"]["option"] == "appspec"
    assert needed["appspec_needed"]["archive_dir"] == root.archive_dir(GID, "d-AGENT0001")
    assert (dest / "VERSION").read_text() == "broken\n"  # nothing ran
    result = run_module(capsys, appspec=parsed_appspec(make.appspec).as_dict(), **args)
    assert not result.get("failed"), result
    assert result["rollback_target"] == "d-AGENT0001" and (dest / "VERSION").read_text() == "good agent\n"
    assert read_appspec_json(root.deployment_dir(GID, "d-AGENT0001")) is not None  # kept for the next ApplicationStop


def test_rollback_acts_the_way_the_group_was_deployed(capsys, env, tmp_path):
    """Another application's release root is never touched: the host recorded how this group was deployed."""
    root, _trace, dest, make = env
    other_root = tmp_path / "other-app"
    (other_root / "releases" / "d-OTHER0001").mkdir(parents=True)
    os.symlink("releases/d-OTHER0001", str(other_root / "current"))
    for deployment_id, version in (("d-GOOD00001", "good 1"), ("d-GOOD00002", "good 2")):
        make(deployment_id, version)
        run_module(capsys, events=FULL, mark_success=True, **common(root, deployment_id))
    refused = run_module(capsys, events=ROLLBACK, rollback=True, release_root=str(other_root), mark_success=True,
                         **common(root, "d-RB0000001"))
    assert refused["failed"] is True
    assert "was last deployed on this host in place, not with release_root %s" % other_root in refused["msg"]
    assert (dest / "VERSION").read_text() == "good 2\n"
    result = run_module(capsys, events=ROLLBACK, rollback=True, mark_success=True, file_exists_behavior="OVERWRITE",
                        **common(root, "d-RB0000001"))
    assert not result.get("failed") and result["release_root"] is None, result
    assert result["rollback_target"] == "d-GOOD00001" and (dest / "VERSION").read_text() == "good 1\n"
    assert os.readlink(str(other_root / "current")) == "releases/d-OTHER0001"


def test_rollback_of_an_application_never_deployed_here_says_so(capsys, env):
    root, _trace, _dest, _make = env
    result = run_module(capsys, events=ROLLBACK, rollback=True, **common(root, "d-RB0000001"))
    assert not result.get("failed") and result["rollback_target"] is None, result
    assert result["msg"].startswith("application webapp, deployment group production was never deployed on this host")


def test_keep_releases_below_one_is_refused_before_anything_runs(capsys, env):
    root, trace, _dest, make = env
    make("d-FIRST0001")
    result = run_module(capsys, events=FULL, keep_releases=-1, mark_success=True, **common(root, "d-FIRST0001"))
    assert result["failed"] is True and result["msg"] == "keep_releases must be at least 1, got -1"
    assert not trace.exists()


def test_a_hook_longer_than_the_lock_expiry_keeps_the_lock(capsys, tmp_path):
    # Issue 14: the expiry is short (10 min) so that a killed controller does not block the group for long;
    # a hook that legitimately runs longer than that must not lose the lock meanwhile.
    root = DeploymentRoot(str(tmp_path / "root"))
    lock = HostLock(root.root_dir, GID)
    seen = tmp_path / "seen"
    check = ("import json, time; lock = json.load(open(%r)); print('fresh' if lock['expires'] > time.time() else 'stale')"
             % lock.path)
    stage(root, "d-LONG00001", """
        version: 0.0
        os: linux
        hooks:
          BeforeInstall:
            - location: long.sh
              timeout: 30
    """, {"long.sh": "#!/bin/sh\nfor i in 1 2 3 4 5 6 7; do sleep 0.5; python3 -c \"%s\" >> %s; done\n" % (check, seen)})
    lock.acquire("d-LONG00001", ttl=1)  # taken by an earlier task (lock=acquire), with a 1 s expiry
    result = run_module(capsys, events=["BeforeInstall"], lock="none", **common(root, "d-LONG00001"))
    assert not result.get("failed"), result
    assert seen.read_text().split() == ["fresh"] * 7  # 3.5 s of hook, a 1 s expiry: renewed all along
    assert lock.read()["deployment_id"] == "d-LONG00001"
    time.sleep(1.1)
    assert HostLock.is_stale(lock.read())  # and no longer renewed once the task is over


# --- a full disk (issue 14): a small real file system, mounted for the test --------------------------


RELEASE_APPSPEC = """
    version: 0.0
    os: linux
    files:
      - source: app
        destination: %s/current
"""


def test_a_full_release_root_leaves_current_serving_and_nothing_half_made(capsys, tmp_path, monkeypatch):
    root = DeploymentRoot(str(tmp_path / "root"))
    with small_filesystem(tmp_path / "srv") as srv:
        appspec = RELEASE_APPSPEC % srv
        args = dict(events=["Install"], release_root=srv, mark_success=True)

        def deploy(deployment_id, files):
            stage(root, deployment_id, appspec, files)
            return run_module(capsys, **dict(args, **common(root, deployment_id)))

        def leftovers():
            return sorted(os.listdir(os.path.join(srv, "releases")))

        assert not deploy("d-DISK00001", {"app/VERSION": "v1\n"}).get("failed")
        big = {"app/VERSION": "v2\n", "app/big": "x" * (3 * 1024 * 1024)}  # tmpfs stores it as it is

        # 1. Bigger than the free space: refused before the first byte is written. What the files take on the
        # tmpfs: big's data and a 4 KiB block per entry (big, and VERSION, hard-linked from v1: no data).
        needed = 3 * 1024 * 1024 + 2 * 4096
        refused = deploy("d-DISK00002", big)
        assert refused["failed"] and refused["failed_event"] == "Install"
        assert "Install: on host %s, Install needs about %d bytes for the release in %s but only" % (
            socket.gethostname(), needed, srv) in refused["msg"]
        assert "refused before anything was written" in refused["msg"], refused["msg"]
        assert leftovers() == ["d-DISK00001"] and os.readlink(os.path.join(srv, "current")) == "releases/d-DISK00001"

        # 2. The space goes elsewhere after the check (simulated by a check that sees plenty): the disk fills mid-copy.
        monkeypatch.setattr(_releases, "free_bytes", lambda path: 1 << 40)
        filled = run_module(capsys, **dict(args, **common(root, "d-DISK00002")))
        assert filled["failed"] and filled["failed_event"] == "Install"
        assert ("Install: on host %s, Install (making the release d-DISK00002) could not write in %s: no space left on "
                "the file system (ENOSPC): about %d bytes needed" % (socket.gethostname(), srv, needed)) in filled["msg"]
        assert "the unfinished release was removed, %s/current was not touched" % srv in filled["msg"]
        assert "[Errno" not in filled["msg"]
        assert leftovers() == ["d-DISK00001"]  # no releases/d-DISK00002 with its unfinished marker, no temp dir
        assert open(os.path.join(srv, "current", "VERSION")).read() == "v1\n"
        monkeypatch.undo()

        # 3. A crash left an unfinished release (its process is gone): the next deployment prunes it, and succeeds.
        crashed = os.path.join(srv, "releases", "d-CRASHED01")
        os.makedirs(crashed)
        gone = subprocess.Popen(["true"])
        gone.wait()
        with open(os.path.join(crashed, _releases.UNFINISHED_MARKER), "w") as handle:
            handle.write("d-CRASHED01 %d\n" % gone.pid)
        done = deploy("d-DISK00003", {"app/VERSION": "v3\n"})
        assert not done.get("failed"), done
        assert done["events"][0]["install"]["pruned_unfinished"] == ["d-CRASHED01"]
        assert leftovers() == ["d-DISK00001", "d-DISK00003"]
        assert open(os.path.join(srv, "current", "VERSION")).read() == "v3\n"


def test_a_full_deployment_root_during_download_bundle(capsys, env, tmp_path, monkeypatch):
    root, trace, dest, make = env
    with small_filesystem(root.root_dir, "2m"):
        installed_first(capsys, root, make)
        appspec = parsed_appspec(make.appspec).as_dict()
        before = tree(root.root_dir)
        # A few KB of gzip that declares 3 MB of files: refused by its declared sizes, nothing written.
        path, sha = upload(make, tmp_path / "t1" / "upload.tgz", "good 2", {"app/zeros": b"\0" * (3 * 1024 * 1024)})
        assert os.path.getsize(path) < 64 * 1024
        result = run_module(capsys, events=ONE_CALL, revision=path, sha256=sha, appspec=appspec, mark_success=True,
                            lock="release", **common(root, "d-SECOND001"))
        assert result["failed"] and result["failed_event"] == "DownloadBundle"
        assert result["msg"].startswith("DownloadBundle: on host %s, the archive needs about " % socket.gethostname())
        assert "are free in %s: refused before anything was written" % root.deployment_dir(GID, "d-SECOND001") in result["msg"]
        assert [e["status"] for e in result["events"][2:]] == ["skipped"] * len(FULL)
        second = root.deployment_dir(GID, "d-SECOND001")
        # Only the logs of ApplicationStop (which ran before): no archive, no bundle, no record of a staging.
        assert sorted(tree(root.root_dir).keys() - before.keys()) == [os.path.relpath(p, root.root_dir) for p in (
            second, os.path.join(second, "logs"), os.path.join(second, "logs", "scripts.log"))] + ["locks"]
        assert (dest / "VERSION").read_text() == "good 1\n"  # the previous revision still installed

        # The free space taken after the check: the disk fills while unpacking.
        monkeypatch.setattr(_archive, "disk_free", lambda path: 1 << 40)
        path, sha = upload(make, tmp_path / "t2" / "upload.tgz", "good 2", {"app/zeros": b"\0" * (3 * 1024 * 1024)})
        result = run_module(capsys, events=ONE_CALL, revision=path, sha256=sha, appspec=appspec, mark_success=True,
                            lock="release", **common(root, "d-SECOND001"))
        assert result["failed"] and result["failed_event"] == "DownloadBundle"
        assert ("DownloadBundle: on host %s, unpacking the revision could not write in %s: no space left on the file "
                "system (ENOSPC): about " % (socket.gethostname(), root.archive_dir(GID, "d-SECOND001"))) in result["msg"]
        assert "what was half-made there was removed" in result["msg"] and "[Errno" not in result["msg"]
        assert sorted(os.listdir(second)) == ["logs"]
        assert not os.path.exists(lock_path(root))
        monkeypatch.undo()

        # Space again (a smaller revision): the next run completes.
        path, sha = upload(make, tmp_path / "t3" / "upload.tgz", "good 3")
        result = run_module(capsys, events=ONE_CALL, revision=path, sha256=sha, appspec=appspec, mark_success=True,
                            lock="release", **common(root, "d-THIRD0001"))
        assert not result.get("failed"), result
        assert (dest / "VERSION").read_text() == "good 3\n"
