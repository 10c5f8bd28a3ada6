# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""lifecycle_event's action plugin: a previous revision the CodeDeploy agent deployed (YAML, no appspec.json)."""

from __future__ import annotations

import os

from bundle_fixtures import run_playbook, server_appspec, write_revision

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
