# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One deployment group on one host: the single owner of its lock, records, releases and rollback target.

Python API::

    state = GroupState(root_dir, group_id, release_root=None)
    state.lock                                  HostLock <root_dir>/locks/<group-id>.lock
    state.releases                              ReleaseRoot in release mode, else None
    state.last_installed_dir() / record_installed(deployment_dir)    last_successful_install (writer: Install)
    state.most_recent_dir() / record_staged(deployment_dir)          most_recent_install (writer: DownloadBundle)
    state.last_good_dir()                                             last_good_deployment
    state.adopt_records()                        a group without history starts one from its records (before Install)
    state.record_outcome(deployment_id, succeeded)   last_good_deployment + history + release mark (writer: the
                                                    end of a lifecycle); returns warnings (pruning releases)
    state.recorded_release_root() -> (known, release_root or None)   how the group was last deployed
    state.installed() -> Optional[deployment id]    the revision that runs now
    state.rollback_target(rollback_from=None, explicit=None) -> Optional[deployment id]

Every record is named once, here, and written by one method. The agent's three records keep the
agent's format (a deployment dir path, no newline). Ours, ``<group-id>_deployment_history.json``,
lists the outcome of every lifecycle run of the group (and its release root), newest last: the rollback target is the
deployment that most recently succeeded, other than the one rolled back, whose revision is still
on the host (and, in release mode, whose release is finished). A host with no history yet (deployed
by an older version of this collection or by the CodeDeploy agent) starts from its records.
"""

from __future__ import annotations

import json
import os
import time
import typing as t

from ansible_collections.appspec.deploy.plugins.module_utils._errors import DeployError
from ansible_collections.appspec.deploy.plugins.module_utils._fileutil import atomic_write_text, read_text
from ansible_collections.appspec.deploy.plugins.module_utils._layout import DeploymentRoot, check_id
from ansible_collections.appspec.deploy.plugins.module_utils._lock import HostLock
from ansible_collections.appspec.deploy.plugins.module_utils._releases import ReleaseRoot

LAST_SUCCESSFUL_INSTALL = "last_successful_install"
MOST_RECENT_INSTALL = "most_recent_install"
LAST_GOOD_DEPLOYMENT = "last_good_deployment"
HISTORY_RECORD = "deployment_history.json"
MAX_HISTORY = 100


class GroupState:
    """See the module docstring."""

    def __init__(self, root_dir: str, group_id: str, release_root: t.Optional[str] = None) -> None:
        if release_root and not os.path.isabs(release_root):
            # A relative release root would land wherever the module happens to run.
            raise DeployError("release_root must be an absolute path, not %r" % release_root)
        self.root = DeploymentRoot(root_dir)
        self.group_id = check_id(group_id, "deployment group id")
        self.release_root = release_root or None
        self.releases = ReleaseRoot(release_root) if release_root else None
        self.lock = HostLock(root_dir, group_id)

    # ----------------------------------------------------------------- paths
    def deployment_dir(self, deployment_id: str) -> str:
        return self.root.deployment_dir(self.group_id, deployment_id)

    def archive_dir(self, deployment_id: str) -> str:
        return self.root.archive_dir(self.group_id, deployment_id)

    def deployment_id_of(self, deployment_dir: t.Optional[str]) -> t.Optional[str]:
        """The id of a deployment dir of this group (None for any other path)."""
        if not deployment_dir:
            return None
        path = os.path.normpath(deployment_dir)
        return os.path.basename(path) if os.path.dirname(path) == self.root.group_dir(self.group_id) else None

    def release_dirs(self, deployment_id: str) -> t.Tuple[t.Optional[str], t.Optional[str]]:
        """Release mode: (the release of ``deployment_id``, the release ``current`` pointed to before it)."""
        if self.releases is None:
            return None, None
        current = self.releases.current_release()
        if current == deployment_id:  # a re-run after the switch: the release before this one
            current = self.releases.previous_release()
        return self.releases.release_dir(deployment_id), self.releases.release_dir(current) if current else None

    # ----------------------------------------------------------------- the agent's records
    def last_installed_dir(self) -> t.Optional[str]:
        return self.root.read_record(self.group_id, LAST_SUCCESSFUL_INSTALL)

    def most_recent_dir(self) -> t.Optional[str]:
        return self.root.read_record(self.group_id, MOST_RECENT_INSTALL)

    def last_good_dir(self) -> t.Optional[str]:
        return self.root.read_record(self.group_id, LAST_GOOD_DEPLOYMENT)

    def protected_dirs(self) -> t.List[str]:
        """The deployment dirs the records point at: retention never removes them."""
        return [path for path in (self.last_installed_dir(), self.last_good_dir()) if path]

    def record_staged(self, deployment_dir: str) -> None:
        self.root.write_record(self.group_id, MOST_RECENT_INSTALL, deployment_dir)

    def record_installed(self, deployment_dir: str) -> None:
        self.root.write_record(self.group_id, LAST_SUCCESSFUL_INSTALL, deployment_dir)

    # ----------------------------------------------------------------- outcomes and history
    @property
    def history_path(self) -> str:
        return os.path.join(self.root.instructions_dir, "%s_%s" % (self.group_id, HISTORY_RECORD))

    def history(self) -> t.List[t.Dict[str, t.Any]]:
        """Outcomes, oldest first: ``{"deployment_id", "status": "good" | "bad", "at"}``."""
        text = read_text(self.history_path)
        if text is None:
            return self._history_from_records()
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if not isinstance(data, list):
            return []
        return [e for e in data if isinstance(e, dict) and isinstance(e.get("deployment_id"), str)]

    def _history_from_records(self) -> t.List[t.Dict[str, t.Any]]:
        """What the records say about a group that has no history yet (older versions, the agent)."""
        entries = []  # type: t.List[t.Dict[str, t.Any]]
        if self.releases is not None:
            marked = [r for r in self.releases.releases() if r.get("status") in ("good", "bad")]
            marked.sort(key=lambda r: (r.get("marked_at") or 0, r.get("seq", 0)))
            entries.extend({"deployment_id": r["id"], "status": r["status"], "at": r.get("marked_at") or 0} for r in marked)
        # The agent records last_successful_install only after a successful Install: take it as good.
        for path in (self.last_installed_dir(), self.last_good_dir()):
            deployment_id = self.deployment_id_of(path)
            if deployment_id and not any(e["deployment_id"] == deployment_id for e in entries):
                entries.append({"deployment_id": deployment_id, "status": "good", "at": 0})
        return entries

    def adopt_records(self) -> None:
        """Before an Install changes the records: a group without history keeps what its records say."""
        if read_text(self.history_path) is None:
            self._write_history(self._history_from_records())

    def _write_history(self, entries: t.List[t.Dict[str, t.Any]]) -> None:
        atomic_write_text(self.history_path, json.dumps(entries[-MAX_HISTORY:], indent=1) + "\n")

    def record_outcome(self, deployment_id: str, succeeded: bool, *, keep_releases: t.Optional[int] = None) -> t.List[str]:
        """The end of a lifecycle run: history, ``last_good_deployment``, the release's mark, pruning.

        Returns warnings (pruning failures never fail a deployment).
        """
        warnings = []  # type: t.List[str]
        status = "good" if succeeded else "bad"
        entry = {"deployment_id": check_id(deployment_id, "deployment id"), "status": status, "at": round(time.time(), 3),
                 "release_root": self.release_root}
        self._write_history(self.history() + [entry])
        if succeeded:
            self.root.write_record(self.group_id, LAST_GOOD_DEPLOYMENT, self.deployment_dir(deployment_id))
        if self.releases is not None and self.releases.is_finished(deployment_id):
            self.releases.mark(deployment_id, status)
        if succeeded and self.releases is not None and keep_releases is not None:
            try:
                pruned = self.releases.prune(keep_releases, protect=self._good_releases())
            except DeployError as err:
                warnings.append("pruning old releases failed: %s" % err)
            else:
                warnings.extend(pruned.get("warnings") or [])
        return warnings

    def _good_releases(self) -> t.List[str]:
        target = self.rollback_target()
        return [target] if target else []

    def recorded_release_root(self) -> t.Tuple[bool, t.Optional[str]]:
        """(known, release root) of the group's last recorded lifecycle: None when it installs in place."""
        for entry in reversed(self.history()):
            if "release_root" in entry:
                return True, entry["release_root"] or None
        return False, None

    def deployed(self) -> bool:
        """Whether this group was ever deployed on this host (by us or by the agent)."""
        return bool(self.history() or self.last_installed_dir() or self.most_recent_dir())

    # ----------------------------------------------------------------- rollback
    def installed(self) -> t.Optional[str]:
        """The deployment whose revision runs now: ``current`` in release mode, else the last install."""
        if self.releases is not None:
            return self.releases.current_release()
        return self.deployment_id_of(self.last_installed_dir())

    def _kept(self, deployment_id: str) -> t.Optional[str]:
        """Why the revision of ``deployment_id`` cannot be gone back to (None when it can)."""
        if not os.path.isdir(self.archive_dir(deployment_id)):
            return "its revision is no longer kept in %s" % self.deployment_dir(deployment_id)
        if self.releases is not None and not self.releases.is_finished(deployment_id):
            return "it has no finished release under %s" % self.releases.releases_dir
        return None

    def rollback_target(self, rollback_from: t.Optional[str] = None, explicit: t.Optional[str] = None) -> t.Optional[str]:
        """The deployment to go back to, or None when there is none.

        ``explicit`` must be kept on the host (else DeployError). Otherwise: the deployment that most
        recently succeeded, other than ``rollback_from`` (default: the one installed now), whose last
        outcome is good and whose revision is still kept.
        """
        if explicit:
            check_id(explicit, "rollback target")
            problem = self._kept(explicit)
            if problem:
                raise DeployError("cannot roll back to deployment %s: %s" % (explicit, problem))
            return explicit
        leaving = rollback_from or self.installed()
        seen = set()  # type: t.Set[str]
        for entry in reversed(self.history()):  # newest first; an id's newest outcome decides
            deployment_id = entry["deployment_id"]
            if deployment_id in seen:
                continue
            seen.add(deployment_id)
            if deployment_id != leaving and entry.get("status") == "good" and self._kept(deployment_id) is None:
                return deployment_id
        return None
