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
from ansible_collections.appspec.deploy.plugins.plugin_utils._plan import check_host_download, plan_deployment, settle_defaults
from ansible_collections.appspec.deploy.plugins.plugin_utils._revision import resolve_local, resolve_remote
from ansible_collections.appspec.deploy.plugins.plugin_utils._variables import VARIABLES, check_variables, typed_options

# The options playbook variables set are taken as given ("raw") and converted by typed_options, so
# that a wrong value is reported under the name of the variable the user set.
ARGUMENT_SPEC = dict(
    {variable.option: {"type": "raw"} for variable in VARIABLES.values() if variable.option},
    headers={"type": "raw", "no_log": True},  # may hold credentials (Authorization)
    max_unpacked_size={"type": "str", "default": "10G"},
    hosts={"type": "list", "elements": "str", "required": True},
    resolve={"type": "bool", "default": True},
)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False  # everything happens on the controller

    def run(self, tmp=None, task_vars=None):
        dummy, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        result = super().run(tmp, task_vars)
        warnings = []  # type: list
        try:
            options = typed_options(args)
            # Every appspec_* variable the task sees, whoever set it (-e, inventory, play vars).
            warnings = check_variables(task_vars or {}, strict=options["strict_variables"])
            options = settle_defaults(options, args["hosts"])
            resolved = self._resolve(options) if options["resolve"] else None
            deployment = plan_deployment(options, args["hosts"], resolved)
            if resolved is not None:  # what CodeDeploy accepts but is probably a mistake, with the AppSpec's line
                warnings.extend("%s: %s" % (resolved.source, warning) for warning in resolved.appspec.warnings)
        except DeployError as err:
            # Ansible shows no warnings of a failed task, and a typo is the likely cause of the failure.
            raise AnsibleActionFail("\n".join([str(err)] + warnings), result=dict(err.details))
        result.update(changed=False, deployment=deployment, warnings=warnings)
        return result

    def _resolve(self, options):
        try:
            max_size = human_to_bytes(options["max_unpacked_size"])
        except ValueError as err:
            raise AnsibleActionFail("max_unpacked_size: %s" % err)
        revision = options["revision"]
        kind = classify(revision)
        if options["revision_download"] == "host":
            check_host_download(kind, options)  # before fetching anything
        common = dict(sha256=options["sha256"] or None, appspec_filename=options["appspec_filename"] or None,
                      max_unpacked_size=max_size)
        if kind == "local":
            return resolve_local(revision, **common)
        return resolve_remote(kind, revision, headers=options["headers"], s3_version_id=options["s3_version_id"],
                              s3_endpoint_url=options["s3_endpoint_url"], s3_region=options["s3_region"],
                              git_ref=options["git_ref"], **common)
