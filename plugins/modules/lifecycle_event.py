#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lifecycle_event
short_description: Run the lifecycle-event hooks of an AWS CodeDeploy revision on a host
version_added: 0.1.0
description:
  - Runs the scripts of one or more lifecycle events of a CodeDeploy revision (its C(appspec.yml)
    C(hooks)) in the order given, as the CodeDeploy agent runs them, and stops at the first failure.
  - Each script runs in its own session and process group, with C(stdin) from C(/dev/null), in the
    revision root as working directory, with the agent's environment variables
    (C(LIFECYCLE_EVENT), C(DEPLOYMENT_ID), C(APPLICATION_NAME), C(DEPLOYMENT_GROUP_NAME),
    C(DEPLOYMENT_GROUP_ID), the C(BUNDLE_*) variables of O(bundle_env); in release mode also
    C(RELEASE_DIR), C(PREVIOUS_RELEASE_DIR), C(RELEASE_ROOT)) and a PATH that includes the sbin directories.
  - On a script's C(timeout), its whole process group (and every process it started, even in a new session)
    gets SIGTERM, then SIGKILL 10 seconds later, until none is left.
    A script that exits while a daemon it started still holds its output open succeeds at once; the daemon keeps running.
  - C(runas) switches user (groups, HOME, USER, LOGNAME, SHELL) without a password or a terminal; an unknown
    user fails the task before any script runs. Scripts and users of the deployment's own revision are all
    checked before the first script runs.
  - Every output line goes to C(<deployment>/logs/scripts.log) with a timestamp, the event, the script and the
    stream, in the agent's format; one line per event goes to C(<root_dir>/deployment-logs/codedeploy-agent-deployments.log).
  - V(ApplicationStop), V(BeforeBlockTraffic) and V(AfterBlockTraffic) run the scripts of the B(last successful)
    revision installed in this deployment group on this host (as the agent does), and are skipped when there is none.
  - The reserved V(DownloadBundle) event stages the revision (as M(appspec.deploy.bundle) does with
    O(appspec.deploy.bundle#module:remote_src=true)) from the archive O(revision) on the host, or reuses the revision
    with O(sha256) already staged in this deployment group; the events after it run the staged revision. So one task
    can run a host's whole lifecycle, for example V([ApplicationStop, DownloadBundle, BeforeInstall, Install,
    AfterInstall, ApplicationStart, ValidateService]). Before anything runs (and before the lock is taken) the task
    fails with RV(revision_missing=true) when the revision is neither on the host nor staged.
  - The reserved V(Install) event installs the revision's C(files) and C(permissions) (or, with O(release_root),
    makes a new release directory) and then records the deployment as the last successful install.
    In release mode the C(current) link is switched right after V(AfterInstall).
  - See C(docs/hooks.md) for every detail and each difference from the CodeDeploy agent.
author:
  - appspec.deploy developers (@appspec-deploy)
extends_documentation_fragment:
  - appspec.deploy.deployment_identity
  - appspec.deploy.attributes
attributes:
  check_mode:
    support: full
    details:
      - Nothing runs; RV(events) lists every script that would run with its resolved path and user,
        and missing scripts or unknown users fail the task as they would in a real run.
      - With V(DownloadBundle), nothing is staged either; the events after it are planned from O(appspec) (their scripts'
        paths are where the revision will put them, not checked), and V(Install) is skipped when the revision is not staged yet.
  diff_mode:
    support: partial
    details:
      - Only the reserved V(Install) event (the files recorded for cleanup) and V(DownloadBundle) (the deployment
        directory and the sha256 staged there) return a diff; with both, the diff is a list.
  idempotent:
    support: none
    details:
      - Hook scripts run every time, as CodeDeploy runs them for every deployment.
