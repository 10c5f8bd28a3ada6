# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of appspec.deploy.deployment_plan: resolve and validate the revision, plan the deployment.

Runs on the controller before any host is touched; the logic is ``plugin_utils._revision`` and
``plugin_utils._plan``.
"""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.formatters import human_to_bytes
from ansible.plugins.action import ActionBase

from ansible_collections.appspec.deploy.plugins.module_utils._errors import DeployError
from ansible_collections.appspec.deploy.plugins.module_utils._sources import classify
from ansible_collections.appspec.deploy.plugins.plugin_utils._plan import REVISION_DOWNLOADS, check_host_download, plan_deployment
from ansible_collections.appspec.deploy.plugins.plugin_utils._revision import resolve_local, resolve_remote

ARGUMENT_SPEC = {
    "revision": {"type": "str", "required": True},
    "sha256": {"type": "str", "default": ""},
    "headers": {"type": "dict", "no_log": True},
    "s3_version_id": {"type": "str"},
    "s3_endpoint_url": {"type": "str"},
    "s3_region": {"type": "str"},
    "git_ref": {"type": "str"},
    "revision_download": {"type": "str", "default": "controller", "choices": list(REVISION_DOWNLOADS)},
    "max_unpacked_size": {"type": "str", "default": "10G"},
    "application_name": {"type": "str", "default": ""},
    "deployment_group_name": {"type": "str", "default": "default"},
    "deployment_group_id": {"type": "str", "default": ""},
    "deployment_config": {"type": "raw", "default": "CodeDeployDefault.OneAtATime"},
    "file_exists_behavior": {"type": "str", "default": "DISALLOW"},
    "ignore_application_stop_failures": {"type": "bool", "default": False},
    "auto_rollback": {"type": "bool", "default": True},
    "root_dir": {"type": "str", "default": "/opt/codedeploy-agent/deployment-root"},
    "release_root": {"type": "str", "default": ""},
    "keep_releases": {"type": "int", "default": 5},
    "shared_paths": {"type": "list", "elements": "str", "default": []},
    "load_balancer": {"type": "dict", "default": {}},
    "hosts": {"type": "list", "elements": "str", "required": True},
    "hosts_pattern": {"type": "str", "default": "all"},
    "deployment_id": {"type": "str", "default": ""},
    "appspec_filename": {"type": "str", "default": ""},
    "resolve": {"type": "bool", "default": True},
}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False  # everything happens on the controller

    def run(self, tmp=None, task_vars=None):
        dummy, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        result = super().run(tmp, task_vars)
        try:
            resolved = self._resolve(args) if args["resolve"] else None
            deployment = plan_deployment(args, args["hosts"], resolved)
        except DeployError as err:
            raise AnsibleActionFail(str(err), result=dict(err.details))
        result.update(changed=False, deployment=deployment)
        return result

    def _resolve(self, args):
        try:
            max_size = human_to_bytes(args["max_unpacked_size"])
        except ValueError as err:
            raise AnsibleActionFail("max_unpacked_size: %s" % err)
        revision = args["revision"]
        kind = classify(revision)
        if args["revision_download"] == "host":
            check_host_download(kind, args)  # before fetching anything
        common = dict(sha256=args["sha256"] or None, appspec_filename=args["appspec_filename"] or None,
                      max_unpacked_size=max_size)
        if kind == "local":
            return resolve_local(revision, **common)
        return resolve_remote(kind, revision, headers=args["headers"], s3_version_id=args["s3_version_id"],
                              s3_endpoint_url=args["s3_endpoint_url"], s3_region=args["s3_region"],
                              git_ref=args["git_ref"], **common)
