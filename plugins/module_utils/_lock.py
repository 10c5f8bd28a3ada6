# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Host lock per application and deployment group.

Python API::

    lock = HostLock(root_dir, name)        # file <root_dir>/locks/<name>.lock
    lock.acquire(deployment_id, ttl=600, owner=None) -> {"changed": bool, "lock": dict}
    lock.refresh(deployment_id, ttl=None) -> bool    # push the expiry back if this deployment holds it
    with lock.kept_fresh(deployment_id): ...         # refresh every ttl/4 s in a thread meanwhile
    lock.release(deployment_id) -> bool    # only the holder's deployment id may release
    lock.break_lock() -> Optional[dict]    # remove whatever lock is there; returns the old holder
    lock.read() -> Optional[dict]

The lock file is JSON ``{deployment_id, owner, pid, host, acquired, expires, ttl}`` (times in epoch
seconds). It is created atomically and complete: the JSON is written to a temp file, then
``link(2)``-ed to the lock name, which fails with EEXIST when a lock exists. A crash can therefore
never leave an empty or half-written lock behind. A lock past its expiry is *stale*; it is not
taken over silently, it must be broken explicitly (``break_lock`` or ``acquire(break_stale=True)``).

The expiry is short (``DEFAULT_TTL``, 10 minutes) and renewed while the deployment runs: every
``lifecycle_event`` run of the holding deployment refreshes it, and a hook running longer keeps it
fresh from a thread (:meth:`HostLock.kept_fresh`). So a killed controller blocks the group for at
most 10 minutes, and a hook that legitimately runs for an hour does not lose the lock.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import contextlib
import tempfile
import threading
import time
import typing as t

from ansible_collections.appspec.deploy.plugins.module_utils._errors import DeployError
from ansible_collections.appspec.deploy.plugins.module_utils._fileutil import atomic_write_text
from ansible_collections.appspec.deploy.plugins.module_utils._layout import check_id

DEFAULT_TTL = 600


class LockHeldError(DeployError):
    """Another deployment holds the lock. ``details["holder"]`` is the lock's content."""


def describe_holder(holder: t.Optional[t.Dict[str, t.Any]], now: t.Optional[float] = None) -> str:
    if not holder:
        return "an unreadable lock"
    now = time.time() if now is None else now
    expires = holder.get("expires")
    when = ""
    if isinstance(expires, (int, float)):
        when = " (expired %ds ago)" % int(now - expires) if expires <= now else " (expires in %ds)" % int(expires - now)
    return "deployment %s by %s, pid %s on %s, since %s%s" % (
        holder.get("deployment_id", "?"),
        holder.get("owner") or "?",
        holder.get("pid", "?"),
        holder.get("host", "?"),
        time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(holder["acquired"])) if isinstance(holder.get("acquired"), (int, float)) else "?",
        when,
    )


