#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: install
short_description: Install a CodeDeploy revision's files and permissions (the reserved Install event)
version_added: 0.1.0
description:
  - Applies the C(files) and C(permissions) sections of a revision's AppSpec the way the AWS CodeDeploy
    agent does in its Install step, on a host without the agent.
  - A file source lands inside its destination directory; a directory source copies its contents;
    a C(source) of C(/) is the whole revision. Missing destination directories are created, file modes are kept,
    and symlinks are installed as symlinks (directory links too, they are never followed).
  - B(Plan first, then act.) Every conflicting file, every path matched by two permission entries and every
    unknown owner or group is found before the first file is touched, and all are reported together.
    Unlike the agent, the files of the previous Install are removed only after the plan succeeded.
  - The files this Install creates are recorded in the agent's cleanup list
    C(<root_dir>/deployment-instructions/<group-id>-cleanup); files of the previous Install of the same
    deployment group that the new revision no longer provides are removed; directories that still hold
    files of other origin stay.
  - In check mode and with C(--diff), returns the plan (files to create, overwrite, update, keep, remove;
    permission changes) and the cleanup list before and after.
  - See C(docs/install-and-releases.md).
author:
  - appspec.deploy developers (@appspec-deploy)
extends_documentation_fragment:
  - appspec.deploy.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  idempotent:
    support: full
options:
  archive_dir:
    description:
      - The unpacked revision (its AppSpec at its root).
      - Defaults to the C(deployment-archive) of O(deployment_id) under O(root_dir).
    type: path
    version_added: 0.1.0
  deployment_id:
    description:
      - The deployment being installed. When set, the module also records it as the group's last
        successful install (C(<group-id>_last_successful_install)), as the agent does when Install succeeds.
    type: str
    version_added: 0.1.0
  application_name:
    description:
      - The application; with O(deployment_group_name) it gives the deployment group id.
    type: str
    version_added: 0.1.0
  deployment_group_name:
    description:
      - The deployment group; with O(application_name) it gives the deployment group id.
    type: str
    version_added: 0.1.0
  deployment_group_id:
    description:
      - The deployment group id, instead of deriving it from O(application_name) and O(deployment_group_name).
    type: str
    version_added: 0.1.0
  root_dir:
    description:
      - The agent's deployment root on the host.
    type: path
    default: /opt/codedeploy-agent/deployment-root
    version_added: 0.1.0
  file_exists_behavior:
    description:
      - What to do with a file that exists at a destination and was not installed by this deployment group.
      - C(DISALLOW) fails (listing every such file), C(OVERWRITE) replaces it, C(RETAIN) keeps it.
      - The AppSpec's own C(file_exists_behavior) wins over this value.
    type: str
    choices: [DISALLOW, OVERWRITE, RETAIN]
    default: DISALLOW
    version_added: 0.1.0
  appspec_filename:
    description:
      - The name of the AppSpec file in the revision; C(appspec.yml) and C(appspec.yaml) are tried after it.
    type: str
    version_added: 0.1.0
"""

EXAMPLES = r"""
- name: Install the files of a staged revision
  appspec.deploy.install:
    deployment_id: "{{ bundle_result.deployment_id | default(deployment_id) }}"
    application_name: webapp
    deployment_group_name: production
    file_exists_behavior: OVERWRITE

- name: Show what would change
  appspec.deploy.install:
    archive_dir: /srv/revisions/webapp-1.4
    application_name: webapp
    deployment_group_name: production
  check_mode: true
  diff: true
