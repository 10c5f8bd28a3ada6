# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The AppSpec as hosts see it: CodeDeploy's event tables and the normalized AppSpec, as JSON.

The controller parses and validates the YAML once (``plugins/plugin_utils/_appspec.py``); a host
receives the normalized result and keeps it as ``<deployment-dir>/appspec.json``, beside the
untouched ``deployment-archive/``. Hosts therefore need no YAML parser: this file is standard
library only, like everything under ``module_utils``.
"""

from __future__ import annotations

import json
import os
import typing as t
from dataclasses import dataclass, field

from ansible_collections.appspec.deploy.plugins.module_utils._errors import DeployError
from ansible_collections.appspec.deploy.plugins.module_utils._fileutil import atomic_write_text, read_text

# The in-place order of EC2/on-premises events, reserved ones included (AWS "Run order" table).
IN_PLACE_EVENTS = (
    "BeforeBlockTraffic",
    "BlockTraffic",
    "AfterBlockTraffic",
    "ApplicationStop",
    "DownloadBundle",
    "BeforeInstall",
    "Install",
    "AfterInstall",
    "ApplicationStart",
    "ValidateService",
    "BeforeAllowTraffic",
    "AllowTraffic",
    "AfterAllowTraffic",
)
# Events run by the agent or the service itself: no script can be attached to them.
RESERVED_EVENTS = ("Start", "DownloadBundle", "Install", "BlockTraffic", "AllowTraffic", "End")
# Events whose scripts come from the last successful revision on the host, not the new one.
LAST_SUCCESSFUL_EVENTS = ("ApplicationStop", "BeforeBlockTraffic", "AfterBlockTraffic")
# Events of an EC2/on-premises AppSpec that may carry scripts, in run order.
SERVER_HOOK_EVENTS = tuple(e for e in IN_PLACE_EVENTS if e not in RESERVED_EVENTS)
ECS_EVENTS = ("BeforeInstall", "AfterInstall", "AfterAllowTestTraffic", "BeforeAllowTraffic", "AfterAllowTraffic")
LAMBDA_EVENTS = ("BeforeAllowTraffic", "AfterAllowTraffic")

FILE_EXISTS_BEHAVIORS = ("DISALLOW", "OVERWRITE", "RETAIN")
COMPUTE_PLATFORMS = ("server", "ecs", "lambda")
DEFAULT_FILENAMES = ("appspec.yml", "appspec.yaml")

# The normalized AppSpec of a deployment, written by the bundle step, read by every later step.
APPSPEC_JSON = "appspec.json"


@dataclass
class ParsedAppSpec:
    """A valid AppSpec, normalized (see docs/appspec-reference.md for the shape)."""

    appspec: t.Dict[str, t.Any]
    compute_platform: str
    warnings: t.List[str] = field(default_factory=list)
    source: str = "<content>"
    deployable: bool = True
    not_deployable_reason: t.Optional[str] = None

    def check_deployable(self, source: str, error: t.Type[DeployError] = DeployError) -> "ParsedAppSpec":
        """The one check that an AppSpec deploys to hosts (not ECS, not Lambda); raises ``error`` naming ``source``."""
        if not self.deployable:
            raise error("%s is an AppSpec for %s, not for EC2/on-premises hosts: %s"
                        % (source, self.compute_platform, self.not_deployable_reason or "not deployable"),
                        compute_platform=self.compute_platform)
        return self

    def hooks_for(self, event: str) -> t.List[t.Dict[str, t.Any]]:
        """The hooks of one event, in AppSpec order; ``[]`` when the event has none.

        Server: ``[{location, timeout, runas, sudo}]``. ECS/Lambda: ``[{function_name}]``.
        """
        hooks = self.appspec.get("hooks") or {}
        value = hooks.get(event)
        if value is None:
            return []
        if isinstance(value, str):
            return [{"function_name": value}]
        return [dict(item) for item in value]

    def as_dict(self) -> t.Dict[str, t.Any]:
        """What the controller sends to hosts and hosts keep as ``appspec.json``."""
        return {
            "appspec": self.appspec,
            "compute_platform": self.compute_platform,
            "source": self.source,
            "deployable": self.deployable,
            "not_deployable_reason": self.not_deployable_reason,
        }

    @classmethod
    def from_dict(cls, data: t.Any, what: str = "the normalized AppSpec") -> "ParsedAppSpec":
        """The inverse of :meth:`as_dict`; refuses anything that is not its shape."""
        if not isinstance(data, dict) or not isinstance(data.get("appspec"), dict) \
                or data.get("compute_platform") not in COMPUTE_PLATFORMS:
            raise DeployError("%s is not a normalized AppSpec (a dict with 'appspec' and 'compute_platform', "
                              "as appspec.deploy.appspec_info returns it)" % what)
        server = data["compute_platform"] == "server"
        if data.get("deployable", server) is not server:
            # Only a server AppSpec deploys to hosts (the parser's rule): any other claim is a forged dict.
            raise DeployError("%s says deployable=%r for a %s AppSpec: only a server AppSpec deploys to hosts"
                              % (what, data.get("deployable"), data["compute_platform"]))
        return cls(
            appspec=data["appspec"],
            compute_platform=data["compute_platform"],
            source=str(data.get("source") or "<content>"),
            deployable=server,
            not_deployable_reason=data.get("not_deployable_reason"),
        )


def appspec_json_path(deployment_dir: str) -> str:
    return os.path.join(deployment_dir, APPSPEC_JSON)


def write_appspec_json(deployment_dir: str, parsed: ParsedAppSpec) -> None:
    atomic_write_text(appspec_json_path(deployment_dir), json.dumps(parsed.as_dict(), indent=1, sort_keys=True) + "\n")


def read_appspec_json(deployment_dir: str) -> t.Optional[ParsedAppSpec]:
    """The normalized AppSpec kept with a deployment, or None when it has none (e.g. the agent's)."""
    path = appspec_json_path(deployment_dir)
    text = read_text(path)
    if text is None:
        return None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise DeployError("%s is not valid JSON: %s" % (path, exc))
    return ParsedAppSpec.from_dict(data, path)


def require_appspec_json(deployment_dir: str) -> ParsedAppSpec:
    """The normalized AppSpec of a deployment staged by this collection; a clear error otherwise."""
    parsed = read_appspec_json(deployment_dir)
    if parsed is None:
        raise DeployError("%s has no normalized AppSpec (%s): the revision was not staged by the bundle step, "
                          "which receives it from the controller" % (deployment_dir, appspec_json_path(deployment_dir)))
    return parsed


def deployment_dir_of(archive_dir: str) -> str:
    """The deployment dir holding ``archive_dir`` (its ``deployment-archive``)."""
    return os.path.dirname(os.path.normpath(archive_dir))