options:
  deployment_id:
    required: true
  application_name:
    required: true
  deployment_group_name:
    required: true
  events:
    description:
      - The lifecycle events to run, in CodeDeploy's order
        (V(BeforeBlockTraffic), V(AfterBlockTraffic), V(ApplicationStop), V(BeforeInstall), V(Install),
        V(AfterInstall), V(ApplicationStart), V(ValidateService), V(BeforeAllowTraffic), V(AfterAllowTraffic)).
      - V(Install) is the reserved install step; V(DownloadBundle) stages the revision (see O(revision)). Other reserved
        events (V(BlockTraffic), V(AllowTraffic)) belong to other modules and roles and are refused.
    type: list
    elements: str
    required: true
    version_added: 0.1.0
  bundle_env:
    description:
      - Extra environment variables for the scripts, normally the RV(appspec.deploy.bundle#module:bundle_env)
        return value of M(appspec.deploy.bundle) (C(BUNDLE_BUCKET), C(BUNDLE_KEY), C(BUNDLE_VERSION),
        C(BUNDLE_ETAG), C(BUNDLE_COMMIT)...).
      - With V(DownloadBundle), the C(BUNDLE_*) variables kept with the staged revision come first and these override them.
      - A null value removes the variable from the scripts' environment.
    type: dict
    default: {}
    version_added: 0.1.0
  ignore_application_stop_failures:
    description:
      - Carry on when V(ApplicationStop), V(BeforeBlockTraffic) or V(AfterBlockTraffic) of the last successful
        revision fails (its event is returned as failed with C(ignored=true), and a warning is shown),
        like CodeDeploy's C(--ignore-application-stop-failures).
    type: bool
    default: false
    version_added: 0.1.0
  archive_dir:
    description:
      - Run the hooks (and V(Install)) of this revision directory instead of the deployment's own
        C(deployment-archive). Used by rollback to re-run an older revision.
      - V(ApplicationStop), V(BeforeBlockTraffic) and V(AfterBlockTraffic) still run the last successful revision.
      - Logs still go to this deployment's C(logs/scripts.log).
    type: path
    version_added: 0.1.0
  rollback:
    description:
      - Roll this deployment group back, as a deployment of its own (O(deployment_id) is the rollback's id). The events
        run the revision of an earlier deployment still kept on the host, O(rollback_to); by default the deployment that
        most recently succeeded on this host, other than O(rollback_from), whose revision and (release mode) finished
        release are still there.
      - The call whose O(events) include V(Install) first records O(rollback_from) as failed, so that it is never a
        rollback target again. In release mode V(Install) then switches C(current) back (the release exists already);
        in place it reinstalls the old revision's files (use O(file_exists_behavior=OVERWRITE)).
      - When there is nothing to go back to, nothing runs and RV(rollback_target) is null.
      - The rollback acts the way the group was last deployed on this host, in place or in its release root, which
        the host recorded; O(release_root) may be left out, and a different one is refused before anything runs.
      - Cannot be combined with V(DownloadBundle) or O(archive_dir).
    type: bool
    default: false
    version_added: 0.1.0
  rollback_to:
    description:
      - With O(rollback=true), the deployment id to go back to; it must still be kept on the host.
    type: str
    version_added: 0.1.0
  rollback_from:
    description:
      - With O(rollback=true), the deployment rolled back. Default is the deployment that runs now (C(current) in
        release mode, else the last successful install).
    type: str
    version_added: 0.1.0
  previous_appspec:
    description:
      - The normalized AppSpec of the last successful revision on the host, parsed on the controller.
      - Needed only when that revision has no C(appspec.json) beside its C(deployment-archive), which is the case
        for a revision the CodeDeploy agent deployed. The action plugin of this module sets it by itself (and
        O(appspec) in the same way for a rollback to such a revision). When the
        module reports that it needs it, the plugin reads that revision's YAML AppSpec from the host, parses it on
        the controller and runs the module again, before any script has run.
    type: dict
    version_added: 0.1.0
  previous_appspec_error:
    description:
      - Why the controller could not parse the last successful revision's AppSpec. The events that run that
        revision's scripts fail with it (O(ignore_application_stop_failures) applies). Set by the action plugin.
    type: str
    version_added: 0.1.0
  release_root:
    description:
      - Release mode. The revision is installed as C(<release_root>/releases/<id>), C(current) is
        switched to it right after V(AfterInstall), and scripts get C(RELEASE_ROOT), C(RELEASE_DIR) and
        C(PREVIOUS_RELEASE_DIR). C(<id>) is O(deployment_id), or with O(archive_dir) the deployment that
        staged that revision (so a rollback re-running an older revision sees that revision's release).
    type: path
    version_added: 0.1.0
  file_exists_behavior:
    description:
      - What V(Install) does with a file that already exists at a destination and was not installed by this
        deployment group. The AppSpec's own C(file_exists_behavior) wins when it has one.
    type: str
    choices: [DISALLOW, OVERWRITE, RETAIN]
    default: DISALLOW
    version_added: 0.1.0
  keep_releases:
    description:
      - Release mode, with O(mark_success=true). How many finished releases to keep; older ones are pruned
        (never the current one, the previous good one, or one in progress).
    type: int
    default: 5
    version_added: 0.1.0
  shared_paths:
    description:
      - Release mode. Paths relative to a release that are links into C(<release_root>/shared), the same in every release.
    type: list
    elements: str
    default: []
    version_added: 0.1.0
  lock:
    description:
      - The host lock of this deployment group (C(<root_dir>/locks/<deployment_group_id>.lock)).
      - V(acquire) takes it before anything runs (a lock held by another deployment fails the task, naming it)
        and keeps it after the task, whether the events succeeded or failed.
      - V(release) takes it the same way (the same deployment may take it again) and frees it at the end of the task,
        whether the events succeeded or failed.
      - V(none) neither takes nor frees it; when this deployment holds it (taken by an earlier task), its expiry is renewed.
      - The lock expires 10 minutes after it was last renewed. Every task of the deployment that holds it renews it,
        and so does a thread while its hooks run, so a long hook keeps it; a killed controller blocks the group for
        10 minutes at most, after which O(break_stale_lock) (or the release module with O(appspec.deploy.release#module:force=true)) breaks it.
    type: str
    choices: [acquire, release, none]
    default: none
    version_added: 0.1.0
  break_stale_lock:
    description:
      - When taking the lock, break a lock that is past its expiry (or unreadable) instead of failing.
        A lock that is still valid is never broken.
    type: bool
    default: false
    version_added: 0.1.0
  mark_success:
    description:
      - Record the outcome of the lifecycle in the group's history (C(deployment-instructions/<deployment_group_id>_deployment_history.json),
        where rollback targets come from). When every event succeeded, record this deployment (or the revision run with
        O(rollback=true)) as the last good one of the group (C(<deployment_group_id>_last_good_deployment)); in release
        mode also mark its release good (bad on failure) and prune old releases (O(keep_releases)).
    type: bool
    default: false
    version_added: 0.1.0
  revision:
    description:
      - With V(DownloadBundle) in O(events), the revision to stage, as M(appspec.deploy.bundle) takes it (a path on
        the controller to a directory or a zip, tar or tar.gz archive, an HTTP(S) URL, C(s3://bucket/key) or a
        git URL). The action plugin resolves and validates it on the controller and transfers the archive only when
        the host lacks it.
      - The module itself receives the path of that upload in the task's temp dir (moved, not copied, and removed
        in any case), or V("") to reuse the revision with O(sha256) already staged in this deployment group; when
        there is none, the task fails with RV(revision_missing=true) before anything runs.
    type: str
    default: ""
    version_added: 0.1.0
  revision_url:
    description:
      - With V(DownloadBundle) in O(events), an C(http(s)://) URL the host downloads the revision from itself
        (Python standard library, proxies from the environment), verified against O(sha256) before anything is
        unpacked; needs O(sha256) and O(appspec). The action plugin then transfers nothing and O(revision) is not used.
      - A revision with O(sha256) already staged in this deployment group is reused without downloading.
      - M(appspec.deploy.deployment_plan) returns it as C(download_url) with
        O(appspec.deploy.deployment_plan#module:revision_download=host) (an S3 revision as a URL presigned on the controller).
    type: str
    version_added: 0.1.0
  appspec_filename:
    description:
      - With V(DownloadBundle) in O(events) and no O(appspec), the name of the AppSpec inside the revision;
        C(appspec.yml) and C(appspec.yaml) are tried after it. The action plugin reads and parses that file on the
        controller and sends the result as O(appspec); the host never reads it.
    type: str
    version_added: 0.1.0
  sha256:
    description:
      - The SHA-256 of the revision archive (hex, optionally prefixed with C(sha256:)). Required with V(DownloadBundle).
    type: str
    version_added: 0.1.0
  appspec:
    description:
      - The revision's AppSpec, normalized, as M(appspec.deploy.appspec_info) returns it. Required with
        V(DownloadBundle); kept as C(appspec.json) in the deployment directory, where the later events read it.
      - With O(rollback=true) to a revision the CodeDeploy agent deployed (no C(appspec.json)), the action plugin
        sets it from that revision's YAML AppSpec, which it parses on the controller; it is then kept as C(appspec.json).
    type: dict
    version_added: 0.1.0
  max_revisions:
    description:
      - With V(DownloadBundle). How many deployment directories to keep per deployment group (at least 1), as
        O(appspec.deploy.bundle#module:max_revisions).
    type: int
    default: 5
    version_added: 0.1.0
  max_unpacked_size:
    description:
      - With V(DownloadBundle). Refuse archives whose files add up to more than this many bytes unpacked (V(0) means no
        limit other than the free disk space). Accepts units such as V(500M) or V(10G).
    type: str
    default: 10G
    version_added: 0.1.0
  allow_setuid:
    description:
      - With V(DownloadBundle). Keep setuid and setgid bits of archive entries. By default they are dropped.
    type: bool
    default: false
    version_added: 0.1.0
  output_tail_bytes:
    description:
      - How many bytes of the end of each script's output are returned in C(output_tail).
        The whole output is always in C(logs/scripts.log); it is never held in memory.
    type: int
    default: 4096
    version_added: 0.1.0
notes:
  - Run the task as root (C(become=true)) for C(runas). Without root, a script with C(sudo) set to V(true) runs
    through C(sudo -n) (which never prompts for a password), and C(runas) of another user needs C(sudo) too.
seealso:
  - module: appspec.deploy.bundle
  - module: appspec.deploy.appspec_info
"""

EXAMPLES = r"""
- name: Stop the application (scripts of the last successful revision) and take the host lock
  appspec.deploy.lifecycle_event:
    events: [ApplicationStop]
    deployment_id: "{{ deployment_id }}"
    application_name: webapp
    deployment_group_name: production
    lock: acquire
    ignore_application_stop_failures: true

- name: Install and start the staged revision, then record it as good and free the lock
  appspec.deploy.lifecycle_event:
    events: [BeforeInstall, Install, AfterInstall, ApplicationStart, ValidateService]
    deployment_id: "{{ deployment_id }}"
    application_name: webapp
    deployment_group_name: production
    bundle_env: "{{ staged.bundle_env }}"
    mark_success: true
    lock: release
  register: lifecycle

- name: The whole in-place lifecycle of a host in one task (the action plugin uploads the revision if needed)
  appspec.deploy.lifecycle_event:
    events: [ApplicationStop, DownloadBundle, BeforeInstall, Install, AfterInstall, ApplicationStart, ValidateService]
    deployment_id: "{{ deployment_id }}"
    application_name: webapp
    deployment_group_name: production
    sha256: "{{ revision_sha256 }}"
    appspec: "{{ revision_appspec }}"
    ignore_application_stop_failures: true
    mark_success: true
    lock: release

- name: Show what each script printed last
  ansible.builtin.debug:
    msg: "{{ lifecycle.events | map(attribute='scripts') | flatten | map(attribute='output_tail') }}"

- name: List what would run, without running it
  appspec.deploy.lifecycle_event:
    events: [ApplicationStart, ValidateService]
    deployment_id: "{{ deployment_id }}"
    application_name: webapp
    deployment_group_name: production
  check_mode: true
"""

RETURN = r"""
events:
  description: One entry per requested event, in order.
  returned: always
  type: list
  elements: dict
  contains:
    event:
      description: The event name.
      type: str
      sample: ApplicationStart
    status:
      description:
        - V(succeeded), V(failed), or V(skipped) (no scripts, no previous revision, check mode, or an earlier event failed).
      type: str
      sample: succeeded
    reason:
      description: Why the event was skipped.
      type: str
      returned: when skipped
      sample: no scripts for this event in the AppSpec
    msg:
      description: Why the event failed.
      type: str
      returned: when failed
    ignored:
      description: The failure was ignored because of O(ignore_application_stop_failures).
      type: bool
      returned: when a failure was ignored
    revision:
      description: The archive directory of the last successful revision whose scripts this event ran.
      type: str
      returned: for ApplicationStop, BeforeBlockTraffic and AfterBlockTraffic
    duration:
      description: Seconds the event took.
      type: float
      sample: 0.42
    scripts:
      description: The scripts that ran (or, in check mode, would run), in order.
      type: list
      elements: dict
      contains:
        location:
          description: The C(location) as written in the AppSpec.
          type: str
          sample: scripts/start_server.sh
        path:
          description: The script's absolute path.
          type: str
          sample: /opt/codedeploy-agent/deployment-root/8f0c.../d-ABCDEFGHI/deployment-archive/scripts/start_server.sh
        runas:
          description: The user the script runs as.
          type: str
          sample: root
        sudo:
          description: The script's C(sudo) setting.
          type: bool
        timeout:
          description: The script's timeout in seconds.
          type: int
          sample: 300
        exit_code:
          description: Its exit code (128 + N when killed by signal N); null when it did not run or could not start.
          type: int
          sample: 0
        duration:
          description: Seconds it ran.
          type: float
          sample: 0.013
        output_tail:
          description: The last O(output_tail_bytes) bytes of its stdout and stderr, interleaved, starting on a whole line.
          type: str
          sample: "server started on port 8080\n"
        timed_out:
          description: The script was killed at its timeout.
          type: bool
          returned: when it timed out
        left_running:
          description: The script exited but processes it started still held its output open; they were left running.
          type: bool
          returned: when it happened
        output_not_logged:
          description:
            - Bytes of its output not written to C(scripts.log), past the log's caps (4 MiB a script, 16 MiB a
              deployment); the end of the output is still in RV(events[].scripts[].output_tail).
          type: int
          returned: when output was not logged
    install:
      description: What the reserved V(Install) event did (the install plan summary, or the new release).
      type: dict
      returned: for the Install event
    bytes_transferred:
      description: Bytes moved into the deployment directory by staging (0 when the revision was already staged).
      type: int
      returned: for the DownloadBundle event
    reused:
      description: A revision already staged on the host was reused.
      type: bool
      returned: for the DownloadBundle event
    sha256:
      description: The SHA-256 of the staged revision archive.
      type: str
      returned: for the DownloadBundle event
    deployment_dir:
      description: The deployment directory the revision is staged in.
      type: str
      returned: for the DownloadBundle event
bundle:
  description:
    - What V(DownloadBundle) did, as M(appspec.deploy.bundle) returns it (without the diff), for example
      C(archive_dir), C(sha256), C(reused), C(bytes_transferred), C(bundle_env), C(pruned).
    - Null when staging failed or did not run.
  returned: when V(DownloadBundle) is in O(events)
  type: dict
revision_missing:
  description: True when V(DownloadBundle) is in O(events) and the revision is neither at O(revision) nor staged; nothing ran.
  returned: on failure
  type: bool
failed_event:
  description: The event that failed, or null.
  returned: always
  type: str
  sample: null
release_dir:
  description: The release directory of this deployment (release mode), else null.
  returned: always
  type: str
  sample: /srv/webapp/releases/d-ABCDEFGHI
previous_release_dir:
  description: The release C(current) pointed to before this deployment (release mode), else null.
  returned: always
  type: str
  sample: /srv/webapp/releases/d-ZYXWVUTSR
deployment_group_id:
  description: The deployment group id used.
  returned: always
  type: str
  sample: 2b0a4a53-3a5d-5c8e-9d61-0a1f6b3c2d4e
deployment_dir:
  description: This deployment's directory under O(root_dir) (holding C(logs/scripts.log)).
  returned: always
  type: str
  sample: /opt/codedeploy-agent/deployment-root/2b0a4a53-3a5d-5c8e-9d61-0a1f6b3c2d4e/d-ABCDEFGHI
last_good_deployment:
  description:
    - The deployment directory of the last deployment whose whole lifecycle succeeded on this host, as
      recorded before this task ran (C(<group-id>_last_good_deployment)); null when there is none.
  returned: always
  type: str
  sample: /opt/codedeploy-agent/deployment-root/2b0a4a53-3a5d-5c8e-9d61-0a1f6b3c2d4e/d-ZYXWVUTSR
lock:
  description: The host lock after the task (its content), or null when the task freed it or left it alone.
  returned: always
  type: dict
rollback_target:
  description: With O(rollback=true), the deployment id whose revision the events ran; null when there was nothing to go back to.
  returned: when O(rollback=true)
  type: str
  sample: d-ZYXWVUTSR
rollback_from:
  description: With O(rollback=true), the deployment rolled back.
  returned: when O(rollback=true)
  type: str
  sample: d-ABCDEFGHI
release_root:
  description: With O(rollback=true), the release root the group was deployed with on this host (null - in place).
  returned: when O(rollback=true)
  type: str
  sample: /srv/webapp
"""

import contextlib
import os
import typing as t

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.formatters import human_to_bytes

from ansible_collections.appspec.deploy.plugins.module_utils._errors import DeployError
from ansible_collections.appspec.deploy.plugins.module_utils._hooks import AppSpecNeeded, EventContext, HookError
from ansible_collections.appspec.deploy.plugins.module_utils._host_state import GroupState
from ansible_collections.appspec.deploy.plugins.module_utils._installer import install_revision
from ansible_collections.appspec.deploy.plugins.module_utils._lifecycle import DOWNLOAD_BUNDLE, check_download, run_lifecycle
from ansible_collections.appspec.deploy.plugins.module_utils._layout import deployment_group_id, identity_argument_spec
from ansible_collections.appspec.deploy.plugins.module_utils._releases import ReleaseRoot
from ansible_collections.appspec.deploy.plugins.module_utils._spec import (
    ParsedAppSpec,
    deployment_dir_of,
    read_appspec_json,
    require_appspec_json,
    write_appspec_json,
)
from ansible_collections.appspec.deploy.plugins.module_utils._staging import StageOptions, read_info
from ansible_collections.appspec.deploy.plugins.module_utils._upload import consumes_upload, drop_upload


# --- The steps of the install/release module_utils, as the runner calls them -----------------------


def _check_mode_status(ctx: EventContext) -> t.Dict[str, t.Any]:
    """In check mode Install only says what it would do, like the hooks, which do not run."""
    return {"status": "skipped", "reason": "check mode: what it would write is in install"} if ctx.check_mode else {}


def _install_step(params: t.Dict[str, t.Any], ctx: EventContext, diffs: t.List[t.Dict[str, t.Any]]) -> t.Dict[str, t.Any]:
    """The reserved Install event: files + permissions in place, or a new release directory."""
    archive = ctx.own_archive_dir
    if ctx.check_mode and ctx.own_appspec is not None and not os.path.isdir(archive):
        if not ctx.preview_archive:  # a URL the host would download: not fetched in check mode
            return {"changed": True, "status": "skipped", "reason": "check mode: the revision is not staged yet"}
        archive = ctx.preview_archive  # DownloadBundle staged nothing: look at the revision unpacked aside
    parsed = read_appspec_json(deployment_dir_of(archive)) or ctx.own_appspec or require_appspec_json(deployment_dir_of(archive))
    if params["release_root"]:
        staged = read_info(os.path.dirname(os.path.normpath(archive))) or {}  # what bundle recorded: the sha256
        created = ReleaseRoot(params["release_root"]).create_release(
            ctx.revision_deployment_id, archive, parsed, sha256=staged.get("sha256"),
            shared_paths=params["shared_paths"], check_mode=ctx.check_mode,
        )
        if created.get("changed"):
            diffs.append({"before": {"release": None}, "after": {"release": created["release_dir"],
                                                                 "files": created.get("files", created.get("copied", 0) + created.get("linked", 0))}})
        if created.get("files_outside_release"):
            ctx.warnings.append(
                "release mode installs only the AppSpec files whose destination is under %s/current; not installed: %s"
                % (params["release_root"], ", ".join(created["files_outside_release"])))
        return dict(_check_mode_status(ctx), changed=bool(created.get("changed")), install=created)
    result = install_revision(
        archive, parsed, root=ctx.root, group_id=ctx.deployment_group_id,
        file_exists_behavior=params["file_exists_behavior"], check_mode=ctx.check_mode,
    )
    ctx.warnings.extend(result.pop("warnings", None) or [])
    diff = result.pop("diff", None)
    if diff:
        diffs.append(diff)
    return dict(_check_mode_status(ctx), changed=bool(result.get("changed")), install=result)


def _switch_step(params: t.Dict[str, t.Any], ctx: EventContext, diffs: t.List[t.Dict[str, t.Any]]) -> t.Dict[str, t.Any]:
    """Release mode: point ``current`` at this deployment's release (temp link + rename)."""
    if ctx.check_mode:  # the release does not exist yet in check mode: the switch is a prediction
        switched = {"changed": ctx.release_dir != ctx.previous_release_dir, "current": ctx.release_dir,
                    "previous_dir": ctx.previous_release_dir}
    else:
        switched = ReleaseRoot(params["release_root"]).switch(ctx.revision_deployment_id)
    if switched["changed"]:
        diffs.append({"before": {"current": ctx.previous_release_dir}, "after": {"current": ctx.release_dir},
                      "before_header": "%s/current" % params["release_root"], "after_header": "%s/current" % params["release_root"]})
    return {"switch": switched}


# --- The module ------------------------------------------------------------------------------------


def _download_options(params: t.Dict[str, t.Any], gid: str, consume_upload: bool) -> StageOptions:
    """DownloadBundle's staging: the action plugin's upload (a file on the host), or revision_url downloaded here."""
    return StageOptions(
        params["revision"] or "", params["deployment_id"], revision_type="url" if params["revision_url"] else "local",
        remote_src=True,
        sha256=params["sha256"], deployment_group_id=gid, root_dir=params["root_dir"],
        max_revisions=params["max_revisions"], max_unpacked_size=params["max_unpacked_size"],
        allow_setuid=params["allow_setuid"],
        appspec=ParsedAppSpec.from_dict(params["appspec"], "appspec") if params["appspec"] is not None else None,
        release_root=params["release_root"], consume_upload=consume_upload,
    )


def _rollback_release_root(params: t.Dict[str, t.Any], gid: str) -> t.Optional[str]:
    """A rollback acts the way the group was deployed on this host (in place or its release root), never another."""
    if DOWNLOAD_BUNDLE in params["events"] or params["archive_dir"]:
        raise DeployError("rollback runs a revision kept on the host: it cannot be combined with DownloadBundle or archive_dir")
    known, recorded = GroupState(params["root_dir"], gid).recorded_release_root()
    if not known:
        return params["release_root"]
    if params["release_root"] and os.path.normpath(params["release_root"]) != os.path.normpath(recorded or ""):
        raise DeployError("nothing was run: application %s, deployment group %s was last deployed on this host %s, not with "
                          "release_root %s: leave release_root out, the rollback finds it" % (
                              params["application_name"], params["deployment_group_name"],
                              "with release_root %s" % recorded if recorded else "in place", params["release_root"]))
    return recorded


def _rollback(params: t.Dict[str, t.Any], state: GroupState) -> t.Tuple[t.Optional[str], t.Optional[str], str]:
    """(the deployment rolled back, the deployment gone back to or None, why there is none)."""
    if not state.deployed():
        return None, None, ("application %s, deployment group %s was never deployed on this host (nothing under %s): nothing "
                            "to roll back" % (params["application_name"], params["deployment_group_name"], state.root.root_dir))
    rollback_from = params["rollback_from"] or state.installed()
    return (rollback_from, state.rollback_target(rollback_from, params["rollback_to"]),
            "nothing to roll back to: no earlier deployment of this group that succeeded is kept on this host")


def run(params: t.Dict[str, t.Any], check_mode: bool, consume_upload: bool = False) -> t.Dict[str, t.Any]:
    """Everything but Ansible: returns the result, raises DeployError (details = partial result).

    ``params["max_unpacked_size"]`` is in bytes here (main() parses it); ``consume_upload``: ``revision``
    is the action plugin's upload, to be moved rather than copied.
    """
    if params["output_tail_bytes"] < 0:
        raise DeployError("output_tail_bytes must be 0 or more, got %d" % params["output_tail_bytes"])
    if params["keep_releases"] < 1:  # refused before anything runs, not when pruning at the end
        raise DeployError("keep_releases must be at least 1, got %d" % params["keep_releases"])
    gid = params["deployment_group_id"] or deployment_group_id(params["application_name"], params["deployment_group_name"])
    if params["rollback"]:
        params = dict(params, release_root=_rollback_release_root(params, gid))
    state = GroupState(params["root_dir"], gid, params["release_root"])
    common = {"deployment_group_id": gid, "last_good_deployment": state.last_good_dir(), "lock": None}  # type: t.Dict[str, t.Any]
    archive_dir = params["archive_dir"]
    rollback_from = None  # type: t.Optional[str]
    if params["rollback"]:
        rollback_from, target, why_none = _rollback(params, state)
        common.update(rollback_from=rollback_from, rollback_target=target, release_root=params["release_root"])
        if target is None:
            return dict(common, changed=False, events=[], release_dir=None, previous_release_dir=None,
                        deployment_dir=state.deployment_dir(params["deployment_id"]), msg=why_none)
        archive_dir = state.archive_dir(target)
    own_appspec = ParsedAppSpec.from_dict(params["appspec"], "appspec") if params["appspec"] is not None else None
    if archive_dir and own_appspec is not None and not check_mode and read_appspec_json(deployment_dir_of(archive_dir)) is None:
        write_appspec_json(deployment_dir_of(archive_dir), own_appspec)  # a revision the agent deployed: keep it parsed
    ctx = EventContext(
        root=state.root,
        deployment_id=params["deployment_id"],
        application_name=params["application_name"],
        deployment_group_name=params["deployment_group_name"],
        deployment_group_id=gid,
        bundle_env=dict((k, None if v is None else str(v)) for k, v in (params["bundle_env"] or {}).items()),
        archive_dir=archive_dir,
        previous_appspec=ParsedAppSpec.from_dict(params["previous_appspec"], "previous_appspec")
        if params["previous_appspec"] is not None else None,
        previous_appspec_error=params["previous_appspec_error"],
        # A check-mode preview of later hooks (BeforeAllowTraffic of a blue/green run) plans them from the given AppSpec.
        own_appspec=own_appspec if archive_dir or check_mode else None,
        release_root=params["release_root"],
        ignore_application_stop_failures=params["ignore_application_stop_failures"],
        output_tail_bytes=params["output_tail_bytes"],
        check_mode=check_mode,
    )
    ctx.release_dir, ctx.previous_release_dir = state.release_dirs(ctx.revision_deployment_id)
    common.update(release_dir=ctx.release_dir, previous_release_dir=ctx.previous_release_dir, deployment_dir=ctx.deployment_dir)
    diffs = []  # type: t.List[t.Dict[str, t.Any]]
    reserved = {"Install": lambda c: _install_step(params, c, diffs)}
    after = {}  # type: t.Dict[str, t.Any]
    if params["release_root"]:
        events = params["events"]
        switch_after = "AfterInstall" if "AfterInstall" in events else ("Install" if "Install" in events else None)
        if switch_after:
            after[switch_after] = lambda c: _switch_step(params, c, diffs)
    download = None  # type: t.Optional[StageOptions]
    if DOWNLOAD_BUNDLE in params["events"]:  # before the lock and before any hook: can it be staged at all?
        download = _download_options(params, gid, consume_upload)
        check_download(ctx, params["events"], download, reserved)
    if params["lock"] != "none":
        common["lock"] = state.lock.acquire(params["deployment_id"], break_stale=params["break_stale_lock"],
                                            check_mode=check_mode).get("lock")
    elif not check_mode:
        try:  # the lock an earlier task of this deployment took: every run of it renews the short expiry
            state.lock.refresh(params["deployment_id"])
        except OSError:
            pass  # e.g. a full disk: the lock stays as it was, still ours until it expires
    try:
        if "Install" in params["events"] and not check_mode:
            state.adopt_records()
            if rollback_from and rollback_from != ctx.revision_deployment_id:
                state.record_outcome(rollback_from, False)  # never a rollback target again
        try:
            with state.lock.kept_fresh(params["deployment_id"]) if not check_mode else contextlib.nullcontext():
                result = run_lifecycle(ctx, params["events"], download=download, reserved_handlers=reserved,
                                       after_event_handlers=after, diffs=diffs)
        except HookError as err:
            if params["mark_success"] and not check_mode:
                state.record_outcome(ctx.revision_deployment_id, False)
            err.details.update(common)
            if params["lock"] == "release":
                err.details["lock"] = None
            raise
        if params["mark_success"] and not check_mode:
            ctx.warnings.extend(state.record_outcome(ctx.revision_deployment_id, True,
                                                     keep_releases=params["keep_releases"]))
            result["changed"] = True
            result["warnings"] = list(ctx.warnings)
    finally:
        if params["lock"] == "release":
            state.lock.release(params["deployment_id"], check_mode=check_mode)
            common["lock"] = None
    result.update(common)
    if diffs:
        result["diff"] = diffs[0] if len(diffs) == 1 else diffs
    return result


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            identity_argument_spec("deployment_id", "application_name", "deployment_group_name"),
            events=dict(type="list", elements="str", required=True),
            bundle_env=dict(type="dict", default={}),
            ignore_application_stop_failures=dict(type="bool", default=False),
            archive_dir=dict(type="path"),
            rollback=dict(type="bool", default=False),
            rollback_to=dict(type="str"),
            rollback_from=dict(type="str"),
            previous_appspec=dict(type="dict"),
            previous_appspec_error=dict(type="str"),
            release_root=dict(type="path"),
            file_exists_behavior=dict(type="str", choices=["DISALLOW", "OVERWRITE", "RETAIN"], default="DISALLOW"),
            keep_releases=dict(type="int", default=5),
            shared_paths=dict(type="list", elements="str", default=[]),
            lock=dict(type="str", choices=["acquire", "release", "none"], default="none"),
            break_stale_lock=dict(type="bool", default=False),
            mark_success=dict(type="bool", default=False),
            output_tail_bytes=dict(type="int", default=4096),
            revision=dict(type="str", default=""),
            revision_url=dict(type="str"),
            sha256=dict(type="str"),
            appspec=dict(type="dict"),
            appspec_filename=dict(type="str"),
            max_revisions=dict(type="int", default=5),
            max_unpacked_size=dict(type="str", default="10G"),
            allow_setuid=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    params = dict(module.params)
    try:
        params["max_unpacked_size"] = human_to_bytes(params["max_unpacked_size"])
    except ValueError as err:
        module.fail_json(msg="max_unpacked_size: %s" % err)
    upload = params["revision"] if DOWNLOAD_BUNDLE in params["events"] else ""
    consume = consumes_upload(upload, getattr(module, "_tmpdir", None))
    try:
        result = run(params, module.check_mode, consume_upload=consume)
    except DeployError as err:
        if not isinstance(err, AppSpecNeeded):  # the action plugin runs the module again with the same upload
            drop_upload(upload, consume)
        details = dict(err.details)
        for warning in details.pop("warnings", None) or []:
            module.warn(warning)
        module.fail_json(msg=str(err), **details)
    if drop_upload(upload, consume):
        # We removed the action plugin's temp dir ourselves: spare it a round trip.
        result["_ansible_suppress_tmpdir_delete"] = True
    for warning in result.pop("warnings", None) or []:
        module.warn(warning)
    if not module._diff:
        result.pop("diff", None)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
