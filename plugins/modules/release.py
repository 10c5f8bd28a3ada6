#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: release
short_description: Versioned release directories with an atomic current link, and the host lock
version_added: 0.1.0
description:
  - Manages C(<release_root>/releases/<deployment-id>/), C(<release_root>/shared/) and the link
    C(<release_root>/current), the layout Capistrano, ansistrano and M(community.general.deploy_helper) users know.
  - A new release holds the revision, or only the AppSpec C(files) whose destination lies under
    C(<release_root>/current) when there are any (with their C(permissions)). Files identical to the previous
    release's are hardlinked from it (O(link_unchanged)). O(shared_paths) are linked into every release.
  - C(current) is switched by creating a new link under a temporary name and renaming it over the old one,
    never by removing it first. A C(current) that is a real directory is an error and is never deleted.
  - A release carries an unfinished marker until it is complete, and a release log
    (C(<release_root>/.appspec-releases.json)) records each release's deployment id, sha256, status and times.
  - Also takes and frees the host lock of an application's deployment group (O(state=locked), O(state=unlocked)).
  - See C(docs/install-and-releases.md).
author:
  - appspec.deploy developers (@appspec-deploy)
extends_documentation_fragment:
  - appspec.deploy.deployment_identity
  - appspec.deploy.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  idempotent:
    support: full
