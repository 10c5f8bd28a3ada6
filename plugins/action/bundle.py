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

A small controller-side cache remembers which sha256s each host (per root_dir and deployment
group) has staged:
- sha256 known to be staged there -> ONE module run with no file (it reuses the staged copy);
- host known but sha256 new -> transfer, then ONE module run;
- host unknown (fresh controller, AWX) -> one module run with no file first; only when it
  answers ``revision_missing`` is the file transferred and the module run again.
So a new revision costs one transfer + one module run on a warm controller, an unchanged one a
single module run and zero bytes, and no transfer is ever wasted on a cold controller.
"""

from __future__ import annotations

import hashlib
import os
import typing as t

from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.module_utils.common.text.formatters import human_to_bytes
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase

from ansible_collections.appspec.deploy.plugins.module_utils._errors import DeployError
from ansible_collections.appspec.deploy.plugins.module_utils._layout import DEFAULT_ROOT_DIR, deployment_group_id
from ansible_collections.appspec.deploy.plugins.module_utils._sources import classify, local_path
from ansible_collections.appspec.deploy.plugins.module_utils._spec import ParsedAppSpec
from ansible_collections.appspec.deploy.plugins.plugin_utils._revision import (
    Resolved,
    atomic_json,
    cache_dir,
    read_json,
    resolve_local,
    resolve_remote,
)

MODULE = "appspec.deploy.bundle"
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


class ActionModule(ActionBase):
    TRANSFERS_FILES = False  # a remote temp dir is made only when a file has to go over
    _requires_connection = True

    def run(self, tmp: t.Any = None, task_vars: t.Optional[t.Dict[str, t.Any]] = None) -> t.Dict[str, t.Any]:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp
        args = dict(self._task.args)
        revision = args.get("revision")
        if revision is None:
            raise AnsibleActionFail("missing required arguments: revision")
        try:
            kind = classify(str(revision), args.get("revision_type") or "auto")
        except DeployError as err:
            raise AnsibleActionFail(str(err))
        if boolean(args.get("remote_src", False), strict=False):
            result.update(self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars))
            return result
        try:
            resolved = self._resolve(kind, str(revision), args)
        except DeployError as err:
            raise AnsibleActionFail(str(err))
        try:
            result.update(self._stage_from_controller(args, resolved, task_vars))
        finally:
            if self._connection._shell.tmpdir and self._cleanup_remote_tmp:
                self._remove_tmp_path(self._connection._shell.tmpdir)
        return result

    def _resolve(self, kind: str, revision: str, args: t.Dict[str, t.Any]) -> Resolved:
        try:
            max_size = human_to_bytes(str(args.get("max_unpacked_size") or "10G"))
        except ValueError as err:
            raise AnsibleActionFail("max_unpacked_size: %s" % err)
        common = dict(sha256=args.get("sha256"), appspec_filename=args.get("appspec_filename"),
                      max_unpacked_size=max_size, allow_setuid=boolean(args.get("allow_setuid", False), strict=False))
        given = args.get("appspec")
        if given is not None:
            # Parsed on the controller already (roles/revision): only the archive's sha256 is checked again.
            common["appspec"] = ParsedAppSpec.from_dict(given, "appspec")
        if kind != "local":
            return resolve_remote(kind, revision, headers=args.get("headers"), s3_version_id=args.get("s3_version_id"),
                                  s3_endpoint_url=args.get("s3_endpoint_url"), s3_region=args.get("s3_region"),
                                  git_ref=args.get("git_ref"), **common)
        try:
            source = self._find_needle("files", local_path(revision))
        except AnsibleError as err:
            raise AnsibleActionFail("revision %s not found on the controller: %s" % (revision, err))
        return resolve_local(source, **common)

    def _stage_from_controller(self, args: t.Dict[str, t.Any], resolved: Resolved,
                               task_vars: t.Dict[str, t.Any]) -> t.Dict[str, t.Any]:
        local_file, sha, size = resolved.path, resolved.sha256, resolved.size
        group_id = args.get("deployment_group_id")
        if not group_id and args.get("application_name") and args.get("deployment_group_name"):
            group_id = deployment_group_id(args["application_name"], args["deployment_group_name"])
        cache = StagedCache(str(task_vars.get("inventory_hostname", self._connection._play_context.remote_addr)),
                            str(args.get("root_dir") or DEFAULT_ROOT_DIR), str(group_id))
        module_args = dict(args, revision_type="local", remote_src=True, sha256=sha,
                           appspec=resolved.appspec.as_dict(), bundle_env=resolved.bundle_env)
        check_mode = bool(self._task.check_mode)
        source_info = {"type": resolved.kind, "revision": resolved.source, "identity": resolved.identity,
                       "packed": local_file if resolved.packed else None}

        if check_mode or not cache.known_host or cache.has(sha):
            probe = self._execute_module(module_name=MODULE, module_args=dict(module_args, revision=""),
                                         task_vars=task_vars)
            if not probe.get("failed"):
                cache.add(sha)
                probe.update(bytes_transferred=0, source=dict(probe.get("source") or {}, **source_info))
                return probe
            if not probe.get("revision_missing"):
                return probe
            cache.forget(sha)
            if check_mode:
                return {
                    "changed": True, "reused": False, "sha256": sha, "size": size, "bytes_transferred": 0,
                    "deployment_dir": probe.get("deployment_dir"), "archive_dir": probe.get("archive_dir"),
                    "deployment_group_id": probe.get("deployment_group_id"), "source": source_info,
                    "msg": "would transfer %s (%d bytes) and stage it in %s" % (resolved.source, size, probe.get("deployment_dir")),
                }

        if self._connection._shell.tmpdir is None:
            self._make_tmp_path()
        remote = self._connection._shell.join_path(self._connection._shell.tmpdir, "bundle-upload")
        self._transfer_file(local_file, remote)
        if self._is_become_unprivileged():
            # Only another unprivileged user needs access granted (ACLs); the login user and root can read
            # the upload already, and it is never executed: no `chmod u+rwx` round trip for them.
            self._fixup_perms2((self._connection._shell.tmpdir, remote))
        staged = self._execute_module(module_name=MODULE, module_args=dict(module_args, revision=remote),
                                      task_vars=task_vars)
        if not staged.get("failed"):
            cache.add(sha)
            staged.update(bytes_transferred=size, source=dict(staged.get("source") or {}, **source_info))
        return staged
