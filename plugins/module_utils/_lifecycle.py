# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A host's lifecycle in one module run: the events before DownloadBundle, staging, the events after it.

``lifecycle_event`` with ``DownloadBundle`` among its events::

    opts = StageOptions(revision, deployment_id, revision_type="local", remote_src=True, ...)
    preview = check_download(ctx, events, opts, reserved_handlers)   # before the lock, before any hook
    ... take the lock ...
    result = run_lifecycle(ctx, events, download=opts, reserved_handlers=..., after_event_handlers=..., diffs=diffs)

:func:`check_download` refuses (``revision_missing=True``) a revision that is neither uploaded nor staged,
and users the new revision's scripts cannot run as, before anything runs. :func:`run_lifecycle` runs
:func:`_hooks.run_events` for the events before DownloadBundle, :func:`_staging.stage`, then
:func:`_hooks.run_events` for the events after it (they plan from the ``appspec.json`` staging just wrote),
and returns ONE ``events`` list; a failure anywhere raises :class:`_hooks.HookError` with every later
event ``skipped``. Without DownloadBundle it is :func:`_hooks.run_events` unchanged.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
import typing as t

from ansible_collections.appspec.deploy.plugins.module_utils import _archive
from ansible_collections.appspec.deploy.plugins.module_utils._errors import DeployError
from ansible_collections.appspec.deploy.plugins.module_utils._hooks import (
    EventContext,
    Handler,
    HookError,
    append_deployments_log,
    check_event_order,
    command_for,
    plan_events,
    plan_script,
    run_events,
)
from ansible_collections.appspec.deploy.plugins.module_utils._staging import StageOptions, check_stageable, stage

DOWNLOAD_BUNDLE = "DownloadBundle"
SKIPPED_REASON = "an earlier event failed"


def _no_handler(ctx: EventContext) -> t.Dict[str, t.Any]:  # pragma: no cover - only its presence counts
    del ctx
    return {}


def split_events(events: t.Sequence[str]) -> t.Tuple[t.List[str], t.List[str]]:
    """(the events before DownloadBundle, the events after it)."""
    index = list(events).index(DOWNLOAD_BUNDLE)
    return list(events[:index]), list(events[index + 1:])


def check_download(ctx: EventContext, events: t.Sequence[str], opts: StageOptions,
                   reserved_handlers: t.Optional[t.Mapping[str, Handler]] = None) -> t.Dict[str, t.Any]:
    """Everything DownloadBundle needs, checked before the lock is taken and before any hook runs.

    The events' order; ``sha256`` and ``appspec`` given; the AppSpec of the last successful revision (else
    :class:`_hooks.AppSpecNeeded`); the revision staged for the group already or its upload on the host (else
    ``revision_missing=True``); the new revision's ``runas`` users. Returns the check-mode stage result.
    """
    check_event_order(events, dict(reserved_handlers or {}, **{DOWNLOAD_BUNDLE: _no_handler}))
    if ctx.archive_dir:
        raise DeployError("archive_dir runs an already staged revision: it cannot be combined with DownloadBundle")
    if not opts.sha256:
        raise DeployError("sha256 is required when DownloadBundle is in events")
    if opts.appspec is None:
        raise DeployError("appspec is required when DownloadBundle is in events (the AppSpec as the controller parsed it)")
    before, after = split_events(events)
    # The last successful revision may need its AppSpec from the controller (AppSpecNeeded): ask now,
    # before the lock is taken and before the upload is staged, so that the re-run finds both as they were.
    plan_events(ctx, before, dict(reserved_handlers or {}))
    preview = check_stageable(opts)
    problems = []  # type: t.List[str]
    for event in after:
        for hook in opts.appspec.hooks_for(event):
            try:
                command_for(plan_script(event, ctx.own_archive_dir, hook, must_exist=False))
            except DeployError as err:
                problems.append(str(err))
    if problems:
        raise DeployError("nothing was run: %s" % "; ".join(problems), problems=problems)
    return preview


def _skipped(events: t.Sequence[str], download: t.Optional[t.Dict[str, t.Any]] = None) -> t.List[t.Dict[str, t.Any]]:
    entries = []
    for event in events:
        entry = {"event": event, "status": "skipped", "reason": SKIPPED_REASON, "duration": 0.0, "scripts": []}  # type: t.Dict[str, t.Any]
        if event == DOWNLOAD_BUNDLE and download is not None:
            entry.update(download)
        entries.append(entry)
    return entries


def _stage_step(ctx: EventContext, opts: StageOptions) -> t.Tuple[t.Dict[str, t.Any], t.Optional[t.Dict[str, t.Any]], t.Optional[str]]:
    """(the DownloadBundle entry, the stage result or None, the failure message or None)."""
    entry = {"event": DOWNLOAD_BUNDLE, "status": "succeeded", "duration": 0.0, "scripts": [], "bytes_transferred": 0,
             "reused": False, "sha256": opts.sha256, "deployment_dir": ctx.deployment_dir}  # type: t.Dict[str, t.Any]
    started = time.monotonic()
    staged = None  # type: t.Optional[t.Dict[str, t.Any]]
    message = None  # type: t.Optional[str]
    try:
        staged = stage(opts, check_mode=ctx.check_mode)
    except (DeployError, OSError) as err:
        message = "%s: %s" % (DOWNLOAD_BUNDLE, err)
        entry.update(status="failed", msg=message)
        if isinstance(err, DeployError):
            entry.update({k: v for k, v in err.details.items() if k not in entry})
    else:
        entry.update(bytes_transferred=staged["bytes_transferred"], reused=staged["reused"], sha256=staged["sha256"],
                     deployment_dir=staged["deployment_dir"])
        if ctx.check_mode:
            entry.update(status="skipped", reason="check mode" + (": %s" % staged["msg"] if staged.get("msg") else ""))
    entry["duration"] = round(time.monotonic() - started, 3)
    if not ctx.check_mode:
        append_deployments_log(ctx.root, ctx.deployment_id, "LifecycleEvent - %s: %s in %.3f s" % (
            DOWNLOAD_BUNDLE, entry["status"], entry["duration"]))
    return entry, staged, message


