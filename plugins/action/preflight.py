# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of appspec.deploy.preflight: the sizes of the revision archive, read on the controller, then the
module on the host (``module_utils._preflight``)."""

from __future__ import annotations

import os

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.appspec.deploy.plugins.module_utils._errors import DeployError
from ansible_collections.appspec.deploy.plugins.plugin_utils._revision import check_archive


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        plan = args.get("deployment") or {}
        archive = plan.get("archive")
        if archive and os.path.isfile(archive) and not args.get("bundle_size") and not args.get("unpacked_size"):
            try:
                args["bundle_size"] = os.path.getsize(archive)
                args["unpacked_size"] = check_archive(archive).disk_size
            except (OSError, DeployError) as err:
                raise AnsibleActionFail("preflight cannot read the revision archive %s: %s" % (archive, err))
        if plan:
            # The host needs only what it checks, not the whole plan.
            args["deployment"] = {key: plan.get(key) for key in ("root_dir", "deployment_group_id", "release_root", "appspec")}
        result.update(self._execute_module(module_name="appspec.deploy.preflight", module_args=args, task_vars=task_vars))
        return result
