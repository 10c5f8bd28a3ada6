# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of appspec.deploy.appspec_info: the AppSpec is parsed here, on the controller.

A file on the managed host is read through the connection; hosts never need a YAML parser.
"""

from __future__ import annotations

import typing as t

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.validation import check_type_bool, check_type_int
from ansible.plugins.action import ActionBase

from ansible_collections.appspec.deploy.plugins.module_utils._errors import DeployError
from ansible_collections.appspec.deploy.plugins.plugin_utils._appspec import DEFAULT_MAX_EVENT_TIMEOUT, parse_appspec, parse_appspec_bytes
from ansible_collections.appspec.deploy.plugins.plugin_utils._remote_files import read_remote_appspec

_ARGS = ("path", "content", "appspec_filename", "strict", "max_event_timeout")


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = True

    def run(self, tmp: t.Any = None, task_vars: t.Optional[t.Dict[str, t.Any]] = None) -> t.Dict[str, t.Any]:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        unknown = sorted(set(args) - set(_ARGS))
        if unknown:
            raise AnsibleActionFail("Unsupported parameters for appspec_info: %s. Supported: %s"
                                    % (", ".join(unknown), ", ".join(_ARGS)))
        if (args.get("path") is None) == (args.get("content") is None):
            raise AnsibleActionFail("give exactly one of path and content")
        try:
            strict = check_type_bool(args.get("strict", False))
            max_event_timeout = check_type_int(args.get("max_event_timeout", DEFAULT_MAX_EVENT_TIMEOUT))
        except TypeError as err:
            raise AnsibleActionFail(str(err))
        try:
            if args.get("content") is not None:
                parsed = parse_appspec(str(args["content"]), strict=strict, max_event_timeout=max_event_timeout)
            else:
                data, source = read_remote_appspec(self, task_vars, str(args["path"]), args.get("appspec_filename"))
                parsed = parse_appspec_bytes(data, source, strict=strict, max_event_timeout=max_event_timeout)
        except DeployError as err:
            result.update(failed=True, msg=str(err), **err.details)
            return result
        result.update(
            changed=False,
            appspec=parsed.appspec,
            compute_platform=parsed.compute_platform,
            deployable=parsed.deployable,
            not_deployable_reason=parsed.not_deployable_reason,
            source=parsed.source,
            warnings=list(parsed.warnings),
        )
        return result
