# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The CodeDeploy agent's deployment-root layout on a host, and deployment identities.

::

    <root_dir>/
      deployment-instructions/
        <group-id>_last_successful_install   path of the deployment dir last installed (agent)
        <group-id>_most_recent_install       path of the deployment dir last staged (agent)
        <group-id>_last_good_deployment      path of the deployment dir whose whole lifecycle
                                             succeeded (ours: the automatic rollback target)
        <group-id>-cleanup                   files the last Install created, one per line
      deployment-logs/codedeploy-agent-deployments.log
      <group-id>/<deployment-id>/
        bundle.tar | bundle.zip | bundle.tgz
        deployment-archive/                  the unpacked revision
        logs/scripts.log

The record files hold a path with no trailing newline, as the agent writes them.
"""

from __future__ import annotations

import os
import re
import secrets
import typing as t
import uuid

from ansible_collections.appspec.deploy.plugins.module_utils._errors import DeployError
from ansible_collections.appspec.deploy.plugins.module_utils._fileutil import atomic_write_text, read_text

DEFAULT_ROOT_DIR = "/opt/codedeploy-agent/deployment-root"

# Fixed namespace so that the same application and group always give the same group id.
_GROUP_NAMESPACE = uuid.UUID("6f1c2d4e-8a7b-4c3d-9e0f-a1b2c3d4e5f6")
_DEPLOYMENT_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def deployment_group_id(application_name: str, deployment_group_name: str) -> str:
    """A stable UUID for an application's deployment group, like CodeDeploy's DEPLOYMENT_GROUP_ID."""
    return str(uuid.uuid5(_GROUP_NAMESPACE, "%s\0%s" % (application_name, deployment_group_name)))


def new_deployment_id() -> str:
    """A new id in CodeDeploy's form: ``d-`` and nine upper-case letters or digits."""
    return "d-" + "".join(secrets.choice(_DEPLOYMENT_ID_ALPHABET) for dummy in range(9))


def identity_argument_spec(*required: str) -> t.Dict[str, t.Dict[str, t.Any]]:
    """The argument spec of the deployment identity options (doc fragment ``appspec.deploy.deployment_identity``).

    ``required`` names the options a module cannot do without.
    """
    spec = {
        "deployment_id": {"type": "str"},
        "application_name": {"type": "str"},
        "deployment_group_name": {"type": "str"},
        "deployment_group_id": {"type": "str"},
        "root_dir": {"type": "path", "default": DEFAULT_ROOT_DIR},
    }  # type: t.Dict[str, t.Dict[str, t.Any]]
    for name in required:
        spec[name]["required"] = True
    return spec


def check_id(value: str, what: str) -> str:
    """Refuse ids that could escape the layout (``..``, ``/``) before they become paths."""
    # fullmatch: '$' would also match before a trailing newline ("d-1\n").
    if not _SAFE_ID.fullmatch(value or "") or value in (".", ".."):
        raise DeployError("%s %r may only hold letters, digits, '.', '_' and '-'" % (what, value))
    return value


class DeploymentRoot:
    """Paths and records under one ``root_dir``."""

    def __init__(self, root_dir: str = DEFAULT_ROOT_DIR) -> None:
        # A relative root would land wherever the module happens to run (a checkout's playbooks/).
        if not os.path.isabs(root_dir or ""):
            raise DeployError("root_dir must be an absolute path, not %r" % root_dir)
        self.root_dir = root_dir

    @property
    def instructions_dir(self) -> str:
        return os.path.join(self.root_dir, "deployment-instructions")

    @property
    def deployment_logs_dir(self) -> str:
        return os.path.join(self.root_dir, "deployment-logs")

    def group_dir(self, group_id: str) -> str:
        return os.path.join(self.root_dir, check_id(group_id, "deployment group id"))

    def deployment_dir(self, group_id: str, deployment_id: str) -> str:
        return os.path.join(self.group_dir(group_id), check_id(deployment_id, "deployment id"))

    def archive_dir(self, group_id: str, deployment_id: str) -> str:
        return os.path.join(self.deployment_dir(group_id, deployment_id), "deployment-archive")

    def scripts_log(self, group_id: str, deployment_id: str) -> str:
        return os.path.join(self.deployment_dir(group_id, deployment_id), "logs", "scripts.log")

    def cleanup_file(self, group_id: str) -> str:
        return os.path.join(self.instructions_dir, "%s-cleanup" % check_id(group_id, "deployment group id"))

    def record_path(self, group_id: str, name: str) -> str:
        return os.path.join(self.instructions_dir, "%s_%s" % (check_id(group_id, "deployment group id"), name))

    def read_record(self, group_id: str, name: str) -> t.Optional[str]:
        """``name`` is ``last_successful_install``, ``most_recent_install`` or ``last_good_deployment``."""
        text = read_text(self.record_path(group_id, name))
        return text.strip() or None if text is not None else None

    def write_record(self, group_id: str, name: str, deployment_dir: str) -> None:
        atomic_write_text(self.record_path(group_id, name), deployment_dir)