@contextlib.contextmanager
def _preview(ctx: EventContext, opts: StageOptions, staged: t.Dict[str, t.Any]) -> t.Iterator[None]:
    """Check mode stages nothing: give Install the revision to look at, so it can say what it would write.

    A revision already staged in the group is looked at where it is; an upload on the host is unpacked
    (with staging's own limits) into a temp dir (TMPDIR), removed afterwards. A URL the
    host would download is not fetched in check mode: Install then says it cannot tell.
    """
    if not ctx.check_mode or os.path.isdir(ctx.own_archive_dir):
        yield
        return
    if staged.get("reused_from"):
        ctx.preview_archive = os.path.join(staged["reused_from"], "deployment-archive")
        yield
        return
    if staged.get("source", {}).get("type") != "local" or not os.path.isfile(opts.revision):
        yield
        return
    scratch = tempfile.mkdtemp(prefix="appspec-check-mode-")
    try:
        archive = os.path.join(scratch, "deployment-archive")
        _archive.unpack_archive(opts.revision, archive, max_size=opts.max_unpacked_size or None,
                                allow_setuid=opts.allow_setuid)
        ctx.preview_archive = archive
        yield
    finally:
        ctx.preview_archive = None
        _archive.remove_tree(scratch)


def run_lifecycle(
    ctx: EventContext,
    events: t.Sequence[str],
    *,
    download: t.Optional[StageOptions] = None,
    reserved_handlers: t.Optional[t.Mapping[str, Handler]] = None,
    after_event_handlers: t.Optional[t.Mapping[str, Handler]] = None,
    diffs: t.Optional[t.List[t.Dict[str, t.Any]]] = None,
) -> t.Dict[str, t.Any]:
    """Run ``events``; DownloadBundle (when among them) stages ``download`` in its place.

    Returns run_events' result (``changed``, ``events``, ``failed_event``, ``warnings``) plus, with
    DownloadBundle, ``bundle`` (the stage result without its diff, which goes to ``diffs``). Raises
    HookError (``events``, ``failed_event``, ``bundle``) at the first failure, later events ``skipped``.
    """
    if DOWNLOAD_BUNDLE not in events:
        return run_events(ctx, events, reserved_handlers=reserved_handlers, after_event_handlers=after_event_handlers)
    if download is None:
        raise DeployError("DownloadBundle needs the revision to stage")
    before, after = split_events(events)
    entries = []  # type: t.List[t.Dict[str, t.Any]]
    changed = False
    staged = None  # type: t.Optional[t.Dict[str, t.Any]]

    def failure(err: t.Optional[HookError], failed_event: str, message: str, rest: t.Sequence[str]) -> HookError:
        done = list(err.details.get("events") or []) if err is not None else []
        details = {
            "changed": changed or bool(err is not None and err.details.get("changed")),
            "events": entries + done + _skipped(rest, {"bytes_transferred": 0, "reused": False, "sha256": download.sha256,
                                                       "deployment_dir": ctx.deployment_dir}),
            "failed_event": failed_event, "warnings": list(ctx.warnings), "bundle": staged,
        }
        return HookError(message, **details)

    if before:
        try:
            result = run_events(ctx, before, reserved_handlers=reserved_handlers, after_event_handlers=after_event_handlers)
        except HookError as err:
            raise failure(err, err.details["failed_event"], str(err), [DOWNLOAD_BUNDLE] + after)
        entries.extend(result["events"])
        changed = bool(result["changed"])

    entry, staged, message = _stage_step(ctx, download)
    entries.append(entry)
    if message is not None:
        raise failure(None, DOWNLOAD_BUNDLE, message, after)
    staged = staged or {}
    diff = staged.pop("diff", None)
    if diff and diffs is not None:
        diffs.append(diff)
    changed = changed or bool(staged.get("changed"))
    ctx.bundle_env = dict(staged.get("bundle_env") or {}, **ctx.bundle_env)
    ctx.own_appspec = download.appspec

    if after:
        try:
            with _preview(ctx, download, staged):
                result = run_events(ctx, after, reserved_handlers=reserved_handlers, after_event_handlers=after_event_handlers)
        except HookError as err:
            raise failure(err, err.details["failed_event"], str(err), [])
        except DeployError as err:  # planning the staged revision (a script missing from it): nothing of it ran
            text = str(err)
            text = text[len("nothing was run: "):] if text.startswith("nothing was run: ") else text
            message = "%s: the staged revision cannot run (no script of it was run): %s" % (after[0], text)
            entries.append({"event": after[0], "status": "failed", "msg": message, "duration": 0.0, "scripts": []})
            raise failure(None, after[0], message, after[1:])
        entries.extend(result["events"])
        changed = changed or bool(result["changed"])
    return {"changed": changed, "events": entries, "failed_event": None, "warnings": list(ctx.warnings), "bundle": staged}
