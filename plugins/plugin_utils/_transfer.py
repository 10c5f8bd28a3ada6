# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bring a resolved revision to a host only when it lacks it, around ONE module run.

Shared by the ``bundle`` and ``lifecycle_event`` action plugins. A small controller-side cache
remembers which sha256s each host (per root_dir and deployment group) has staged:

- sha256 known to be staged there -> ONE module run with ``revision=""`` (it reuses the staged copy);
- host known but sha256 new -> transfer, then ONE module run;
- host unknown (fresh controller, AWX) -> one module run with ``revision=""`` first; only when it
  answers ``revision_missing`` (before it has run or changed anything) is the file transferred and
  the module run again.

So a new revision costs one transfer + one module run on a warm controller, an unchanged one a
single module run and zero bytes, and no transfer is ever wasted on a cold controller.

With ``revision_url`` (``appspec_revision_download=host``) nothing goes through the controller: the
module downloads the URL itself and checks it against the pinned sha256 (:func:`host_download_url`).
"""

from __future__ import annotations

import hashlib
import os
import typing as t
import urllib.parse

from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.module_utils.common.text.formatters import human_to_bytes
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase

from ansible_collections.appspec.deploy.plugins.module_utils._errors import DeployError
from ansible_collections.appspec.deploy.plugins.module_utils._sources import _redact, classify, local_path
from ansible_collections.appspec.deploy.plugins.module_utils._spec import ParsedAppSpec

from ansible_collections.appspec.deploy.plugins.module_utils._layout import DEFAULT_ROOT_DIR, deployment_group_id
from ansible_collections.appspec.deploy.plugins.plugin_utils._revision import (
    Resolved,
    atomic_json,
    cache_dir,
    read_json,
    resolve_local,
    resolve_remote,
)

_KEEP_SHAS_PER_HOST = 32


class StagedCache:
    """What this controller knows each host has staged, per root_dir and deployment group."""

    def __init__(self, host: str, root_dir: str, group_id: str, cache: t.Optional[str] = None) -> None:
        key = hashlib.sha256(("%s\0%s\0%s" % (host, root_dir, group_id)).encode()).hexdigest()
        self.path = os.path.join(cache or cache_dir(), "hosts", key + ".json")
        data = read_json(self.path)
        self.known_host = isinstance(data, dict)
        self.shas = list(data.get("sha256", [])) if isinstance(data, dict) else []  # type: t.List[str]
        self.host = host

    def has(self, sha256: str) -> bool:
        return sha256 in self.shas

    def add(self, sha256: str) -> None:
        self.shas = [sha256] + [s for s in self.shas if s != sha256][:_KEEP_SHAS_PER_HOST - 1]
        atomic_json(self.path, {"host": self.host, "sha256": self.shas})

    def forget(self, sha256: str) -> None:
        if sha256 in self.shas:
            self.shas.remove(sha256)
            atomic_json(self.path, {"host": self.host, "sha256": self.shas})


def _group_id(args: t.Mapping[str, t.Any]) -> str:
    if args.get("deployment_group_id"):
        return str(args["deployment_group_id"])
    return deployment_group_id(str(args.get("application_name")), str(args.get("deployment_group_name")))


def run_with_archive(action: ActionBase, task_vars: t.Dict[str, t.Any], module_name: str,
                     module_args: t.Dict[str, t.Any], resolved: Resolved, *,
                     transfer_in_check_mode: bool) -> t.Dict[str, t.Any]:
    """Run ``module_name`` with ``revision`` set to the host's copy of ``resolved`` (or "" to reuse it).

    Returns the module's result with ``bytes_transferred``. In check mode the archive is only
    transferred (to the task's temp dir, never staged) when ``transfer_in_check_mode``; otherwise a
    ``revision_missing`` answer is returned as it is.
    """
    # pylint: disable=protected-access
    check_mode = bool(action._task.check_mode)
    host = str(task_vars.get("inventory_hostname", action._connection._play_context.remote_addr))
    cache = StagedCache(host, str(module_args.get("root_dir") or DEFAULT_ROOT_DIR), _group_id(module_args))
    sha = resolved.sha256
    if check_mode or not cache.known_host or cache.has(sha):
        probe = action._execute_module(module_name=module_name, module_args=dict(module_args, revision=""),
                                       task_vars=task_vars)
        if not probe.get("failed"):
            cache.add(sha)
            return dict(probe, bytes_transferred=0)
        if not probe.get("revision_missing"):
            return probe
        cache.forget(sha)
        if check_mode and not transfer_in_check_mode:
            return probe
    if action._connection._shell.tmpdir is None:
        action._make_tmp_path()
    remote = action._connection._shell.join_path(action._connection._shell.tmpdir, "bundle-upload")
    action._transfer_file(resolved.path, remote)
    if action._is_become_unprivileged():
        # Only another unprivileged user needs access granted (ACLs); the login user and root can read
        # the upload already, and it is never executed: no `chmod u+rwx` round trip for them.
        action._fixup_perms2((action._connection._shell.tmpdir, remote))
    answer = action._execute_module(module_name=module_name, module_args=dict(module_args, revision=remote),
                                    task_vars=task_vars)
    if not answer.get("failed") and not check_mode:
        cache.add(sha)
    return dict(answer, bytes_transferred=resolved.size)


def host_download_url(args: t.Mapping[str, t.Any]) -> str:
    """The task's ``revision_url``, which the host downloads itself: nothing is resolved or uploaded here.

    Only the controller could check the archive, so the host needs what it pinned: ``sha256`` and ``appspec``.
    """
    url = str(args["revision_url"])
    if urllib.parse.urlsplit(url).scheme.lower() not in ("http", "https"):
        raise AnsibleActionFail("revision_url must be an http(s):// URL, not %s" % _redact(url))
    missing = [name for name in ("sha256", "appspec") if not args.get(name)]
    if missing:
        raise AnsibleActionFail("revision_url needs %s: the host checks its download against what the controller "
                                "validated (the deployment record of appspec.deploy.deployment_plan)" % " and ".join(missing))
    return url


def resolve_task_revision(action: ActionBase, args: t.Mapping[str, t.Any]) -> Resolved:
    """The task's ``revision`` resolved on the controller (a controller path is looked up like ``copy``'s src).

    A normalized ``appspec`` in the task (parsed already by ``deployment_plan``) is trusted; the
    archive's sha256 is still checked against ``sha256``.
    """
    revision = str(args["revision"])
    try:
        max_size = human_to_bytes(str(args.get("max_unpacked_size") or "10G"))
    except ValueError as err:
        raise AnsibleActionFail("max_unpacked_size: %s" % err)
    try:
        kind = classify(revision, args.get("revision_type") or "auto")
        common = dict(sha256=args.get("sha256"), appspec_filename=args.get("appspec_filename"),
                      max_unpacked_size=max_size, allow_setuid=boolean(args.get("allow_setuid", False), strict=False))
        if args.get("appspec") is not None:
            common["appspec"] = ParsedAppSpec.from_dict(args["appspec"], "appspec")
        if kind != "local":
            return resolve_remote(kind, revision, headers=args.get("headers"), s3_version_id=args.get("s3_version_id"),
                                  s3_endpoint_url=args.get("s3_endpoint_url"), s3_region=args.get("s3_region"),
                                  git_ref=args.get("git_ref"), **common)
        try:
            source = action._find_needle("files", local_path(revision))  # pylint: disable=protected-access
        except AnsibleError as err:
            raise AnsibleActionFail("revision %s not found on the controller: %s" % (revision, err))
        return resolve_local(source, **common)
    except DeployError as err:
        raise AnsibleActionFail(str(err), result=dict(err.details))
