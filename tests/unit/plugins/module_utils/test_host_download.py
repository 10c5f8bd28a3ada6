# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""DownloadBundle when the host downloads the revision itself (appspec_revision_download=host).

The options are built as the lifecycle_event module builds them for ``revision_url``: an http(s) URL
with the sha256 and AppSpec the controller pinned. Served by a real http.server on loopback.
"""

from __future__ import annotations

import os
import typing as t

import pytest

from bundle_fixtures import http_server, make_archive, server_appspec  # noqa: F401 pylint: disable=unused-import

from ansible_collections.appspec.deploy.plugins.module_utils._hooks import EventContext, HookError
from ansible_collections.appspec.deploy.plugins.module_utils._layout import DeploymentRoot
from ansible_collections.appspec.deploy.plugins.module_utils._lifecycle import check_download, run_lifecycle
from ansible_collections.appspec.deploy.plugins.module_utils._staging import StageOptions

GID = "group-1"
EVENTS = ["DownloadBundle", "BeforeInstall"]


def make(tmp_path: t.Any, http_server: t.Any, marker: str = "1") -> t.Tuple[DeploymentRoot, t.Any, t.Any, str, str]:
    """(root, trace, appspec, URL, sha256) of a revision served over HTTP whose BeforeInstall appends to trace."""
    trace = tmp_path / "trace"
    path, sha = make_archive(http_server.root / "rev.tgz", {
        "before.sh": ("#!/bin/sh\necho $DEPLOYMENT_ID >> %s\n" % trace, 0o755), "marker": marker})
    del path
    return (DeploymentRoot(str(tmp_path / "root")), trace, server_appspec({"BeforeInstall": ["before.sh"]}),
            http_server.url("rev.tgz"), sha)


def deploy(root: DeploymentRoot, deployment_id: str, url: str, sha: str, appspec: t.Any) -> t.Dict[str, t.Any]:
    ctx = EventContext(root=root, deployment_id=deployment_id, application_name="app", deployment_group_name="prod",
                       deployment_group_id=GID)
    opts = StageOptions(url, deployment_id, revision_type="url", remote_src=True, sha256=sha,
                        deployment_group_id=GID, root_dir=root.root_dir, appspec=appspec)
    check_download(ctx, EVENTS, opts)
    return run_lifecycle(ctx, EVENTS, download=opts)


def leftovers(root: DeploymentRoot) -> t.List[str]:
    """Temp files and dirs of a fetch or an unpack anywhere under the deployment root."""
    return [os.path.join(here, name) for here, dirs, files in os.walk(root.root_dir) for name in dirs + files
            if name.startswith((".download-", ".staging-", ".deployment-archive"))]


def test_the_host_downloads_verifies_and_then_reuses_the_revision(tmp_path, http_server):
    root, trace, appspec, url, sha = make(tmp_path, http_server)
    first = deploy(root, "d-HOSTDL001", url + "?X-Amz-Signature=secret", sha, appspec)
    assert [(e["event"], e["status"]) for e in first["events"]] == [("DownloadBundle", "succeeded"), ("BeforeInstall", "succeeded")]
    assert first["bundle"]["bytes_transferred"] == os.path.getsize(str(http_server.root / "rev.tgz"))
    assert first["bundle"]["source"]["revision"] == url + "?X-Amz-Signature=********"
    assert "secret" not in open(os.path.join(root.deployment_dir(GID, "d-HOSTDL001"), ".bundle-info.json")).read()
    assert len(http_server.seen) == 1
    # The next deployment of the same sha256: staged already, not downloaded (even gone from the server).
    os.unlink(str(http_server.root / "rev.tgz"))
    second = deploy(root, "d-HOSTDL002", url, sha, appspec)
    assert second["bundle"]["reused"] is True and second["bundle"]["bytes_transferred"] == 0
    assert len(http_server.seen) == 1
    assert trace.read_text().splitlines() == ["d-HOSTDL001", "d-HOSTDL002"]


def test_other_bytes_at_the_url_fail_download_bundle_before_anything_is_unpacked(tmp_path, http_server):
    root, trace, appspec, url, sha = make(tmp_path, http_server)
    make(tmp_path, http_server, marker="changed at the source")  # the URL now serves other bytes
    with pytest.raises(HookError) as caught:
        deploy(root, "d-HOSTDL001", url, sha, appspec)
    details = caught.value.details
    assert details["failed_event"] == "DownloadBundle"
    assert "sha256 mismatch" in str(caught.value) and "expected %s" % sha in str(caught.value)
    assert [(e["event"], e["status"]) for e in details["events"]] == [("DownloadBundle", "failed"), ("BeforeInstall", "skipped")]
    assert not trace.exists()  # no hook ran
    assert not os.path.exists(root.deployment_dir(GID, "d-HOSTDL001")) and leftovers(root) == []


def test_an_unreachable_url_fails_download_bundle_and_leaves_nothing(tmp_path, http_server):
    root, trace, appspec, url, sha = make(tmp_path, http_server)
    with pytest.raises(HookError, match="HTTP 404"):
        deploy(root, "d-HOSTDL001", url + ".missing", sha, appspec)
    assert not trace.exists()
    assert not os.path.exists(root.deployment_dir(GID, "d-HOSTDL001")) and leftovers(root) == []
