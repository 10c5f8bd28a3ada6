# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The revision history of each application, kept on the controller (a directory) or in S3, and promotion.

One JSON document per deployment, written once at the end of ``playbooks/deploy.yml`` whatever its outcome::

    <location>/<application>/deployments/<ended>-<deployment id>.json
    <location>/<application>/blocks/<sha256>.json      a revision blocked (or unblocked) from promotion

``<location>`` is a directory (``appspec_history_dir``; default :func:`default_location`) written atomically
(temp file + rename, so a reader never sees half a record), or ``s3://bucket/prefix`` (boto3, imported only
then). From the records: which revision runs where and since when (:func:`current`), and whether a revision
may go to an environment (:func:`check_promotion`): environments are deployment groups in order, and only a
revision whose last deployment to the previous one succeeded, and that is not blocked, may go to the next.
"""

from __future__ import annotations

import datetime
import getpass
import json
import os
import socket
import tempfile
import typing as t
import urllib.parse

from ansible_collections.appspec.deploy.plugins.module_utils._errors import DeployError
from ansible_collections.appspec.deploy.plugins.module_utils._sources import normalize_sha256
from ansible_collections.appspec.deploy.plugins.plugin_utils._fetch import _s3_client

SCHEMA = 1
DEPLOYMENTS = "deployments"
BLOCKS = "blocks"
SUCCEEDED, FAILED = "succeeded", "failed"

Record = t.Dict[str, t.Any]


class HistoryError(DeployError):
    """The history cannot be read or written."""


class PromotionError(DeployError):
    """A revision that may not go to an environment; ``problems`` says every reason."""

    def __init__(self, message: str, problems: t.List[str], **details: t.Any) -> None:
        self.problems = problems
        super().__init__(message, problems=problems, **details)


def default_location(environ: t.Optional[t.Mapping[str, str]] = None) -> str:
    """``$APPSPEC_DEPLOY_HISTORY_DIR``, else ``${XDG_STATE_HOME:-~/.local/state}/appspec.deploy/history``."""
    env = os.environ if environ is None else environ
    if env.get("APPSPEC_DEPLOY_HISTORY_DIR"):
        return env["APPSPEC_DEPLOY_HISTORY_DIR"]
    return os.path.join(env.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state"), "appspec.deploy", "history")


def utc_text(seconds: float) -> str:
    """``2026-12-01T22:40:40Z``."""
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def who(task_vars: t.Mapping[str, t.Any]) -> str:
    """The AWX user who launched the job (``awx_user_name`` / ``tower_user_name``), else ``user@controller``."""
    for name in ("awx_user_name", "tower_user_name"):
        if task_vars.get(name):
            return str(task_vars[name])
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        user = str(os.getuid())
    return "%s@%s" % (user, socket.gethostname())


def process_start(pid: int) -> t.Optional[float]:
    """When process ``pid`` started (seconds since the epoch), from /proc; None where there is no /proc."""
    try:
        with open("/proc/%d/stat" % pid) as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        with open("/proc/stat") as handle:
            boot = next(int(line.split()[1]) for line in handle if line.startswith("btime "))
        return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22 of stat: starttime, in ticks
    except (OSError, ValueError, IndexError, StopIteration):
        return None


# --- where the records live ------------------------------------------------------------------------


class Store:
    """Named JSON documents below a location."""

    location = ""

    def put(self, name: str, data: Record) -> None:
        raise NotImplementedError

    def get(self, name: str) -> t.Optional[Record]:
        raise NotImplementedError

    def names(self, prefix: str) -> t.List[str]:
        """The names below ``prefix`` (a folder), sorted."""
        raise NotImplementedError


class DirStore(Store):
    def __init__(self, root: str) -> None:
        self.location = self.root = os.path.abspath(os.path.expanduser(root))

    def put(self, name: str, data: Record) -> None:
        path = os.path.join(self.root, name)
        try:
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=os.path.dirname(path))
        except OSError as err:
            raise HistoryError("cannot write the history in %s: %s" % (self.root, err))
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(data, handle, indent=1, sort_keys=True)
                handle.write("\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)  # readers see the old record or the new one, never half of one
        except BaseException as err:
            if os.path.exists(tmp):
                os.unlink(tmp)
            if isinstance(err, OSError):
                raise HistoryError("cannot write %s: %s" % (path, err))
            raise

    def get(self, name: str) -> t.Optional[Record]:
        path = os.path.join(self.root, name)
        try:
            with open(path) as handle:
                return json.load(handle)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as err:
            raise HistoryError("cannot read %s: %s" % (path, err))

    def names(self, prefix: str) -> t.List[str]:
        folder = os.path.join(self.root, prefix)
        try:
            entries = os.listdir(folder)
        except FileNotFoundError:
            return []
        except OSError as err:
            raise HistoryError("cannot read %s: %s" % (folder, err))
        return sorted(prefix.rstrip("/") + "/" + name for name in entries if name.endswith(".json") and not name.startswith("."))


class S3Store(Store):
    def __init__(self, location: str, endpoint_url: t.Optional[str] = None, region: t.Optional[str] = None) -> None:
        parsed = urllib.parse.urlsplit(location)
        if parsed.scheme.lower() != "s3" or not parsed.netloc:
            raise HistoryError("an S3 history must look like s3://bucket/prefix, not %r" % location)
        self.location, self.bucket, self.prefix = location, parsed.netloc, parsed.path.strip("/")
        try:
            self.client = _s3_client(endpoint_url, region)
        except DeployError as err:
            raise HistoryError("the S3 history %s: %s" % (location, err))

    def _key(self, name: str) -> str:
        return "%s/%s" % (self.prefix, name) if self.prefix else name

    def put(self, name: str, data: Record) -> None:
        body = (json.dumps(data, indent=1, sort_keys=True) + "\n").encode("utf-8")
        try:  # one PUT: S3 stores the whole object or nothing
            self.client.put_object(Bucket=self.bucket, Key=self._key(name), Body=body, ContentType="application/json")
        except Exception as err:  # botocore raises many types; all are reported the same way
            raise HistoryError("cannot write s3://%s/%s: %s" % (self.bucket, self._key(name), err))

    def get(self, name: str) -> t.Optional[Record]:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self._key(name))["Body"].read()
        except Exception as err:
            code = getattr(err, "response", {}).get("Error", {}).get("Code") if hasattr(err, "response") else None
            if code in ("NoSuchKey", "404"):
                return None
            raise HistoryError("cannot read s3://%s/%s: %s" % (self.bucket, self._key(name), err))
        try:
            return json.loads(body.decode("utf-8"))
        except ValueError as err:
            raise HistoryError("s3://%s/%s is not JSON: %s" % (self.bucket, self._key(name), err))

    def names(self, prefix: str) -> t.List[str]:
        folder = prefix.strip("/")
        start = self._key(folder + "/") if folder else self._key("")
        found = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=start):
                found.extend(item["Key"] for item in page.get("Contents") or [])
        except Exception as err:
            raise HistoryError("cannot list s3://%s/%s: %s" % (self.bucket, start, err))
        base = len(self._key(""))
        return sorted(key[base:] for key in found if key.endswith(".json"))


def open_store(location: t.Optional[str] = None, *, s3_endpoint_url: t.Optional[str] = None,
               s3_region: t.Optional[str] = None) -> Store:
    """The store at ``location`` (a directory or ``s3://bucket/prefix``; empty: :func:`default_location`)."""
    location = location or default_location()
    if location.lower().startswith("s3://"):
        return S3Store(location, s3_endpoint_url, s3_region)
    return DirStore(location)


def _folder(application: str) -> str:
    if not application:
        raise HistoryError("the history needs an application name (appspec_application_name)")
    return urllib.parse.quote(application, safe="")


# --- records ---------------------------------------------------------------------------------------


def _plain(value: t.Any) -> t.Any:
    """``value`` as plain JSON types (Ansible hands over its own str, dict and list subclasses)."""
    if isinstance(value, t.Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return str(value)


def host_results(deployment: t.Mapping[str, t.Any], hostvars: t.Mapping[str, t.Any]) -> t.Dict[str, Record]:
    """Each host's part in the deployment, from what roles/lifecycle and roles/rollback recorded for it.

    ``running``: the host runs this revision now (it succeeded and no rollback took it back).
    """
    results = {}
    for host in deployment.get("hosts") or []:
        variables = hostvars[host] if host in hostvars else {}
        mine = variables.get("lifecycle_deployment") == deployment["deployment_id"]
        status = str(variables.get("lifecycle_status")) if mine else "not_deployed"
        entry = {"status": status}  # type: Record
        if mine:
            failure = variables.get("lifecycle_failure") or {}
            if failure.get("event") or failure.get("msg"):
                entry["failure"] = {"event": failure.get("event"), "msg": failure.get("msg")}
            entry["events"] = [{"event": item.get("event"), "status": item.get("status"), "duration": item.get("duration")}
                               for item in variables.get("lifecycle_events") or []]
        rolled = (variables.get("rollback_deployment") == deployment.get("rollback_deployment_id")
                  and variables.get("rollback_deployment") is not None)
        if rolled:
            entry["rollback"] = {"status": variables.get("rollback_status"), "msg": variables.get("rollback_message")}
        entry["running"] = status == SUCCEEDED and not (rolled and variables.get("rollback_status") == SUCCEEDED)
        results[str(host)] = _plain(entry)
    return results


def make_record(deployment: t.Mapping[str, t.Any], outcome: t.Mapping[str, t.Any], hosts: t.Mapping[str, Record], *,
                started: t.Optional[float], ended: float, user: str, extra: t.Optional[t.Mapping[str, t.Any]] = None) -> Record:
    """The history record of one deployment (the ``deployment`` record and its ``outcome``)."""
    decided = outcome.get("deployment_id") == deployment["deployment_id"]
    record = {
        "schema": SCHEMA,
        "application": deployment["application_name"],
        "environment": deployment["deployment_group_name"],
        "deployment_group_id": deployment.get("deployment_group_id"),
        "deployment_id": deployment["deployment_id"],
        "revision": deployment.get("revision"),
        "revision_kind": deployment.get("revision_kind"),
        "sha256": deployment.get("sha256"),
        "bundle_env": deployment.get("bundle_env") or {},
        "deployment_config": deployment.get("deployment_config"),
        "status": FAILED if not decided or outcome.get("failed") else SUCCEEDED,
        "outcome": dict(outcome) if decided else {},
        "hosts": dict(hosts),
        "started": utc_text(started) if started else None,
        "ended": utc_text(ended),
        "who": user,
    }  # type: Record
    record.update(extra or {})
    return _plain(record)


def record_name(record: Record) -> str:
    """Sorted by name = sorted by end time."""
    stamp = str(record["ended"]).replace("-", "").replace(":", "")
    return "%s/%s/%s-%s.json" % (_folder(record["application"]), DEPLOYMENTS, stamp, record["deployment_id"])


def write_record(store: Store, record: Record) -> str:
    """Write a new record; a record is never overwritten (the same deployment id again within one second gets ``-2``)."""
    name = base = record_name(record)
    copy = 1
    while store.get(name) is not None:
        copy += 1
        name = "%s-%d.json" % (base[:-len(".json")], copy)
    store.put(name, record)
    return name


def read_records(store: Store, application: t.Optional[str] = None) -> t.List[Record]:
    """Every deployment record (of ``application``, or of all), oldest first."""
    if application:
        folders = [_folder(application)]
    else:
        folders = sorted({name.split("/", 1)[0] for name in _all_names(store)})
    records = []
    for folder in folders:
        for name in store.names("%s/%s" % (folder, DEPLOYMENTS)):
            record = store.get(name)
            if isinstance(record, dict) and record.get("deployment_id"):
                records.append(record)
    return sorted(records, key=lambda r: (str(r.get("ended")), str(r.get("deployment_id"))))


def _all_names(store: Store) -> t.List[str]:
    if isinstance(store, DirStore):
        try:
            return sorted(name + "/" for name in os.listdir(store.root) if not name.startswith("."))
        except FileNotFoundError:
            return []
        except OSError as err:
            raise HistoryError("cannot read %s: %s" % (store.root, err))
    return store.names("")


def current(records: t.Sequence[Record]) -> t.List[Record]:
    """Which revision runs where, since when, deployed by whom: per application, environment and host,
    the last deployment that left the host running its revision (records oldest first)."""
    running = {}  # type: t.Dict[t.Tuple[str, str, str], Record]
    for record in records:
        for host, result in (record.get("hosts") or {}).items():
            if result.get("running"):
                running[(record["application"], record["environment"], host)] = {
                    "application": record["application"], "environment": record["environment"], "host": host,
                    "sha256": record.get("sha256"), "revision": record.get("revision"),
                    "deployment_id": record["deployment_id"], "since": record.get("ended"), "who": record.get("who")}
    return [running[key] for key in sorted(running)]


# --- blocks and promotion --------------------------------------------------------------------------


def _sha(sha256: t.Optional[str]) -> str:
    try:
        value = normalize_sha256(sha256)
    except DeployError as err:
        raise HistoryError(str(err))
    if not value:
        raise HistoryError("a revision is named by the sha256 of its archive (appspec_revision_sha256)")
    return value


def read_blocks(store: Store, application: str) -> t.Dict[str, Record]:
    """The revisions of ``application`` blocked now, by sha256."""
    blocks = {}
    for name in store.names("%s/%s" % (_folder(application), BLOCKS)):
        block = store.get(name)
        if isinstance(block, dict) and block.get("blocked") and block.get("sha256"):
            blocks[block["sha256"]] = block
    return blocks


def set_block(store: Store, application: str, sha256: str, blocked: bool, reason: str, user: str, now: float,
              check_mode: bool = False) -> t.Tuple[bool, t.Optional[Record], Record]:
    """Block (or unblock) a revision from promotion; (changed, before, after). A block needs a reason."""
    sha = _sha(sha256)
    if blocked and not (reason or "").strip():
        raise HistoryError("blocking a revision needs a reason (appspec_block_reason): promote.yml quotes it when it refuses")
    name = "%s/%s/%s.json" % (_folder(application), BLOCKS, sha)
    before = store.get(name)
    if bool((before or {}).get("blocked")) == blocked and (not blocked or before.get("reason") == reason):  # type: ignore[union-attr]
        return False, before, before or {}
    after = {"schema": SCHEMA, "application": application, "sha256": sha, "blocked": blocked,
             "reason": reason or "", "who": user, "at": utc_text(now)}
    if not check_mode:
        store.put(name, after)
    return True, before, after


def _short(sha256: t.Optional[str]) -> str:
    return (sha256 or "?")[:12]


def check_promotion(records: t.Sequence[Record], blocks: t.Mapping[str, Record], environments: t.Sequence[str],
                    target: str, sha256: t.Optional[str] = None, application: str = "") -> Record:
    """The revision that may go to ``target``, from the history; a :class:`PromotionError` saying every reason not.

    ``sha256`` empty: the revision that last succeeded in the environment before ``target``. Returns the
    ``variables`` of ``playbooks/deploy.yml`` that deploy exactly that archive, and where it comes from.
    """
    envs = [str(env) for env in environments]
    if target not in envs:
        raise PromotionError("%s is not an environment of %s: appspec_environments is [%s]"
                             % (target, application, ", ".join(envs)), ["unknown environment %s" % target])
    index = envs.index(target)
    if index == 0:
        raise PromotionError("%s is the first environment (appspec_environments: [%s]): nothing is promoted to it; "
                             "deploy to it with playbooks/deploy.yml" % (target, ", ".join(envs)),
                             ["%s is the first environment" % target])
    previous = envs[index - 1]
    mine = [r for r in records if r.get("application") == application or not application]
    in_previous = [r for r in mine if r.get("environment") == previous]
    good = [r for r in in_previous if r.get("status") == SUCCEEDED]
    if sha256:
        sha = _sha(sha256)
    elif good:
        sha = good[-1]["sha256"]
    else:
        raise PromotionError("nothing to promote to %s: no deployment of %s has succeeded in %s yet (history: %d "
                             "deployment%s there)" % (target, application, previous, len(in_previous),
                                                      "" if len(in_previous) == 1 else "s"),
                             ["no successful deployment in %s" % previous])
    problems = []
    block = blocks.get(sha)
    if block:
        problems.append("revision %s is blocked: \"%s\" (blocked by %s at %s; unblock it with appspec_promote_action=unblock)"
                        % (_short(sha), block.get("reason"), block.get("who"), block.get("at")))
    of_sha = [r for r in in_previous if r.get("sha256") == sha]
    if not of_sha:
        last_good = ("; the last revision that succeeded there is %s (%s, %s)" % (
            _short(good[-1]["sha256"]), good[-1]["deployment_id"], good[-1].get("ended"))) if good else ""
        problems.append("revision %s was never deployed to %s, the environment before %s: it must succeed there first%s"
                        % (_short(sha), previous, target, last_good))
    elif of_sha[-1].get("status") != SUCCEEDED:
        last = of_sha[-1]
        failed = (last.get("outcome") or {}).get("failed_hosts") or []
        problems.append("the last deployment of revision %s to %s, %s (%s), failed%s: it must succeed there before %s"
                        % (_short(sha), previous, last["deployment_id"], last.get("ended"),
                           " on %s" % ", ".join(failed) if failed else "", target))
    if problems:
        raise PromotionError("Refused: revision %s of %s may not go to %s: %s." % (
            _short(sha), application, target, "; ".join(problems)), problems, sha256=sha)
    source = of_sha[-1]
    variables = {"appspec_revision": source.get("revision"), "appspec_revision_sha256": sha}
    bundle_env = source.get("bundle_env") or {}
    if source.get("revision_kind") == "s3" and bundle_env.get("BUNDLE_VERSION"):
        variables["appspec_s3_version_id"] = bundle_env["BUNDLE_VERSION"]
    if source.get("revision_kind") == "git" and bundle_env.get("BUNDLE_COMMIT"):
        variables["appspec_git_ref"] = bundle_env["BUNDLE_COMMIT"]
    return {"sha256": sha, "revision": source.get("revision"), "environment": target, "from_environment": previous,
            "from_deployment_id": source["deployment_id"], "from_ended": source.get("ended"), "variables": variables}


# --- listing ---------------------------------------------------------------------------------------


def _table(rows: t.List[t.List[str]]) -> t.List[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]


def render_text(records: t.Sequence[Record], running: t.Sequence[Record], blocks: t.Sequence[Record]) -> t.List[str]:
    """The history as lines of text: what runs where, the deployments (newest first), the blocked revisions."""
    lines = ["Running now (which revision runs where, since when, deployed by whom):"]
    if running:
        lines.extend("  " + line for line in _table(
            [["application", "environment", "host", "sha256", "deployment", "since", "by", "revision"]]
            + [[r["application"], r["environment"], r["host"], _short(r["sha256"]), r["deployment_id"], str(r["since"]),
                str(r["who"]), str(r["revision"])] for r in running]))
    else:
        lines.append("  nothing recorded")
    lines.append("Deployments (newest first):")
    if records:
        rows = [["ended", "application", "environment", "deployment", "status", "hosts ok", "sha256", "by", "revision"]]
        for r in reversed(records):
            hosts = r.get("hosts") or {}
            ok = sum(1 for result in hosts.values() if result.get("status") == SUCCEEDED)
            rows.append([str(r.get("ended")), r["application"], r["environment"], r["deployment_id"], r["status"],
                         "%d/%d" % (ok, len(hosts)), _short(r.get("sha256")), str(r.get("who")), str(r.get("revision"))])
        lines.extend("  " + line for line in _table(rows))
    else:
        lines.append("  none")
    if blocks:
        lines.append("Blocked revisions:")
        lines.extend("  " + line for line in _table([["application", "sha256", "since", "by", "reason"]] + [
            [b["application"], _short(b["sha256"]), str(b.get("at")), str(b.get("who")), str(b.get("reason"))] for b in blocks]))
    return lines


def listing(store: Store, application: t.Optional[str] = None, environment: t.Optional[str] = None,
            limit: int = 0) -> Record:
    """The history as JSON (``deployments`` newest first, ``running``, ``blocked``) and as ``text`` lines."""
    records = read_records(store, application)
    if environment:
        records = [r for r in records if r.get("environment") == environment]
    running = current(records)
    applications = [application] if application else sorted({r["application"] for r in records})
    blocked = [block for app in applications for block in read_blocks(store, app).values()]
    shown = records[-limit:] if limit else list(records)
    return {"location": store.location, "deployments": list(reversed(shown)), "running": running, "blocked": blocked,
            "text": render_text(shown, running, blocked)}


# --- the watch after a deployment (docs/pipeline.md, "Watch") ---------------------------------------


def find_record(store: Store, application: str, deployment_id: str) -> t.Optional[t.Tuple[str, Record]]:
    """The name and record of one deployment (its latest copy), None when it was never recorded."""
    found = None
    for name in store.names("%s/%s" % (_folder(application), DEPLOYMENTS)):
        if "-%s." % deployment_id in name or "-%s-" % deployment_id in name:
            record = store.get(name)
            if isinstance(record, dict) and record.get("deployment_id") == deployment_id:
                found = (name, record)
    return found


def record_watch(store: Store, application: str, deployment_id: str, watch: t.Mapping[str, t.Any],
                 rollback: t.Optional[t.Mapping[str, t.Mapping[str, t.Any]]] = None,
                 check_mode: bool = False) -> t.Optional[Record]:
    """Add the watch's ``watch`` entry (verdict, reason, rounds) to the deployment's record.

    A failed watch makes the deployment ``failed`` (promotion refuses it) and each host whose rollback
    (``rollback``: host -> ``{status, msg}``) succeeded no longer ``running`` it. This is the one change a
    record gets after it is written: the same document, rewritten whole. None when there is no record.
    """
    found = find_record(store, application, deployment_id)
    if found is None:
        return None
    name, record = found
    record = dict(record)
    record["watch"] = _plain(dict(watch))
    if watch.get("verdict") == FAILED:
        record["status"] = FAILED
        hosts = dict(record.get("hosts") or {})
        for host, result in (rollback or {}).items():
            entry = dict(hosts.get(host) or {})
            entry["rollback"] = {"status": result.get("status"), "msg": result.get("msg")}
            if result.get("status") == SUCCEEDED:
                entry["running"] = False
            hosts[str(host)] = entry
        record["hosts"] = _plain(hosts)
    if not check_mode:
        store.put(name, record)
    return record