"""

RETURN = r"""
plan:
  description: What the Install does (or would do in check mode).
  returned: success
  type: dict
  contains:
    file_exists_behavior:
      description: The behaviour in force (the AppSpec's when set).
      type: str
    mkdir:
      description: Directories created.
      type: list
      elements: str
    create:
      description: Files and links created.
      type: list
      elements: str
    overwrite:
      description: Files of other origin replaced (C(OVERWRITE)); they are recorded in the cleanup list.
      type: list
      elements: str
    update:
      description: Files of the previous Install replaced by a different version.
      type: list
      elements: str
    keep:
      description: Files of other origin left alone (C(RETAIN)); not recorded.
      type: list
      elements: str
    conflict:
      description: Paths that stop the Install (listed with their reason in RV(errors)); empty on success.
      type: list
      elements: str
    unchanged:
      description: How many paths were already as this revision wants them.
      type: int
    remove:
      description: Paths of the previous Install removed because the revision no longer provides them.
      type: list
      elements: str
    permissions:
      description: Permission changes, each C({path, changes}).
      type: list
      elements: dict
  sample:
    file_exists_behavior: DISALLOW
    mkdir: [/var/www/app]
    create: [/var/www/app/index.html]
    overwrite: []
    update: []
    keep: []
    conflict: []
    unchanged: 0
    remove: []
    permissions: [{path: /var/www/app/index.html, changes: {mode: "0644"}}]
file_exists_behavior:
  description: The behaviour in force.
  returned: success
  type: str
  sample: DISALLOW
cleanup_file:
  description: The cleanup list of the deployment group.
  returned: success
  type: str
  sample: /opt/codedeploy-agent/deployment-root/deployment-instructions/0e1c2d4e-8a7b-5c3d-9e0f-a1b2c3d4e5f6-cleanup
archive_dir:
  description: The revision that was installed.
  returned: success
  type: str
  sample: /opt/codedeploy-agent/deployment-root/0e1c2d4e-8a7b-5c3d-9e0f-a1b2c3d4e5f6/d-ABCDEFGHI/deployment-archive
deployment_group_id:
  description: The deployment group id used.
  returned: success
  type: str
  sample: 0e1c2d4e-8a7b-5c3d-9e0f-a1b2c3d4e5f6
errors:
  description: Every problem the plan found, when it failed. Nothing was changed then.
  returned: failure
  type: list
  elements: str
  sample: ["a file already exists at /var/www/app/index.html (file_exists_behavior DISALLOW)"]
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.appspec.deploy.plugins.module_utils._appspec import load_appspec
from ansible_collections.appspec.deploy.plugins.module_utils._errors import DeployError
from ansible_collections.appspec.deploy.plugins.module_utils._installer import install_revision
from ansible_collections.appspec.deploy.plugins.module_utils._layout import DEFAULT_ROOT_DIR, DeploymentRoot, deployment_group_id


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            archive_dir=dict(type="path"),
            deployment_id=dict(type="str"),
            application_name=dict(type="str"),
            deployment_group_name=dict(type="str"),
            deployment_group_id=dict(type="str"),
            root_dir=dict(type="path", default=DEFAULT_ROOT_DIR),
            file_exists_behavior=dict(type="str", choices=["DISALLOW", "OVERWRITE", "RETAIN"], default="DISALLOW"),
            appspec_filename=dict(type="str"),
        ),
        required_one_of=[("archive_dir", "deployment_id"), ("deployment_group_id", "application_name")],
        required_together=[("application_name", "deployment_group_name")],
        supports_check_mode=True,
    )
    p = module.params
    try:
        gid = p["deployment_group_id"] or deployment_group_id(p["application_name"], p["deployment_group_name"])
        root = DeploymentRoot(p["root_dir"])
        archive_dir = p["archive_dir"] or root.archive_dir(gid, p["deployment_id"])
        if not os.path.isdir(archive_dir):
            raise DeployError("revision directory %s does not exist" % archive_dir)
        parsed = load_appspec(archive_dir, appspec_filename=p["appspec_filename"])
        for warning in parsed.warnings:
            module.warn(warning)
        result = install_revision(
            archive_dir,
            parsed,
            root=root,
            group_id=gid,
            file_exists_behavior=p["file_exists_behavior"],
            check_mode=module.check_mode,
        )
        if p["deployment_id"] and not module.check_mode:
            deployment_dir = root.deployment_dir(gid, p["deployment_id"])
            if root.read_record(gid, "last_successful_install") != deployment_dir:
                root.write_record(gid, "last_successful_install", deployment_dir)
                result["changed"] = True
    except DeployError as err:
        module.fail_json(msg=str(err), **err.details)
    for warning in result.pop("warnings"):
        module.warn(warning)
    diff = result.pop("diff")
    if module._diff:
        result["diff"] = diff
    module.exit_json(archive_dir=archive_dir, deployment_group_id=gid, **result)


if __name__ == "__main__":
    main()