class HostLock:
    """One lock file; see the module docstring."""

    def __init__(self, root_dir: str, name: str) -> None:
        self.root_dir = root_dir
        self.name = check_id(name, "lock name")
        self.path = os.path.join(root_dir, "locks", "%s.lock" % self.name)

    def read(self) -> t.Optional[t.Dict[str, t.Any]]:
        """The holder, None when unlocked, ``{}`` when a lock file exists but cannot be parsed."""
        try:
            with open(self.path, encoding="utf-8") as handle:
                text = handle.read()
        except FileNotFoundError:
            return None
        try:
            data = json.loads(text)
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    @staticmethod
    def is_stale(holder: t.Optional[t.Dict[str, t.Any]], now: t.Optional[float] = None) -> bool:
        """Expired, or unreadable (which a crash cannot produce, so someone else wrote it)."""
        if holder is None:
            return False
        expires = holder.get("expires")
        if not isinstance(expires, (int, float)):
            return True
        return expires <= (time.time() if now is None else now)

    def _create(self, content: t.Dict[str, t.Any]) -> bool:
        directory = os.path.dirname(self.path)
        os.makedirs(directory, mode=0o755, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-%s-" % self.name, dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(content, handle, sort_keys=True)
                handle.write("\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o644)
            try:
                os.link(tmp, self.path)
            except OSError as err:
                if err.errno == errno.EEXIST:
                    return False
                raise
            return True
        finally:
            os.unlink(tmp)

    def acquire(
        self,
        deployment_id: str,
        ttl: int = DEFAULT_TTL,
        owner: t.Optional[str] = None,
        *,
        break_stale: bool = False,
        check_mode: bool = False,
    ) -> t.Dict[str, t.Any]:
        """Take the lock for ``deployment_id``; fail fast naming the holder when someone else has it.

        Re-acquiring by the same deployment id succeeds and extends the expiry (``changed`` true
        only when the lock was created). ``break_stale`` breaks an expired or unreadable lock.
        """
        check_id(deployment_id, "deployment id")
        if ttl <= 0:
            raise DeployError("lock ttl must be a positive number of seconds, got %r" % ttl)
        now = time.time()
        content = {
            "deployment_id": deployment_id,
            "owner": owner or _default_owner(),
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "acquired": now,
            "expires": now + ttl,
            "ttl": ttl,
        }
        for _attempt in range(3):
            holder = self.read()
            if holder is None:
                if check_mode:
                    return {"changed": True, "lock": content, "path": self.path}
                if self._create(content):
                    return {"changed": True, "lock": content, "path": self.path}
                continue  # lost a race; look at the new holder
            if holder.get("deployment_id") == deployment_id:
                refreshed = dict(holder, expires=now + ttl, ttl=ttl)
                if not check_mode:
                    atomic_write_text(self.path, json.dumps(refreshed, sort_keys=True) + "\n")
                return {"changed": False, "lock": refreshed, "path": self.path}
            if break_stale and self.is_stale(holder, now):
                if check_mode:
                    return {"changed": True, "lock": content, "broken": holder, "path": self.path}
                self._remove_if_same(holder)
                continue
            if self.is_stale(holder, now):
                hint = (" The lock is stale: break it with appspec_break_stale_lock=true (playbooks), break_stale_lock=true"
                        " (lifecycle_event) or state=unlocked force=true (release).")
            else:
                # A killed controller leaves its lock until it expires: say how to go on without waiting.
                hint = (" Wait for that deployment to end; if it is no longer running (its controller was killed), break"
                        " the lock with the release module, state=unlocked force=true, for this application and group.")
            raise LockHeldError(
                "host is locked by %s; lock file %s.%s" % (describe_holder(holder, now), self.path, hint),
                holder=holder,
                lock_path=self.path,
            )
        raise LockHeldError("could not take the host lock %s: it keeps changing hands" % self.path, lock_path=self.path)

    def refresh(self, deployment_id: str, ttl: t.Optional[int] = None, *, check_mode: bool = False) -> bool:
        """Push the expiry to now + ``ttl`` (default: the ttl the lock was taken with) when ``deployment_id``
        holds the lock; False (and nothing written) when it does not, including when someone broke it."""
        holder = self.read()
        if not holder or holder.get("deployment_id") != deployment_id:
            return False
        if ttl is None:
            ttl = holder["ttl"] if isinstance(holder.get("ttl"), (int, float)) and holder["ttl"] > 0 else DEFAULT_TTL
        if not check_mode:
            atomic_write_text(self.path, json.dumps(dict(holder, expires=time.time() + ttl), sort_keys=True) + "\n")
        return True

    @contextlib.contextmanager
    def kept_fresh(self, deployment_id: str, interval: t.Optional[float] = None) -> t.Iterator[None]:
        """Refresh the lock of ``deployment_id`` (for its own ttl) every ``interval`` seconds (default a
        quarter of that ttl) from a thread while the block runs (a long hook). A refresh that fails is
        tried again at the next tick; one that finds the lock gone or another's ends the thread."""
        stop = threading.Event()
        holder = self.read() or {}
        ttl = holder["ttl"] if isinstance(holder.get("ttl"), (int, float)) and holder["ttl"] > 0 else DEFAULT_TTL
        every = interval if interval is not None else max(ttl / 4.0, 0.1)

        def renew() -> None:
            while not stop.wait(every):
                try:
                    if not self.refresh(deployment_id):
                        return  # released or broken: nothing of ours to keep
                except OSError:
                    continue  # a full disk, say: the lock file stays as it was; try again
        thread = threading.Thread(target=renew, name="appspec-lock-refresh", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def _remove_if_same(self, holder: t.Dict[str, t.Any]) -> None:
        # Move it aside first so that we only ever delete the lock we looked at.
        aside = "%s.broken-%d" % (self.path, os.getpid())
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return
        seen = None
        try:
            with open(aside, encoding="utf-8") as handle:
                seen = json.loads(handle.read())
        except (OSError, ValueError):
            seen = {}
        if seen != holder and holder != {}:
            # Someone replaced the lock between our read and the rename: put it back.
            try:
                os.link(aside, self.path)
            except OSError:
                pass
        os.unlink(aside)

    def release(self, deployment_id: str, *, check_mode: bool = False) -> bool:
        """Drop the lock if ``deployment_id`` holds it. False when there was no lock."""
        holder = self.read()
        if holder is None:
            return False
        if holder.get("deployment_id") != deployment_id:
            raise DeployError(
                "cannot release the host lock for deployment %s: it is held by %s" % (deployment_id, describe_holder(holder)),
                holder=holder,
                lock_path=self.path,
            )
        if not check_mode:
            self._remove_if_same(holder)
        return True

    def break_lock(self, *, check_mode: bool = False) -> t.Optional[t.Dict[str, t.Any]]:
        """Remove the lock whoever holds it; returns the old holder (None when unlocked)."""
        holder = self.read()
        if holder is None or check_mode:
            return holder
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            return None
        return holder


def _default_owner() -> str:
    try:
        import pwd

        user = pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError):
        user = str(os.geteuid())
    return "%s@%s" % (user, socket.gethostname())
