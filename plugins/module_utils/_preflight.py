# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Preflight: check one host before a deployment touches any, changing nothing (docs/pipeline.md, "Preflight").

Every check runs and every problem is returned, so that one run lists all of them:

* free disk: the bundle and its unpacked revision under ``root_dir``; the unpacked revision again under the
  release root (release mode) or under each ``files`` destination (in place); needs on one file system add up;
* the users and groups the AppSpec names (hooks' ``runas``; ``owner``, ``group`` and ``acls`` of ``permissions``);
* the host's Python (3.8 or later);
* the commands the deployment needs there: ``setfacl`` where ``acls`` are used, ``sudo`` where a hook has
  ``sudo: true`` and the module does not run as root;
* the deployment lock of the group free (or stale);
* ``root_dir`` writable where it would be created.

Python 3.8 standard library only.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import sys
import time
import typing as t

from ._lock import HostLock, describe_holder

MIN_PYTHON = (3, 8)


def _existing(path: str) -> str:
    """``path`` or its nearest ancestor that exists (where a directory would be created)."""
    path = os.path.abspath(path)
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def _human(size: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return ("%d %s" % (size, unit)) if unit == "bytes" else ("%.1f %s" % (size, unit))
        size /= 1024.0
    return "%d" % size  # pragma: no cover


def _spec(appspec: t.Optional[t.Mapping[str, t.Any]]) -> t.Mapping[str, t.Any]:
    """The AppSpec itself, from the normalized form (``{appspec: ...}``) or as it is."""
    appspec = appspec or {}
    inner = appspec.get("appspec")
    return inner if isinstance(inner, t.Mapping) else appspec


def _acl_names(entry: str) -> t.Tuple[t.Optional[str], t.Optional[str]]:
    """(user, group) an ACL entry names, e.g. ``u:alice:rwx`` or ``d:g:web:r-x``."""
    parts = str(entry).split(":")
    if parts and parts[0] in ("d", "default"):
        parts = parts[1:]
    if len(parts) >= 3 and parts[1]:
        if parts[0] in ("u", "user"):
            return parts[1], None
        if parts[0] in ("g", "group"):
            return None, parts[1]
    return None, None


def named_accounts(appspec: t.Optional[t.Mapping[str, t.Any]]) -> t.Tuple[t.Dict[str, t.List[str]], t.Dict[str, t.List[str]]]:
    """The users and the groups the AppSpec names, each with where (``hooks.ApplicationStart[0].runas``)."""
    spec = _spec(appspec)
    users = {}  # type: t.Dict[str, t.List[str]]
    groups = {}  # type: t.Dict[str, t.List[str]]
    for event, hooks in sorted((spec.get("hooks") or {}).items()):
        for index, hook in enumerate(hooks if isinstance(hooks, list) else []):
            if isinstance(hook, t.Mapping) and hook.get("runas"):
                users.setdefault(str(hook["runas"]), []).append("hooks.%s[%d].runas" % (event, index))
    for index, rule in enumerate(spec.get("permissions") or []):
        if not isinstance(rule, t.Mapping):
            continue
        where = "permissions[%d]" % index
        if rule.get("owner"):
            users.setdefault(str(rule["owner"]), []).append(where + ".owner")
        if rule.get("group"):
            groups.setdefault(str(rule["group"]), []).append(where + ".group")
        for acl in rule.get("acls") or []:
            user, group = _acl_names(acl)
            if user:
                users.setdefault(user, []).append(where + ".acls")
            if group:
                groups.setdefault(group, []).append(where + ".acls")
    return users, groups


def _is_id(name: str) -> bool:
    return name.isdigit()


def check_accounts(appspec: t.Optional[t.Mapping[str, t.Any]]) -> t.List[str]:
    users, groups = named_accounts(appspec)
    problems = []
    for name, where in sorted(users.items()):
        try:
            if not _is_id(name):
                pwd.getpwnam(name)
        except KeyError:
            problems.append("user %s does not exist (named by %s)" % (name, ", ".join(where)))
    for name, where in sorted(groups.items()):
        try:
            if not _is_id(name):
                grp.getgrnam(name)
        except KeyError:
            problems.append("group %s does not exist (named by %s)" % (name, ", ".join(where)))
    return problems


def check_commands(appspec: t.Optional[t.Mapping[str, t.Any]], is_root: t.Optional[bool] = None) -> t.List[str]:
    spec = _spec(appspec)
    problems = []
    uses_acls = any(isinstance(rule, t.Mapping) and rule.get("acls") for rule in spec.get("permissions") or [])
    if uses_acls and not shutil.which("setfacl"):
        problems.append("the command setfacl is missing (package acl): the AppSpec's permissions use acls")
    root = os.geteuid() == 0 if is_root is None else is_root
    uses_sudo = any(isinstance(hook, t.Mapping) and hook.get("sudo") for hooks in (spec.get("hooks") or {}).values()
                    for hook in (hooks if isinstance(hooks, list) else []))
    if uses_sudo and not root and not shutil.which("sudo"):
        problems.append("the command sudo is missing: a hook has sudo: true and the deployment does not run as root")
    return problems


def check_python(version: t.Optional[t.Tuple[int, ...]] = None) -> t.List[str]:
    version = tuple(sys.version_info[:3]) if version is None else tuple(version)
    if version[:2] < MIN_PYTHON:
        return ["Python %s is too old: appspec.deploy needs Python %d.%d or later on the host"
                % (".".join(str(part) for part in version), MIN_PYTHON[0], MIN_PYTHON[1])]
    return []


def disk_needs(root_dir: str, bundle_size: int, unpacked_size: int, release_root: str = "",
               appspec: t.Optional[t.Mapping[str, t.Any]] = None) -> t.List[t.Tuple[str, int, str]]:
    """(path, bytes, what) for each place the deployment writes to."""
    needs = [(root_dir, int(bundle_size) + int(unpacked_size), "the bundle and its unpacked revision")]
    if release_root:
        needs.append((release_root, int(unpacked_size), "the new release"))
    else:
        destinations = sorted({str(item.get("destination")) for item in _spec(appspec).get("files") or []
                               if isinstance(item, t.Mapping) and item.get("destination")})
        for destination in destinations:
            needs.append((destination, int(unpacked_size), "the installed files (at most the unpacked revision)"))
    return needs


def check_disk(needs: t.Sequence[t.Tuple[str, int, str]]) -> t.Tuple[t.List[str], t.List[t.Dict[str, t.Any]]]:
    """Problems, and one entry per file system: its free bytes and what the deployment needs there."""
    by_device = {}  # type: t.Dict[int, t.Dict[str, t.Any]]
    problems = []
    for path, size, what in needs:
        where = _existing(path)
        try:
            device = os.stat(where).st_dev
            stats = os.statvfs(where)
        except OSError as err:
            problems.append("cannot check the free disk at %s: %s" % (path, err))
            continue
        free = stats.f_bavail * stats.f_frsize
        entry = by_device.setdefault(device, {"path": where, "free": free, "needed": 0, "for": []})
        entry["needed"] += size
        entry["for"].append("%s (%s, %s)" % (path, what, _human(size)))
    for entry in by_device.values():
        if entry["needed"] > entry["free"]:
            problems.append("not enough free disk on the file system of %s: %s needed for %s, %s free"
                            % (entry["path"], _human(entry["needed"]), " + ".join(entry["for"]), _human(entry["free"])))
    return problems, list(by_device.values())


def check_lock(root_dir: str, group_id: str, now: t.Optional[float] = None) -> t.List[str]:
    lock = HostLock(root_dir, group_id)
    holder = lock.read()
    if holder is None or HostLock.is_stale(holder, now):
        return []
    return ["the deployment lock %s is held: %s" % (lock.path, describe_holder(holder, now))]


def check_root_dir(root_dir: str) -> t.List[str]:
    where = _existing(root_dir)
    if not os.path.isdir(where):
        return ["%s cannot be created: %s is not a directory" % (root_dir, where)]
    if not os.access(where, os.W_OK | os.X_OK):
        return ["%s is not writable by %s (%s)" % (where, _whoami(), "the deployment root" if where == root_dir
                                                   else "where the deployment root %s would be created" % root_dir)]
    return []


def _whoami() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return "uid %d" % os.geteuid()


def preflight(root_dir: str, group_id: str, appspec: t.Optional[t.Mapping[str, t.Any]] = None, bundle_size: int = 0,
              unpacked_size: int = 0, release_root: str = "", now: t.Optional[float] = None) -> t.Dict[str, t.Any]:
    """Every check on this host; ``problems`` empty when the deployment may go ahead. Changes nothing."""
    problems = []  # type: t.List[str]
    problems.extend(check_python())
    problems.extend(check_root_dir(root_dir))
    disk_problems, disk = check_disk(disk_needs(root_dir, bundle_size, unpacked_size, release_root, appspec))
    problems.extend(disk_problems)
    problems.extend(check_accounts(appspec))
    problems.extend(check_commands(appspec))
    problems.extend(check_lock(root_dir, group_id, time.time() if now is None else now))
    return {"problems": problems, "disk": disk, "python": ".".join(str(part) for part in sys.version_info[:3])}