options:
  state:
    description:
      - V(present) creates the release O(deployment_id) from O(archive_dir) without switching to it
        (without O(archive_dir), only O(status) is recorded).
      - V(current) makes O(deployment_id) the current release, creating it first when O(archive_dir) is given.
      - V(rolled_back) switches C(current) to O(rollback_to), or else to the release before C(current)
        that is marked good (by the release log's order, not by modification time). With O(deployment_id)
        (the deployment rolled back from) and no O(rollback_to), nothing is switched when C(current) is not that
        deployment (its release was never switched to, or the rollback is done already).
      - V(pruned) removes old releases, keeping O(keep_releases).
      - V(absent) removes the release O(deployment_id); the current release cannot be removed.
      - V(locked) takes the host lock for O(deployment_id); V(unlocked) frees it (O(force) breaks another holder's lock).
    type: str
    choices: [present, current, rolled_back, pruned, absent, locked, unlocked]
    default: present
    version_added: 0.1.0
  release_root:
    description:
      - The directory holding C(releases/), C(shared/) and C(current). Required unless O(state) is V(locked) or V(unlocked).
    type: path
    version_added: 0.1.0
  archive_dir:
    description:
      - The unpacked revision to make the release from.
    type: path
    version_added: 0.1.0
  appspec:
    description:
      - The normalized AppSpec of the revision in O(archive_dir), as M(appspec.deploy.appspec_info) returns it
        (its RV(appspec.deploy.appspec_info#module:appspec) and RV(appspec.deploy.appspec_info#module:compute_platform)).
        Without it, the C(appspec.json) that the bundle step keeps beside a staged C(deployment-archive) is used;
        without either the whole revision becomes the release.
    type: dict
    version_added: 0.1.0
  sha256:
    description:
      - The revision's checksum, recorded in the release log. An existing release with another checksum is an error.
    type: str
    version_added: 0.1.0
  shared_paths:
    description:
      - Paths relative to the release that live in C(<release_root>/shared/) and are linked into every release.
      - A path missing from C(shared/) is seeded from the first release that has it, else made an empty directory.
    type: list
    elements: str
    default: []
    version_added: 0.1.0
  link_unchanged:
    description:
      - Hardlink files that are identical (size, mode, owner, content) to the previous release's instead of copying them.
      - Linked files share their inode across releases, so the application must not write in place into its
        release files; keep writable data in O(shared_paths), or set this to V(false).
    type: bool
    default: true
    version_added: 0.1.0
  keep_releases:
    description:
      - How many finished releases to keep. With V(present) and V(current), old releases are pruned after the release is made.
      - The current release, the previous good release and unfinished releases are never removed. Failures are warnings.
    type: int
    version_added: 0.1.0
  status:
    description:
      - Record O(deployment_id) in the release log as V(good) or V(bad) (with V(present) or V(current), after them).
    type: str
    choices: [good, bad]
    version_added: 0.1.0
  rollback_to:
    description:
      - With V(rolled_back), the release to switch to instead of the previous good one.
    type: str
    version_added: 0.1.0
  lock_ttl:
    description:
      - Seconds after which the host lock is stale unless renewed. A stale lock is not taken over silently; break it
        with O(force).
      - Every O(appspec.deploy.lifecycle_event#module:lock) run of the deployment holding the lock, and its running hooks,
        renew it for this many seconds again.
    type: int
    default: 600
    version_added: 0.1.0
  lock_owner:
    description:
      - Who holds the lock, shown to the next deployment that finds it. Defaults to C(user@host).
    type: str
    version_added: 0.1.0
  force:
    description:
      - With V(unlocked), remove the lock whoever holds it. With V(locked), break a stale lock first.
    type: bool
    default: false
    version_added: 0.1.0
"""

EXAMPLES = r"""
- name: Make a release from the staged revision and switch to it
  appspec.deploy.release:
    release_root: /srv/webapp
    deployment_id: "{{ deployment_id }}"
    archive_dir: "{{ bundle_result.archive_dir }}"
    sha256: "{{ bundle_result.sha256 }}"
    shared_paths: [log, tmp/sessions]
    state: current
    keep_releases: 5

- name: Mark it good once validated
  appspec.deploy.release:
    release_root: /srv/webapp
    deployment_id: "{{ deployment_id }}"
    status: good

- name: Roll back to the previous good release
  appspec.deploy.release:
    release_root: /srv/webapp
    state: rolled_back

- name: Take the host lock
  appspec.deploy.release:
    state: locked
    application_name: webapp
    deployment_group_name: production
    deployment_id: "{{ deployment_id }}"
"""

RETURN = r"""
release_dir:
  description: The release directory of O(deployment_id) (or of the rollback target).
  returned: when a release is concerned
  type: str
  sample: /srv/webapp/releases/d-ABCDEFGHI
current:
  description: The deployment id C(current) points at after the task.
  returned: when O(release_root) is set
  type: str
  sample: d-ABCDEFGHI
previous:
  description: The deployment id C(current) pointed at before the task.
  returned: when O(release_root) is set
  type: str
  sample: d-ZYXWVUTSR
previous_release_dir:
  description: The release directory C(current) pointed at before the task.
  returned: when O(release_root) is set
  type: str
  sample: /srv/webapp/releases/d-ZYXWVUTSR
linked:
  description: Files hardlinked from the previous release.
  returned: when a release was created
  type: int
  sample: 9900
copied:
  description: Files copied from the revision.
  returned: when a release was created
  type: int
  sample: 100
removed:
  description: Releases removed by pruning or by V(absent).
  returned: success
  type: list
  elements: str
  sample: [d-OLDRELEAS]
releases:
  description: The releases after the task, oldest first, each with C(id), C(status), C(sha256), C(finished) and times.
  returned: when O(release_root) is set
  type: list
  elements: dict
  sample: [{id: d-ABCDEFGHI, status: good, finished: true, sha256: null, seq: 1}]
lock:
  description: The host lock's content (holder) after V(locked), or the holder removed by V(unlocked).
  returned: with V(locked) and V(unlocked)
  type: dict
  sample: {deployment_id: d-ABCDEFGHI, owner: root@web1, pid: 4242, host: web1, acquired: 1700000000.0, expires: 1700003600.0}
files_outside_release:
  description: AppSpec C(files) destinations not under C(<release_root>/current), which a release does not hold.
  returned: when a release was created
  type: list
  elements: str
  sample: [/etc/webapp]
"""

import os
import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.appspec.deploy.plugins.module_utils._errors import DeployError
from ansible_collections.appspec.deploy.plugins.module_utils._layout import deployment_group_id, identity_argument_spec
from ansible_collections.appspec.deploy.plugins.module_utils._lock import HostLock
from ansible_collections.appspec.deploy.plugins.module_utils._releases import ReleaseRoot
from ansible_collections.appspec.deploy.plugins.module_utils._spec import ParsedAppSpec, deployment_dir_of, read_appspec_json


def _need(params: dict, *names: str) -> None:
    missing = [n for n in names if not params.get(n)]
    if missing:
        raise DeployError("state=%s needs %s" % (params["state"], ", ".join(missing)))


def _lock_state(module: AnsibleModule) -> dict:
    p = module.params
    if not (p["deployment_group_id"] or (p["application_name"] and p["deployment_group_name"])):
        raise DeployError("state=%s needs deployment_group_id or application_name and deployment_group_name" % p["state"])
    gid = p["deployment_group_id"] or deployment_group_id(p["application_name"], p["deployment_group_name"])
    lock = HostLock(p["root_dir"], gid)
    before = lock.read()
    if p["state"] == "locked":
        _need(p, "deployment_id")
        got = lock.acquire(p["deployment_id"], ttl=p["lock_ttl"], owner=p["lock_owner"], break_stale=p["force"], check_mode=module.check_mode)
        return {"changed": got["changed"], "lock": got["lock"], "lock_path": lock.path, "diff": {"before": {"lock": before}, "after": {"lock": got["lock"]}}}
    if before is None:
        return {"changed": False, "lock": None, "lock_path": lock.path}
    if p["force"]:
        lock.break_lock(check_mode=module.check_mode)
    else:
        _need(p, "deployment_id")
        lock.release(p["deployment_id"], check_mode=module.check_mode)
    return {"changed": True, "lock": before, "lock_path": lock.path, "diff": {"before": {"lock": before}, "after": {"lock": None}}}


def _appspec_of(archive_dir: str, appspec: t.Optional[t.Dict[str, t.Any]]) -> t.Optional[ParsedAppSpec]:
    if appspec is not None:
        return ParsedAppSpec.from_dict(appspec, "appspec")
    return read_appspec_json(deployment_dir_of(archive_dir))


def _release_state(module: AnsibleModule) -> dict:
    p = module.params
    state = p["state"]
    check = module.check_mode
    rr = ReleaseRoot(p["release_root"])
    before = rr.current_release()
    result = {"changed": False, "removed": [], "warnings": []}
    did = p["deployment_id"]

    if state == "present" and not p["archive_dir"] and not p["status"]:
        _need(p, "archive_dir")
    if state in ("present", "current") and p["archive_dir"]:
        _need(p, "deployment_id")
        if not os.path.isdir(p["archive_dir"]):
            raise DeployError("revision directory %s does not exist" % p["archive_dir"])
        made = rr.create_release(
            did,
            p["archive_dir"],
            _appspec_of(p["archive_dir"], p["appspec"]),
            sha256=p["sha256"],
            shared_paths=p["shared_paths"],
            link_unchanged=p["link_unchanged"],
            check_mode=check,
        )
        result["warnings"].extend(made.pop("warnings", []))
        result.update(made)
    if state == "current":
        _need(p, "deployment_id")
        if not (check and result.get("changed")):
            result["changed"] = rr.switch(did, check_mode=check)["changed"] or result["changed"]
        else:
            result["changed"] = True
        result["release_dir"] = rr.release_dir(did)
    elif state == "rolled_back":
        if not p["rollback_to"] and did and before and before != did:
            target = before  # `current` is not the deployment rolled back from: never switched, or already rolled back
        else:
            target = rr.rollback_target(p["rollback_to"])
        switched = rr.switch(target, check_mode=check)
        result.update(changed=switched["changed"], release_dir=rr.release_dir(target), target=target)
    elif state == "absent":
        _need(p, "deployment_id")
        if rr.current_release() == did:
            raise DeployError("release %s is current: switch to another release first" % did)
        path = rr.release_dir(did)
        if os.path.lexists(path):
            if not check:
                rr._discard(path)
            result.update(changed=True, removed=[did])
    if p["status"]:
        _need(p, "deployment_id")
        if not (check and result.get("changed") and state in ("present", "current")):
            result["changed"] = rr.mark(did, p["status"], check_mode=check)["changed"] or result["changed"]
    if state == "pruned" or (p["keep_releases"] is not None and state in ("present", "current")):
        if p["keep_releases"] is None:
            raise DeployError("state=pruned needs keep_releases")
        pruned = rr.prune(p["keep_releases"], protect=[did] if did else [], check_mode=check)
        result["warnings"].extend(pruned["warnings"])
        result["removed"] += pruned["removed"]
        result["changed"] = result["changed"] or pruned["changed"]

    after = rr.current_release()
    if check and state in ("current", "rolled_back") and result["changed"]:
        after = result.get("target") or did
    result.update(
        current=after,
        previous=before,
        previous_release_dir=rr.release_dir(before) if before else None,
        releases=[{k: v for k, v in r.items() if k != "archive_dir"} for r in rr.releases()],
        diff={"before": {"current": before}, "after": {"current": after, "removed": result["removed"]}},
    )
    return result


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            identity_argument_spec(),
            state=dict(type="str", choices=["present", "current", "rolled_back", "pruned", "absent", "locked", "unlocked"], default="present"),
            release_root=dict(type="path"),
            archive_dir=dict(type="path"),
            appspec=dict(type="dict"),
            sha256=dict(type="str"),
            shared_paths=dict(type="list", elements="str", default=[]),
            link_unchanged=dict(type="bool", default=True),
            keep_releases=dict(type="int"),
            status=dict(type="str", choices=["good", "bad"]),
            rollback_to=dict(type="str"),
            lock_ttl=dict(type="int", default=600),
            lock_owner=dict(type="str"),
            force=dict(type="bool", default=False),
        ),
        required_if=[
            ("state", "present", ("release_root",)),
            ("state", "current", ("release_root",)),
            ("state", "rolled_back", ("release_root",)),
            ("state", "pruned", ("release_root",)),
            ("state", "absent", ("release_root",)),
        ],
        required_together=[("application_name", "deployment_group_name")],
        supports_check_mode=True,
    )
    try:
        if module.params["state"] in ("locked", "unlocked"):
            result = _lock_state(module)
        else:
            result = _release_state(module)
    except DeployError as err:
        module.fail_json(msg=str(err), **err.details)
    for warning in result.pop("warnings", []):
        module.warn(warning)
    diff = result.pop("diff", None)
    if module._diff and diff is not None:
        result["diff"] = diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
