# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_lifecycle: events before DownloadBundle, staging, events after it, in one call (real files and scripts)."""

from __future__ import annotations

import os
import typing as t

import pytest

from bundle_fixtures import make_archive, server_appspec

from ansible_collections.appspec.deploy.plugins.module_utils._errors import DeployError
from ansible_collections.appspec.deploy.plugins.module_utils._hooks import EventContext, HookError, run_events
from ansible_collections.appspec.deploy.plugins.module_utils._layout import DeploymentRoot, deployment_group_id
from ansible_collections.appspec.deploy.plugins.module_utils._lifecycle import check_download, run_lifecycle, split_events
from ansible_collections.appspec.deploy.plugins.module_utils._staging import StageOptions, stage

GID = deployment_group_id("app", "prod")
HOOK = '#!/bin/sh\necho "$LIFECYCLE_EVENT ${BUNDLE_COMMIT-unset} ${BUNDLE_EXTRA-unset}" >> "%s"\n'
EVENTS = ["BeforeInstall", "AfterInstall", "ApplicationStart"]


def make(tmp_path: t.Any, hooks: t.Optional[t.Dict[str, t.List[t.Any]]] = None, files: t.Optional[t.Dict[str, t.Any]] = None):
    """(root, trace file, appspec, archive path, sha256) of a revision whose hooks append to the trace."""
    trace = tmp_path / "trace"
    appspec = server_appspec(hooks if hooks is not None else {e: ["hook.sh"] for e in EVENTS})
    content = {"hook.sh": (HOOK % trace, 0o755)}
    content.update(files or {})
    path, sha = make_archive(tmp_path / "rev.tar", content)
    return DeploymentRoot(str(tmp_path / "root")), trace, appspec, path, sha


def ctx_for(root: DeploymentRoot, deployment_id: str, **kw: t.Any) -> EventContext:
    return EventContext(root=root, deployment_id=deployment_id, application_name="app", deployment_group_name="prod",
                        deployment_group_id=GID, **kw)


def opts_for(root: DeploymentRoot, deployment_id: str, revision: str, sha: str, appspec: t.Any, **kw: t.Any) -> StageOptions:
    return StageOptions(revision, deployment_id, revision_type="local", remote_src=True, sha256=sha,
                        deployment_group_id=GID, root_dir=root.root_dir, appspec=appspec, **kw)


@pytest.mark.parametrize("events, before, after", [
    (["DownloadBundle"], [], []),
    (["ApplicationStop", "DownloadBundle", "BeforeInstall"], ["ApplicationStop"], ["BeforeInstall"]),
    (["BeforeBlockTraffic", "AfterBlockTraffic", "ApplicationStop", "DownloadBundle", "Install", "ValidateService"],
     ["BeforeBlockTraffic", "AfterBlockTraffic", "ApplicationStop"], ["Install", "ValidateService"]),
])
def test_split_events(events: t.List[str], before: t.List[str], after: t.List[str]) -> None:
    assert split_events(events) == (before, after)


def test_staged_bundle_env_is_merged_under_the_given_one(tmp_path: t.Any) -> None:
    root, trace, appspec, path, sha = make(tmp_path)
    stage(opts_for(root, "d-FIRST0001", path, sha, appspec, bundle_env={"BUNDLE_COMMIT": "c1", "BUNDLE_EXTRA": "staged"}))
    diffs = []  # type: t.List[t.Dict[str, t.Any]]
    ctx = ctx_for(root, "d-SECOND001", bundle_env={"BUNDLE_EXTRA": "given"})
    opts = opts_for(root, "d-SECOND001", "", sha, appspec)
    check_download(ctx, ["DownloadBundle"] + EVENTS, opts)
    result = run_lifecycle(ctx, ["DownloadBundle"] + EVENTS, download=opts, diffs=diffs)
    assert [(e["event"], e["status"]) for e in result["events"]] == [("DownloadBundle", "succeeded")] + [
        (e, "succeeded") for e in EVENTS]
    assert result["bundle"]["reused"] is True and result["bundle"]["bundle_env"] == {"BUNDLE_COMMIT": "c1", "BUNDLE_EXTRA": "staged"}
    assert trace.read_text().splitlines() == ["%s c1 given" % e for e in EVENTS]
    assert diffs == [{"before": {"deployment_dir": ctx.deployment_dir, "sha256": None},
                      "after": {"deployment_dir": ctx.deployment_dir, "sha256": sha}}]


def test_a_script_missing_from_the_staged_revision_fails_its_first_event(tmp_path: t.Any) -> None:
    root, trace, appspec, path, sha = make(tmp_path, hooks={"BeforeInstall": ["hook.sh"], "AfterInstall": ["missing.sh"]})
    ctx = ctx_for(root, "d-FIRST0001")
    opts = opts_for(root, "d-FIRST0001", path, sha, appspec)
    events = ["DownloadBundle", "BeforeInstall", "AfterInstall"]
    check_download(ctx, events, opts)  # scripts cannot be checked before the revision is unpacked
    with pytest.raises(HookError) as caught:
        run_lifecycle(ctx, events, download=opts)
    details = caught.value.details
    assert details["failed_event"] == "BeforeInstall" and "missing.sh" in str(caught.value)
    assert [(e["event"], e["status"]) for e in details["events"]] == [
        ("DownloadBundle", "succeeded"), ("BeforeInstall", "failed"), ("AfterInstall", "skipped")]
    assert details["bundle"]["archive_dir"] == root.archive_dir(GID, "d-FIRST0001")
    assert not trace.exists()


def test_unknown_runas_users_fail_before_anything_is_staged(tmp_path: t.Any) -> None:
    root, _trace, appspec, path, sha = make(tmp_path, hooks={"AfterInstall": [{"location": "hook.sh", "runas": "no-such-user-x"}]})
    with pytest.raises(DeployError) as caught:
        check_download(ctx_for(root, "d-FIRST0001"), ["DownloadBundle", "AfterInstall"], opts_for(root, "d-FIRST0001", path, sha, appspec))
    assert str(caught.value).startswith("nothing was run:") and "no-such-user-x" in str(caught.value)
    assert not os.path.exists(root.root_dir)


def test_check_mode_plans_from_the_given_appspec_and_writes_nothing(tmp_path: t.Any) -> None:
    root, trace, appspec, path, sha = make(tmp_path)
    ctx = ctx_for(root, "d-FIRST0001", check_mode=True)
    opts = opts_for(root, "d-FIRST0001", path, sha, appspec)
    check_download(ctx, ["DownloadBundle"] + EVENTS, opts)
    result = run_lifecycle(ctx, ["DownloadBundle"] + EVENTS, download=opts)
    assert [e["status"] for e in result["events"]] == ["skipped"] * 4
    assert result["events"][1]["scripts"][0]["path"] == os.path.join(root.archive_dir(GID, "d-FIRST0001"), "hook.sh")
    assert not os.path.exists(root.root_dir) and not trace.exists()


def test_without_download_bundle_it_is_run_events(tmp_path: t.Any) -> None:
    root, trace, appspec, path, sha = make(tmp_path)
    stage(opts_for(root, "d-FIRST0001", path, sha, appspec))
    result = run_lifecycle(ctx_for(root, "d-FIRST0001"), EVENTS)
    trace.unlink()
    assert "bundle" not in result
    assert result.keys() == run_events(ctx_for(root, "d-FIRST0001"), EVENTS).keys()
    with pytest.raises(DeployError, match="DownloadBundle needs the revision"):
        run_lifecycle(ctx_for(root, "d-FIRST0001"), ["DownloadBundle"])
