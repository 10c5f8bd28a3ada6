# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""lifecycle_event's action plugin: a previous revision the CodeDeploy agent deployed (YAML, no appspec.json)."""

from __future__ import annotations

import os

from bundle_fixtures import REPO, http_server, make_archive, run_playbook, server_appspec, write_revision  # noqa: F401 pylint: disable=unused-import

from ansible_collections.appspec.deploy.plugins.module_utils._layout import DeploymentRoot

PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  vars:
    common: &common
      deployment_id: d-NEW000001
      application_name: webapp
      deployment_group_name: production
      root_dir: "{{ root }}"
  tasks:
    - name: ApplicationStop of the agent's revision (its appspec.yml parsed on the controller)
      appspec.deploy.lifecycle_event: {events: [ApplicationStop, BeforeInstall], deployment_group_id: good, <<: *common}
    - name: An agent revision whose AppSpec is invalid
      appspec.deploy.lifecycle_event: {events: [ApplicationStop], deployment_group_id: broken, <<: *common}
      ignore_errors: true
    - name: The same, ignored
      appspec.deploy.lifecycle_event:
        events: [ApplicationStop]
        deployment_group_id: broken
        ignore_application_stop_failures: true
        <<: *common
"""


def test_the_previous_appspec_is_read_from_the_host_and_parsed_on_the_controller(tmp_path):
    root = DeploymentRoot(str(tmp_path / "root"))
    trace = tmp_path / "trace"
    stop = {"stop.sh": "#!/bin/sh\necho agent $LIFECYCLE_EVENT $DEPLOYMENT_ID >> %s\n" % trace}
    for group, appspec in (("good", "version: 0.0\nos: linux\nhooks:\n  ApplicationStop:\n    - location: stop.sh\n"),
                           ("broken", "version: 0.0\nos: windows\nhooks:\n  ApplicationStop:\n    - location: stop.sh\n")):
        previous = root.archive_dir(group, "d-AGENT0001")
        write_revision(previous, dict(stop, **{"appspec.yml": appspec}))  # as the agent leaves it: no appspec.json
        root.write_record(group, "last_successful_install", os.path.dirname(previous))
        write_revision(root.archive_dir(group, "d-NEW000001"), {"before.sh": "#!/bin/sh\necho new >> %s\n" % trace},
                       server_appspec({"BeforeInstall": ["before.sh"]}))
    good, broken, ignored = run_playbook(tmp_path, PLAYBOOK, {"root": root.root_dir})
    assert not good.get("failed"), good
    assert [e["status"] for e in good["events"]] == ["succeeded", "succeeded"]
    assert good["events"][0]["revision"] == root.archive_dir("good", "d-AGENT0001")
    assert trace.read_text().splitlines() == ["agent ApplicationStop d-NEW000001", "new"]
    assert broken["failed"] is True and broken["failed_event"] == "ApplicationStop"
    assert "the last successful revision's AppSpec cannot be used" in broken["msg"]
    assert "windows is not supported" in broken["msg"] and "ignore_application_stop_failures" in broken["msg"]
    assert not ignored.get("failed") and ignored["events"][0]["ignored"] is True
    assert trace.read_text().splitlines() == ["agent ApplicationStop d-NEW000001", "new"]  # nothing more ran
    assert not os.path.exists(os.path.join(root.deployment_dir("good", "d-AGENT0001"), "appspec.json"))


APPSPEC_FILENAME_PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: One run from the controller revision, its AppSpec named otherwise
      appspec.deploy.lifecycle_event:
        events: [ApplicationStop, DownloadBundle, BeforeInstall]
        revision: "{{ revision }}"
        appspec_filename: deploy-spec.yml
        deployment_id: d-NAMED0001
        application_name: webapp
        deployment_group_name: production
        root_dir: "{{ root }}"
        lock: release
"""


