#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: preflight
short_description: Check a host before a deployment touches it, changing nothing
version_added: 0.1.0
description:
  - Runs every check and reports every problem of the host together, so that one run lists all of them
    (C(docs/pipeline.md), "Preflight"). It never changes anything, in check mode or not.
  - Free disk - the bundle and its unpacked revision under O(root_dir); the unpacked revision again under O(release_root)
    (release mode) or under each C(files) destination of the AppSpec (in place). What lands on one file system adds up.
  - The users and groups the AppSpec names - the C(runas) of its hooks, the C(owner), C(group) and C(acls) of its
    C(permissions).
  - The host's Python (3.8 or later), the commands the deployment needs there (C(setfacl) only where C(acls) are used,
    C(sudo) only where a hook has C(sudo=true) and the module does not run as root), O(root_dir) writable, and the
    deployment lock of the group (C(<root_dir>/locks/<deployment group id>.lock)) free or stale.
  - The action plugin of the same name fills the options from O(deployment) (the plan of
    M(appspec.deploy.deployment_plan)), with the sizes of the revision archive read on the controller.
author:
  - appspec.deploy developers (@appspec-deploy)
extends_documentation_fragment:
  - appspec.deploy.attributes
attributes:
  check_mode:
    support: full
    details:
      - The same checks in check mode; the module changes nothing in either mode.
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  deployment:
    description:
      - The deployment plan (C(appspec_deployment)). Its C(root_dir), C(deployment_group_id), C(release_root) and C(appspec)
        are the defaults of the options below; the action plugin reads its C(archive) on the controller for the sizes.
    type: dict
    version_added: 0.1.0
  root_dir:
    description: The deployment root on the host. Required without O(deployment).
    type: path
    version_added: 0.1.0
  deployment_group_id:
    description: The deployment group id (the name of the lock). Required without O(deployment).
    type: str
    version_added: 0.1.0
  release_root:
    description: The release root, in release mode.
    type: str
    default: ""
    version_added: 0.1.0
  appspec:
    description: The normalized AppSpec (as M(appspec.deploy.appspec_info) returns it, or its C(appspec) alone).
    type: dict
    version_added: 0.1.0
  bundle_size:
    description: The size of the revision archive, in bytes.
    type: int
    default: 0
    version_added: 0.1.0
  unpacked_size:
    description: What the unpacked revision takes on disk, in bytes.
    type: int
    default: 0
    version_added: 0.1.0
seealso:
  - module: appspec.deploy.deployment_plan
"""

EXAMPLES = r"""
- name: Check every host before any is touched
  appspec.deploy.preflight:
    deployment: "{{ hostvars['localhost'].revision_deployment }}"
"""

RETURN = r"""
problems:
  description: Every problem found on the host; the task fails when there is one.
  returned: always
  type: list
  elements: str
  sample: ["user app does not exist (named by hooks.ApplicationStart[0].runas)"]
disk:
  description: Each file system the deployment writes to - C(path), C(free) and C(needed) bytes, and what for.
  returned: always
  type: list
  elements: dict
  sample: [{path: /opt/codedeploy-agent, free: 1048576, needed: 4096, for: ["/opt/codedeploy-agent/deployment-root (...)"]}]
python:
  description: The host's Python version.
  returned: always
  type: str
  sample: 3.11.2
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.appspec.deploy.plugins.module_utils._preflight import preflight


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            deployment=dict(type="dict"),
            root_dir=dict(type="path"),
            deployment_group_id=dict(type="str"),
            release_root=dict(type="str", default=""),
            appspec=dict(type="dict"),
            bundle_size=dict(type="int", default=0),
            unpacked_size=dict(type="int", default=0),
        ),
        required_one_of=[("deployment", "root_dir"), ("deployment", "deployment_group_id")],
        supports_check_mode=True,
    )
    params = module.params
    plan = params["deployment"] or {}
    root_dir = params["root_dir"] or plan.get("root_dir")
    group_id = params["deployment_group_id"] or plan.get("deployment_group_id")
    if not root_dir or not group_id:
        module.fail_json(msg="preflight needs root_dir and deployment_group_id (or a deployment plan with them)")
    result = preflight(root_dir, group_id, params["appspec"] or plan.get("appspec"), params["bundle_size"],
                       params["unpacked_size"], params["release_root"] or plan.get("release_root") or "")
    if result["problems"]:
        module.fail_json(msg="preflight found %d problem%s on this host: %s" % (
            len(result["problems"]), "" if len(result["problems"]) == 1 else "s",
            "; ".join("(%d) %s" % (index, problem) for index, problem in enumerate(result["problems"], 1))),
            changed=False, **result)
    module.exit_json(changed=False, msg="preflight passed", **result)


if __name__ == "__main__":
    main()
