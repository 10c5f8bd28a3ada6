# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of appspec.deploy.lifecycle_event: the hosts' AppSpecs are parsed on the controller.

The module runs the events with the normalized AppSpec each deployment keeps as ``appspec.json``.
A host last deployed by the CodeDeploy agent has no such file for its last successful revision,
only that revision's YAML AppSpec. The module then answers ``appspec_needed`` before running
anything; this plugin reads that YAML through the connection, parses it here and runs the module
again with ``previous_appspec`` (or with ``previous_appspec_error`` when it is invalid, so that the
events of that revision fail as the agent's would and ``ignore_application_stop_failures`` applies).

With ``DownloadBundle`` among the events, ``revision`` is resolved on the controller and transferred
only when the host lacks it (``plugin_utils._transfer``): a host's whole lifecycle is one module run,
two on a controller that does not know the host yet. With ``revision_url`` the host downloads the
revision itself and nothing is transferred.
"""

from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.appspec.deploy.plugins.module_utils._errors import DeployError
from ansible_collections.appspec.deploy.plugins.plugin_utils._appspec import parse_appspec_bytes
from ansible_collections.appspec.deploy.plugins.plugin_utils._remote_files import read_remote_appspec
from ansible_collections.appspec.deploy.plugins.plugin_utils._transfer import (
    host_download_url,
    resolve_task_revision,
    run_with_archive,
)

MODULE = "appspec.deploy.lifecycle_event"


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = True

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp
        args = dict(self._task.args)
        run = self._runner(args, task_vars)
        try:
            answer = run(args)
            # A rollback to a revision the agent deployed may need two AppSpecs: the one it leaves, the one it goes to.
            for _attempt in range(2):
                needed = answer.get("appspec_needed") if answer.get("failed") else None
                if not needed or needed.get("option") in args:
                    break
                error = self._add_appspec(args, needed, task_vars)
                answer = {"failed": True, "msg": error} if error else run(args)
        finally:
            if self._connection._shell.tmpdir and self._cleanup_remote_tmp:
                self._remove_tmp_path(self._connection._shell.tmpdir)
        result.update(answer)
        return result

    def _add_appspec(self, args, needed, task_vars):
        """Parse the host's YAML AppSpec of ``needed["archive_dir"]`` here, for the option the module named.

        Returns why the revision to run cannot be run (None when it can). An invalid AppSpec of the last
        successful revision fails only the events that run it, as the agent's would.
        """
        option = needed.get("option", "previous_appspec")
        try:
            data, source = read_remote_appspec(self, task_vars, needed["archive_dir"])
            args[option] = parse_appspec_bytes(data, source).as_dict()
        except DeployError as err:
            if option != "previous_appspec":
                return "nothing was run: the AppSpec of the revision in %s cannot be used: %s" % (needed["archive_dir"], err)
            args["previous_appspec_error"] = "the last successful revision's AppSpec cannot be used: %s" % err
        return None

    def _runner(self, args, task_vars):
        """How to run the module: plainly, with the host downloading revision_url, or with the revision brought over."""
        def plain(module_args):
            return self._execute_module(module_name=MODULE, module_args=module_args, task_vars=task_vars)

        downloads = "DownloadBundle" in (args.get("events") or [])
        if downloads and args.get("revision_url"):
            args["revision"] = host_download_url(args)
            return lambda module_args: dict(plain(module_args), bytes_transferred=0)  # nothing went through here
        if not downloads or not args.get("revision"):
            return plain
        resolved = resolve_task_revision(self, args)
        args.update(sha256=resolved.sha256, appspec=resolved.appspec.as_dict(),
                    bundle_env=dict(resolved.bundle_env, **(args.get("bundle_env") or {})))
        return lambda module_args: run_with_archive(self, task_vars, MODULE, module_args, resolved,
                                                    transfer_in_check_mode=True)
