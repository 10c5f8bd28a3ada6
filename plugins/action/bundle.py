# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of appspec.deploy.bundle: resolves the revision on the controller, then brings it to the host.

Every revision is resolved and validated here, before the host is touched (``plugin_utils._revision``):
a controller directory is packed, an archive is checked and its AppSpec read without unpacking it,
and ``http(s)://``, ``s3://`` and git revisions are fetched once into the controller's cache. The
module then receives the archive, its sha256 and the normalized AppSpec: the host parses no YAML
and needs no boto3 or git. Only O(remote_src) revisions (a file already on the host) go straight
to the module, with the AppSpec the user passes.

The transfer itself (only when the host lacks the revision) is ``plugin_utils._transfer``.
"""

from __future__ import annotations

import typing as t

from ansible.errors import AnsibleActionFail
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase

from ansible_collections.appspec.deploy.plugins.plugin_utils._revision import Resolved
from ansible_collections.appspec.deploy.plugins.plugin_utils._transfer import resolve_task_revision, run_with_archive

MODULE = "appspec.deploy.bundle"


class ActionModule(ActionBase):
    TRANSFERS_FILES = False  # a remote temp dir is made only when a file has to go over
    _requires_connection = True

    def run(self, tmp: t.Any = None, task_vars: t.Optional[t.Dict[str, t.Any]] = None) -> t.Dict[str, t.Any]:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp
        args = dict(self._task.args)
        if args.get("revision") is None:
            raise AnsibleActionFail("missing required arguments: revision")
        if boolean(args.get("remote_src", False), strict=False):
            result.update(self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars))
            return result
        resolved = resolve_task_revision(self, args)
        try:
            result.update(self._stage_from_controller(args, resolved, task_vars))
        finally:
            if self._connection._shell.tmpdir and self._cleanup_remote_tmp:
                self._remove_tmp_path(self._connection._shell.tmpdir)
        return result

    def _stage_from_controller(self, args: t.Dict[str, t.Any], resolved: Resolved,
                               task_vars: t.Dict[str, t.Any]) -> t.Dict[str, t.Any]:
        module_args = dict(args, revision_type="local", remote_src=True, sha256=resolved.sha256,
                           appspec=resolved.appspec.as_dict(), bundle_env=resolved.bundle_env)
        source_info = {"type": resolved.kind, "revision": resolved.source, "identity": resolved.identity,
                       "packed": resolved.path if resolved.packed else None}
        staged = run_with_archive(self, task_vars, MODULE, module_args, resolved, transfer_in_check_mode=False)
        if staged.get("revision_missing") and self._task.check_mode:
            return {
                "changed": True, "reused": False, "sha256": resolved.sha256, "size": resolved.size,
                "bytes_transferred": 0, "deployment_dir": staged.get("deployment_dir"),
                "archive_dir": staged.get("archive_dir"), "deployment_group_id": staged.get("deployment_group_id"),
                "source": source_info, "msg": "would transfer %s (%d bytes) and stage it in %s"
                % (resolved.source, resolved.size, staged.get("deployment_dir")),
            }
        if not staged.get("failed"):
            staged["source"] = dict(staged.get("source") or {}, **source_info)
        return staged
