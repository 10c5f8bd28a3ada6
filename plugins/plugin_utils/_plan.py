# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The deployment record: everything the hosts of one run share, computed once on the controller.

``roles/revision`` calls this through the ``deployment_plan`` action plugin and hands the record to
every host as ``appspec_deployment`` (see docs/variables.md for its fields).

Who moves the revision to the hosts (``revision_download``): ``controller`` uploads the archive it
resolved; ``host`` gives the hosts a URL to download it from themselves (``download_url``), an
``http(s)://`` revision as given or a presigned S3 URL, verified on each host against the pinned sha256.
"""

from __future__ import annotations

import os
import re
import typing as t

from ansible_collections.appspec.deploy.plugins.module_utils._layout import check_id, deployment_group_id
from ansible_collections.appspec.deploy.plugins.module_utils._spec import FILE_EXISTS_BEHAVIORS
from ansible_collections.appspec.deploy.plugins.plugin_utils._deployment import (
    DeploymentConfigError,
    new_deployment_id,
    plan_health,
)
from ansible_collections.appspec.deploy.plugins.plugin_utils._fetch import parse_s3_url, presign_s3
from ansible_collections.appspec.deploy.plugins.plugin_utils._revision import Resolved

_ARCHIVE_SUFFIX = re.compile(r"(\.tar\.gz|\.tgz|\.tar|\.zip|\.git)$", re.I)
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")
REVISION_DOWNLOADS = ("controller", "host")
# Why hosts cannot download the other kinds of revision themselves.
_HOST_CANNOT = {
    "local": "it is a path on the controller",
    "git": "hosts have no git: the controller makes the archive with git archive",
}


def default_application_name(revision: str) -> str:
    """The revision's base name without archive suffix (``/srv/myapp.zip`` -> ``myapp``)."""
    base = os.path.basename(revision.rstrip("/")) or "application"
    return _UNSAFE_NAME.sub("-", _ARCHIVE_SUFFIX.sub("", base))


def check_host_download(kind: str, options: t.Mapping[str, t.Any]) -> None:
    """Refuse ``revision_download=host`` for a revision hosts cannot download themselves (before fetching it)."""
    if kind in _HOST_CANNOT:
        raise DeploymentConfigError(
            "appspec_revision_download=host (revision_download) needs an http(s):// or s3:// revision, not a %s revision "
            "(%s). Use appspec_revision_download=controller." % (kind, _HOST_CANNOT[kind]))
    if kind == "url" and options.get("headers"):
        raise DeploymentConfigError("appspec_revision_download=host (revision_download) cannot send the HTTP headers of "
                                    "the revision to every host: use appspec_revision_download=controller.")


def download_url(options: t.Mapping[str, t.Any], resolved: t.Optional[Resolved]) -> t.Optional[str]:
    """The URL hosts download the revision from themselves, or None when the controller uploads it."""
    mode = str(options.get("revision_download") or "controller")
    if mode not in REVISION_DOWNLOADS:
        raise DeploymentConfigError("revision_download (appspec_revision_download) must be controller or host, not %r"
                                    % mode)
    if mode == "controller" or resolved is None:  # no revision looked at (rollback): hosts reuse what they staged
        return None
    check_host_download(resolved.kind, options)
    revision = str(options["revision"])
    if resolved.kind == "url":
        return revision  # as given: Resolved.source has any password masked
    bucket, key = parse_s3_url(revision)
    fetched = resolved.identity
    # Pin the version the controller validated, so that an object overwritten since cannot fail the hosts.
    same_object = (fetched.get("bucket"), fetched.get("key"), fetched.get("endpoint")) == (
        bucket, key, options.get("s3_endpoint_url"))
    version = options.get("s3_version_id") or (fetched.get("version") if same_object else None)
    return presign_s3(revision, version_id=version, endpoint_url=options.get("s3_endpoint_url"),
                      region=options.get("s3_region"))


def plan_deployment(options: t.Mapping[str, t.Any], hosts: t.Sequence[str],
                    resolved: t.Optional[Resolved]) -> t.Dict[str, t.Any]:
    """The record for ``hosts``; ``resolved`` is the revision resolved on the controller (None: not looked at)."""
    if not hosts:
        raise DeploymentConfigError("No host matches the target pattern %r (appspec_hosts) in the inventory."
                                    % options.get("hosts_pattern", "all"))
    health = plan_health(options["deployment_config"], len(hosts))
    behavior = str(options.get("file_exists_behavior") or "DISALLOW").upper()
    if behavior not in FILE_EXISTS_BEHAVIORS:
        raise DeploymentConfigError("file_exists_behavior %r is not one of %s"
                                    % (options.get("file_exists_behavior"), ", ".join(FILE_EXISTS_BEHAVIORS)))
    revision = str(options["revision"])
    application = str(options.get("application_name") or "").strip() or default_application_name(revision)
    group = str(options.get("deployment_group_name") or "default")
    deployment_id = str(options.get("deployment_id") or "") or new_deployment_id()
    check_id(deployment_id, "deployment_id")
    return {
        "deployment_id": deployment_id,
        "rollback_deployment_id": new_deployment_id(),
        "application_name": application,
        "deployment_group_name": group,
        "deployment_group_id": str(options.get("deployment_group_id") or "") or deployment_group_id(application, group),
        "revision": resolved.source if resolved else revision,
        "revision_kind": resolved.kind if resolved else None,
        # The archive on the controller that hosts receive, and what they need to stage it without YAML.
        "archive": resolved.path if resolved else None,
        "download_url": download_url(options, resolved),
        "sha256": resolved.sha256 if resolved else (str(options.get("sha256") or "").lower() or None),
        "appspec": resolved.appspec.as_dict() if resolved else None,
        "bundle_env": dict(resolved.bundle_env) if resolved else {},
        "appspec_filename": str(options.get("appspec_filename") or ""),
        "deployment_config": options["deployment_config"],
        "minimum_healthy_hosts": {"type": health.type, "value": health.value},
        "hosts": list(hosts),
        "min_healthy": health.min_healthy,
        "max_unhealthy": health.max_unhealthy,
        "required_successes": health.required_successes,
        "batches": [health.max_unhealthy],
        "file_exists_behavior": behavior,
        "ignore_application_stop_failures": bool(options.get("ignore_application_stop_failures")),
        "auto_rollback": bool(options.get("auto_rollback", True)),
        "root_dir": str(options.get("root_dir") or "/opt/codedeploy-agent/deployment-root"),
        "release_root": str(options.get("release_root") or ""),
        "keep_releases": int(options.get("keep_releases", 5)),
        "shared_paths": list(options.get("shared_paths") or []),
        "load_balancer": dict(options.get("load_balancer") or {}),
    }
