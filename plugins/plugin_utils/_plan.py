# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The deployment record: everything the hosts of one run share, computed once on the controller.

``roles/revision`` calls this through the ``deployment_plan`` action plugin and hands the record to
every host as ``appspec_deployment`` (see docs/variables.md for its fields), after
``_variables.typed_options`` and :func:`settle_defaults` (the bundled example's defaults) shaped its options.

Who moves the revision to the hosts (``revision_download``): ``controller`` uploads the archive it
resolved; ``host`` gives the hosts a URL to download it from themselves (``download_url``), an
``http(s)://`` revision as given or a presigned S3 URL, verified on each host against the pinned sha256.

One deployment id per deployment, even when AWX slices the job: each slice is a run of its own that
plans for its own hosts, so the slices derive the id from what they share (:func:`deployment_ids`).
"""

from __future__ import annotations

import hashlib
import os
import typing as t

from ansible_collections.appspec.deploy.plugins.module_utils._layout import _DEPLOYMENT_ID_ALPHABET, check_id, deployment_group_id
from ansible_collections.appspec.deploy.plugins.plugin_utils._deployment import (
    DeploymentConfigError,
    new_deployment_id,
    plan_health,
)
from ansible_collections.appspec.deploy.plugins.plugin_utils._fetch import parse_s3_url, presign_s3
from ansible_collections.appspec.deploy.plugins.plugin_utils._revision import Resolved

# The bundled example, in the collection's own examples/ (plugins/plugin_utils/ is two levels below).
EXAMPLE_REVISION = os.path.realpath(os.path.join(os.path.dirname(__file__), "..", "..", "examples", "webapp"))
EXAMPLE_APPLICATION_NAME = "webapp"
EXAMPLE_RELEASE_ROOT = "/opt/appspec-example"
# Why hosts cannot download the other kinds of revision themselves.
_HOST_CANNOT = {
    "local": "it is a path on the controller",
    "git": "hosts have no git: the controller makes the archive with git archive",
}


def settle_defaults(options: t.Mapping[str, t.Any], hosts: t.Sequence[str]) -> t.Dict[str, t.Any]:
    """Typed options (``_variables.typed_options``) with the defaults of the bundled example where they apply.

    The example (examples/webapp) is the revision only when none is given and the deployment targets
    localhost alone (no inventory given: ansible.cfg's is this machine), so that a mistyped
    appspec_revision cannot deploy it to a fleet. It alone has a default application name and deploys
    in release mode by default. Any other revision needs an application name: guessed from a file name,
    app-1.1.0.zip and app-1.2.0.zip would be two applications with two deployment group ids.
    A plan that does not look at the revision (``resolve`` false, rollback) needs none, only the name.
    """
    if not hosts:
        raise DeploymentConfigError("No host matches the target pattern %r (appspec_hosts) in the inventory."
                                    % options.get("hosts_pattern", "all"))
    revision = options["revision"]
    if not revision and list(hosts) == ["localhost"]:
        revision = EXAMPLE_REVISION
    if not revision and options.get("resolve", True):
        raise DeploymentConfigError(
            "No revision to deploy to %d hosts: set appspec_revision (a directory or archive on the controller, "
            "an http(s):// URL, s3://bucket/key or a git URL). The bundled example is the default only when the "
            "deployment targets localhost alone." % len(hosts))
    example = bool(revision) and os.path.realpath(revision) == EXAMPLE_REVISION
    application = options["application_name"] or (EXAMPLE_APPLICATION_NAME if example else "")
    if not application:
        raise DeploymentConfigError(
            "No application name: set appspec_application_name. With the deployment group name it makes the "
            "deployment group id, so it stays the same for every revision of one application; only the bundled "
            "example has a default (%s)." % EXAMPLE_APPLICATION_NAME)
    return dict(options, revision=revision, application_name=application,
                release_root=options["release_root"] or (EXAMPLE_RELEASE_ROOT if example else ""))


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
    if options["revision_download"] == "controller" or resolved is None:  # no revision looked at (rollback): hosts reuse what they staged
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


def _derived_id(*parts: str) -> str:
    """An id in CodeDeploy's form (``d-`` and nine of A-Z0-9) that is the same wherever ``parts`` are."""
    number = int.from_bytes(hashlib.sha256("\0".join(parts).encode("utf-8")).digest(), "big")
    characters = []
    for dummy in range(9):
        number, index = divmod(number, len(_DEPLOYMENT_ID_ALPHABET))
        characters.append(_DEPLOYMENT_ID_ALPHABET[index])
    return "d-" + "".join(characters)


def deployment_ids(options: t.Mapping[str, t.Any]) -> t.Tuple[str, str]:
    """The deployment id and the id of its automatic rollback.

    ``appspec_deployment_id`` wins (the rollback id is then new). Else, in an AWX workflow job (a sliced
    job is one, its slices the workflow's jobs), both are derived from what every slice of one job shares
    and other jobs of the workflow do not: the workflow job, the job template, the application, the
    deployment group and the revision as given. The slices, each planning on its own, so make ONE
    deployment; a deploy and a rollback job template in one workflow still make two. Else both are new.
    """
    if options["deployment_id"]:
        return options["deployment_id"], new_deployment_id()
    if options.get("workflow_job_id"):
        shared = ("awx", options["workflow_job_id"], options.get("job_template_id") or "",
                  options["application_name"], options["deployment_group_name"], options["revision"] or "")
        return _derived_id(*shared), _derived_id("rollback", *shared)
    return new_deployment_id(), new_deployment_id()


def check_roots(options: t.Mapping[str, t.Any]) -> None:
    """Refuse a relative ``root_dir`` or ``release_root``: on a host it would land wherever the module runs.

    '~' is taken: the modules' options are of type path, which expands it on the host.
    """
    for option in ("root_dir", "release_root"):
        value = options[option]
        if value and not value.startswith(("/", "~")):
            raise DeploymentConfigError("appspec_%s must be an absolute path on the hosts, not %r" % (option, value))


def plan_deployment(options: t.Mapping[str, t.Any], hosts: t.Sequence[str],
                    resolved: t.Optional[Resolved]) -> t.Dict[str, t.Any]:
    """The record for ``hosts``; ``options`` as :func:`settle_defaults` returns them, ``resolved`` the
    revision resolved on the controller (None: not looked at)."""
    health = plan_health(options["deployment_config"], len(hosts))
    application, group = options["application_name"], options["deployment_group_name"]
    deployment_id, rollback_deployment_id = deployment_ids(options)
    check_id(deployment_id, "deployment_id")
    check_roots(options)
    return {
        "deployment_id": deployment_id,
        "rollback_deployment_id": rollback_deployment_id,
        "application_name": application,
        "deployment_group_name": group,
        "deployment_group_id": options["deployment_group_id"] or deployment_group_id(application, group),
        "revision": resolved.source if resolved else options["revision"],
        "revision_kind": resolved.kind if resolved else None,
        # The archive on the controller that hosts receive, and what they need to stage it without YAML.
        "archive": resolved.path if resolved else None,
        "download_url": download_url(options, resolved),
        "sha256": resolved.sha256 if resolved else (options["sha256"].lower() or None),
        "appspec": resolved.appspec.as_dict() if resolved else None,
        "bundle_env": dict(resolved.bundle_env) if resolved else {},
        "appspec_filename": options["appspec_filename"],
        "deployment_config": options["deployment_config"],
        "minimum_healthy_hosts": {"type": health.type, "value": health.value},
        "hosts": list(hosts),
        "min_healthy": health.min_healthy,
        "max_unhealthy": health.max_unhealthy,
        "required_successes": health.required_successes,
        "batches": [health.max_unhealthy],
        "file_exists_behavior": options["file_exists_behavior"],
        "ignore_application_stop_failures": options["ignore_application_stop_failures"],
        "auto_rollback": options["auto_rollback"],
        "root_dir": options["root_dir"],
        "release_root": options["release_root"],
        "keep_releases": options["keep_releases"],
        "shared_paths": options["shared_paths"],
        "load_balancer": options["load_balancer"],
    }