def test_hooks_run_from_the_appspec_named_by_appspec_filename(tmp_path):
    """The revision also has an appspec.yml: the hooks must come from the validated deploy-spec.yml."""
    trace = tmp_path / "trace"
    revision = tmp_path / "revision"
    write_revision(str(revision), {
        "appspec.yml": "version: 0.0\nos: linux\nhooks:\n  BeforeInstall:\n    - location: wrong.sh\n",
        "deploy-spec.yml": "version: 0.0\nos: linux\nhooks:\n  BeforeInstall:\n    - location: right.sh\n",
        "wrong.sh": "#!/bin/sh\necho wrong >> %s\n" % trace,
        "right.sh": "#!/bin/sh\necho right >> %s\n" % trace,
    })
    root = DeploymentRoot(str(tmp_path / "root"))
    (result,) = run_playbook(tmp_path, APPSPEC_FILENAME_PLAYBOOK, {"root": root.root_dir, "revision": str(revision)})
    assert not result.get("failed"), result
    assert [(e["event"], e["status"]) for e in result["events"]] == [
        ("ApplicationStop", "skipped"), ("DownloadBundle", "succeeded"), ("BeforeInstall", "succeeded")]
    assert trace.read_text().splitlines() == ["right"]
    with open(os.path.join(root.deployment_dir(result["deployment_group_id"], "d-NAMED0001"), "appspec.json")) as handle:
        assert "deploy-spec.yml" in handle.read()


HOST_DOWNLOAD_VARS = """
- hosts: localhost
  gather_facts: false
  vars:
    common: &common
      events: [DownloadBundle, BeforeInstall]
      revision: /nonexistent/on/the/controller.tgz
      sha256: "{{ sha256 }}"
      appspec: "{{ appspec }}"
      application_name: webapp
      deployment_group_name: production
      root_dir: "{{ root }}"
  tasks:
"""
HOST_DOWNLOAD_PLAYBOOK = HOST_DOWNLOAD_VARS + """
    - name: The host downloads the revision itself
      appspec.deploy.lifecycle_event: {revision_url: "{{ url }}", deployment_id: d-HOSTDL001, <<: *common}
    - name: The next deployment of the same sha256 reuses what the host staged
      appspec.deploy.lifecycle_event: {revision_url: "{{ url }}", deployment_id: d-HOSTDL002, <<: *common}
"""
REVISION_URL_CHECKS_PLAYBOOK = HOST_DOWNLOAD_VARS + """
    - name: Only http(s) URLs
      appspec.deploy.lifecycle_event: {revision_url: "ftp://example.com/rev.tgz", deployment_id: d-HOSTDL003, <<: *common}
      ignore_errors: true
    - name: Nothing to check the download against
      appspec.deploy.lifecycle_event:
        events: [DownloadBundle]
        revision_url: "{{ url }}"
        deployment_id: d-HOSTDL004
        application_name: webapp
        deployment_group_name: production
        root_dir: "{{ root }}"
      ignore_errors: true
"""


def _host_download(tmp_path, http_server, playbook):
    trace = tmp_path / "trace"
    path, sha = make_archive(http_server.root / "rev.tgz", {"before.sh": ("#!/bin/sh\necho $DEPLOYMENT_ID >> %s\n" % trace, 0o755)})
    results = run_playbook(tmp_path, playbook, {
        "root": str(tmp_path / "root"), "url": http_server.url("rev.tgz"), "sha256": sha,
        "appspec": server_appspec({"BeforeInstall": ["before.sh"]}).as_dict()})
    return results, trace, os.path.getsize(path)


def test_with_revision_url_the_host_downloads_and_nothing_is_uploaded(tmp_path, http_server):
    (first, second), trace, size = _host_download(tmp_path, http_server, HOST_DOWNLOAD_PLAYBOOK)
    assert not first.get("failed") and not second.get("failed"), (first, second)
    assert [(e["event"], e["status"]) for e in first["events"]] == [("DownloadBundle", "succeeded"), ("BeforeInstall", "succeeded")]
    # Nothing went through the controller: its revision path does not exist, nothing was fetched or cached
    # there; the host moved the bytes itself.
    assert first["bytes_transferred"] == 0 and first["events"][0]["bytes_transferred"] == size
    assert not os.path.exists(str(tmp_path / "cache" / "revisions")) and not os.path.exists(str(tmp_path / "cache" / "hosts"))
    assert second["bytes_transferred"] == 0 and second["bundle"]["reused"] is True
    assert len(http_server.seen) == 1  # the second deployment was not downloaded again
    assert trace.read_text().splitlines() == ["d-HOSTDL001", "d-HOSTDL002"]


def test_revision_url_is_checked_before_the_host_is_asked_anything(tmp_path, http_server):
    (ftp, bare), _trace, _size = _host_download(tmp_path, http_server, REVISION_URL_CHECKS_PLAYBOOK)
    assert ftp["failed"] is True and "revision_url must be an http(s):// URL" in ftp["msg"]
    assert bare["failed"] is True and "revision_url needs sha256 and appspec" in bare["msg"]
    assert "events" not in ftp and "events" not in bare  # the module never ran
