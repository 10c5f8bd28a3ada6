# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Load balancer backends: haproxy through its runtime API, nginx through an upstream file.

Both read the servers of one pool (name -> state, status, weight, counters) and apply a list of changes
``{"name": str, "state": "ready"|"drain"|"maint" (optional), "weight": int (optional)}`` in one order:

1. servers going to ``ready`` (weight first, then state), waiting until each is up, else everything
   changed so far is put back and :class:`DeployError` names the server and its status;
2. weight-only changes;
3. servers leaving traffic: drained together, waiting until their sessions end (up to the drain
   timeout, then carrying on and saying so), then put in maintenance when the change asks for it.

A ``maint`` change of a serving server always drains it first. Every change is validated before the
first one is made: an unknown server or bad value changes nothing. Standard library only (hosts).
"""

from __future__ import annotations

import os
import re
import shlex
import socket
import stat
import subprocess
import time
import typing as t

from ._errors import DeployError
from ._fileutil import atomic_write_text, read_text

STATES = ("ready", "drain", "maint")
POLL = 0.1

# haproxy's srv_admin_state bits (show servers state): forced/inherited/resolution/hostname maintenance and
# forced/inherited drain. The config bit (0x04, `disabled`) stays set after `state ready`: show stat's status
# says whether the server is still in maintenance.
_ADMIN_MAINT = 0x01 | 0x02 | 0x20 | 0x40
_ADMIN_DRAIN = 0x08 | 0x10
_CHECK_ENABLED = 0x04  # srv_check_state
# show stat counters returned per server (rtime and ttime: average ms over the last 1024 requests).
COUNTERS = ("scur", "stot", "hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other",
            "eresp", "econ", "rtime", "ttime", "req_tot", "lbtot")

Change = t.Dict[str, t.Any]
Server = t.Dict[str, t.Any]


class _Plan:
    """The validated changes, split into the three phases, each as (name, desired state, desired weight)."""

    def __init__(self) -> None:
        self.to_ready = []  # type: t.List[t.Tuple[str, str, t.Optional[int]]]
        self.weights = []  # type: t.List[t.Tuple[str, str, t.Optional[int]]]
        self.leaving = []  # type: t.List[t.Tuple[str, str, t.Optional[int]]]

    def all(self) -> t.List[t.Tuple[str, str, t.Optional[int]]]:
        return self.to_ready + self.weights + self.leaving


def _move(name: str, before: Server, state: str, weight: t.Optional[int]) -> t.Dict[str, t.Any]:
    return {
        "name": name,
        "from": before["state"],
        "to": state,
        "weight_from": before["weight"],
        "weight_to": before["weight"] if weight is None else weight,
    }


class _Backend:
    """What both load balancers share: validation, planning, the order of the phases, check mode."""

    kind = "load balancer"
    min_weight = 0
    max_weight = 256

    def describe(self) -> str:
        raise NotImplementedError

    def servers(self) -> t.Dict[str, Server]:
        raise NotImplementedError

    def normalize(self, change: Change) -> Change:
        return change

    def _plan(self, changes: t.Sequence[Change], current: t.Dict[str, Server]) -> _Plan:
        plan = _Plan()
        seen = set()  # type: t.Set[str]
        for raw in changes:
            if not isinstance(raw, dict) or not raw.get("name"):
                raise DeployError("%s: every change needs a server name, got %r" % (self.describe(), raw))
            change = self.normalize(dict(raw))
            name = str(change["name"])
            state = change.get("state")
            weight = change.get("weight")
            if name in seen:
                raise DeployError("%s: server %s is listed twice in the changes" % (self.describe(), name))
            seen.add(name)
            if name not in current:
                raise DeployError(
                    "%s has no server %s (it has: %s): check the server name in the inventory (appspec_lb_server)"
                    % (self.describe(), name, ", ".join(sorted(current)) or "none"),
                    server=name,
                )
            if state is not None and state not in STATES:
                raise DeployError("%s: server %s: state must be one of %s, got %r" % (self.describe(), name, ", ".join(STATES), state))
            if weight is not None:
                if isinstance(weight, bool) or not isinstance(weight, int) or not self.min_weight <= weight <= self.max_weight:
                    raise DeployError(
                        "%s: server %s: weight must be an integer from %d to %d, got %r"
                        % (self.describe(), name, self.min_weight, self.max_weight, weight)
                    )
            have = current[name]
            target_state = have["state"] if state is None else state
            if target_state == have["state"] and (weight is None or weight == have["weight"]):
                continue
            entry = (name, target_state, weight)
            if target_state == "ready" and have["state"] != "ready":
                plan.to_ready.append(entry)
            elif target_state != "ready" and target_state != have["state"]:
                plan.leaving.append(entry)
            else:
                plan.weights.append(entry)
        return plan

    def apply(self, changes: t.Sequence[Change], drain_timeout: float = 30, allow_timeout: float = 30, check_mode: bool = False) -> t.Dict[str, t.Any]:
        """Apply ``changes``; return ``{"changed", "moves", "warnings"}`` (in check mode: what would be done)."""
        current = self.servers()
        plan = self._plan(changes, current)
        moves = [_move(name, current[name], state, weight) for name, state, weight in plan.all()]
        if check_mode or not moves:
            return {"changed": bool(moves), "moves": moves, "warnings": []}
        return self._execute(plan, current, moves, drain_timeout, allow_timeout)

    def _execute(self, plan: _Plan, current: t.Dict[str, Server], moves: t.List[t.Dict[str, t.Any]],
                 drain_timeout: float, allow_timeout: float) -> t.Dict[str, t.Any]:
        raise NotImplementedError


class HAProxy(_Backend):
    """One backend of a haproxy, through the runtime API on its unix socket (``stats socket ... level admin``)."""

    kind = "haproxy"

    def __init__(self, socket_path: str, backend: str, timeout: float = 5.0) -> None:
        self.socket_path = socket_path
        self.backend = backend
        self.timeout = timeout
        self._checked = {}  # type: t.Dict[str, bool]

    def describe(self) -> str:
        return "haproxy backend %s (socket %s)" % (self.backend, self.socket_path)

    def command(self, line: str) -> str:
        """Send one runtime API command and return haproxy's answer."""
        if not os.path.exists(self.socket_path):
            raise DeployError(
                "haproxy runtime API socket %s does not exist: check that haproxy runs and its global section has "
                "`stats socket %s level admin`" % (self.socket_path, self.socket_path)
            )
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.settimeout(self.timeout)
        try:
            conn.connect(self.socket_path)
            conn.sendall(line.encode("utf-8") + b"\n")
            chunks = []
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except OSError as err:
            raise DeployError("haproxy runtime API %s: %r failed: %s (is haproxy running, and may this user use the socket?)"
                              % (self.socket_path, line, err))
        finally:
            conn.close()
        return b"".join(chunks).decode("utf-8", "replace")

    def _set(self, server: str, *what: str) -> None:
        """``set server backend/server <what>`` for each ``what``, in one connection (haproxy runs them in a row)."""
        line = "; ".join("set server %s/%s %s" % (self.backend, server, item) for item in what)
        answer = self.command(line).strip()
        if answer:
            raise DeployError("%s: `%s` answered: %s" % (self.describe(), line, answer), server=server)

    def _stat(self) -> t.Dict[str, t.Dict[str, str]]:
        answer = self.command("show stat %s 4 -1" % self.backend)
        lines = [line for line in answer.splitlines() if line.strip()]
        if not lines or not lines[0].startswith("# "):
            raise DeployError("%s: `show stat` answered: %s (check the backend name)" % (self.describe(), answer.strip() or "nothing"))
        header = lines[0][2:].split(",")
        rows = {}
        for line in lines[1:]:
            row = dict(zip(header, line.split(",")))
            if row.get("pxname") == self.backend and row.get("svname") not in ("FRONTEND", "BACKEND"):
                rows[row["svname"]] = row
        return rows

    def _admin(self) -> t.Dict[str, t.Dict[str, str]]:
        answer = self.command("show servers state %s" % self.backend)
        lines = [line for line in answer.splitlines() if line.strip()]
        header = next((line[2:].split() for line in lines if line.startswith("# ")), None)
        if header is None:
            raise DeployError("%s: `show servers state` answered: %s (check the backend name)" % (self.describe(), answer.strip() or "nothing"))
        rows = {}
        for line in lines:
            if line.startswith("#") or len(line.split()) < len(header) // 2:
                continue
            row = dict(zip(header, line.split()))
            if row.get("be_name") == self.backend:
                rows[row["srv_name"]] = row
        return rows

    def servers(self) -> t.Dict[str, Server]:
        admin = self._admin()
        stats = self._stat()
        result = {}
        for name, row in admin.items():
            bits = int(row.get("srv_admin_state", "0"))
            stat_row = stats.get(name, {})
            maint = bits & _ADMIN_MAINT or stat_row.get("status", "").startswith("MAINT")
            state = "maint" if maint else "drain" if bits & _ADMIN_DRAIN else "ready"
            self._checked[name] = bool(int(row.get("srv_check_state", "0")) & _CHECK_ENABLED)
            counters = {key: int(stat_row[key]) for key in COUNTERS if stat_row.get(key, "").lstrip("-").isdigit()}
            result[name] = {
                "name": name,
                "state": state,
                "status": stat_row.get("status", "unknown"),
                "weight": int(row.get("srv_uweight", "0")),
                "counters": counters,
            }
        return result

    def _wait_up(self, name: str, deadline: float) -> t.Tuple[bool, str]:
        while True:
            status = self._stat().get(name, {}).get("status", "unknown")
            if status.startswith("UP") or status == "no check":
                return True, status
            if time.monotonic() >= deadline:
                return False, status
            time.sleep(POLL)

    def _restore(self, before: t.Dict[str, Server], names: t.Iterable[str]) -> None:
        for name in names:
            self._set(name, "weight %d" % before[name]["weight"])
            self._set(name, "state %s" % before[name]["state"])

    def _execute(self, plan: _Plan, current: t.Dict[str, Server], moves: t.List[t.Dict[str, t.Any]],
                 drain_timeout: float, allow_timeout: float) -> t.Dict[str, t.Any]:
        warnings = []  # type: t.List[str]
        touched = []  # type: t.List[str]
        for name, dummy, weight in plan.to_ready:
            touched.append(name)
            final = current[name]["weight"] if weight is None else weight
            if current[name]["state"] == "maint" and self._checked.get(name):
                # Out of maintenance haproxy assumes the server up until its next check: take no traffic (weight 0),
                # leave maintenance marked down, so that UP means its health checks passed since.
                self._set(name, "weight 0", "state ready", "health down", "weight %d" % final)
            else:
                self._set(name, "weight %d" % final, "state ready")
        deadline = time.monotonic() + allow_timeout
        for name, dummy, weight in plan.to_ready:
            up, status = self._wait_up(name, deadline)
            if not up:
                self._restore(current, touched)
                raise DeployError(
                    "%s: server %s is %s, not UP, %ss after it was made ready: check the application on it and "
                    "haproxy's health check; %s put back as they were" % (self.describe(), name, status, allow_timeout, ", ".join(touched)),
                    server=name,
                    status=status,
                )
        for name, dummy, weight in plan.weights:
            self._set(name, "weight %d" % weight)
        by_name = {move["name"]: move for move in moves}
        for name, state, weight in plan.leaving:
            if weight is not None:
                self._set(name, "weight %d" % weight)
            if current[name]["state"] == "ready" or state == "drain":  # from maint to drain: no sessions to wait for
                self._set(name, "state drain")
        draining = [name for name, dummy, dummy2 in plan.leaving if current[name]["state"] != "maint"]
        if draining:
            start = time.monotonic()
            deadline = start + drain_timeout
            left = {}  # type: t.Dict[str, int]
            while True:
                stats = self._stat()
                left = {name: int(stats.get(name, {}).get("scur") or 0) for name in draining}
                if not any(left.values()) or time.monotonic() >= deadline:
                    break
                time.sleep(POLL)
            waited = round(time.monotonic() - start, 2)
            for name in draining:
                by_name[name].update(drain_seconds=waited, sessions_left=left[name])
                if left[name]:
                    warnings.append("%s: server %s still had %d sessions after the drain timeout (%ss); carrying on"
                                    % (self.describe(), name, left[name], drain_timeout))
        for name, state, dummy in plan.leaving:
            if state == "maint":
                self._set(name, "state maint")
        return {"changed": True, "moves": moves, "warnings": warnings}


# --- nginx -------------------------------------------------------------------------------------------

_UPSTREAM = re.compile(r"(?<![\w$])upstream\s+([^\s{;]+)\s*\{")
_SERVER = re.compile(r"(?<![\w$])server\s+([^\s;]+)([^;]*);")
_WEIGHT = re.compile(r"(?<=\s)weight=(\d+)(?=\s|$)")
_DOWN = re.compile(r"\s+down(?=\s|$)")


def _blank_comments(text: str) -> str:
    """The text with each ``# comment`` replaced by spaces (same offsets); quoted strings are kept."""
    out = []
    quote = ""
    in_comment = False
    for char in text:
        if in_comment:
            if char == "\n":
                in_comment = False
                out.append(char)
            else:
                out.append(" ")
            continue
        if quote:
            if char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char == "#":
            in_comment = True
            out.append(" ")
            continue
        out.append(char)
    return "".join(out)


class _NginxServer:
    def __init__(self, upstream: str, name: str, start: int, end: int, params: str) -> None:
        self.upstream = upstream
        self.name = name
        self.start = start  # span of the parameters (after the address, before the ';')
        self.end = end
        self.params = params

    @property
    def down(self) -> bool:
        return "down" in self.params.split()

    @property
    def weight(self) -> int:
        found = _WEIGHT.search(" " + self.params)
        return int(found.group(1)) if found else 1

    def rewrite(self, down: bool, weight: t.Optional[int]) -> str:
        params = self.params
        if weight is not None and weight != self.weight:
            if _WEIGHT.search(" " + params):
                params = _WEIGHT.sub("weight=%d" % weight, " " + params, count=1)[1:]
            else:
                params = params.rstrip() + " weight=%d" % weight + params[len(params.rstrip()):]
        if down and not self.down:
            params = params.rstrip() + " down" + params[len(params.rstrip()):]
        elif not down and self.down:
            params = _DOWN.sub("", params)
        return params


class Nginx(_Backend):
    """The ``server`` lines of the upstream block(s) in one nginx file; changes are validated by the test command
    and applied by a graceful reload. No drain of its own: ``drain`` is ``maint`` (``down``) once the old workers,
    which finish the open requests, have exited. A weight of 0 means ``down``."""

    kind = "nginx"
    min_weight = 0
    max_weight = 1000000

    def __init__(self, upstream_file: str, upstream: t.Optional[str] = None, test_command: str = "nginx -t",
                 reload_command: str = "nginx -s reload", command_timeout: float = 60) -> None:
        self.upstream_file = upstream_file
        self.upstream = upstream
        self.test_command = test_command
        self.reload_command = reload_command
        self.command_timeout = command_timeout

    def describe(self) -> str:
        return "nginx upstream %s in %s" % (self.upstream or "(any)", self.upstream_file)

    def _read(self) -> t.Tuple[str, t.List[_NginxServer]]:
        text = read_text(self.upstream_file)
        if text is None:
            raise DeployError("nginx upstream file %s does not exist: check the upstream file option "
                              "(traffic_nginx_upstream_file in the traffic role)" % self.upstream_file)
        return text, self._parse(text)

    def _parse(self, text: str) -> t.List[_NginxServer]:
        code = _blank_comments(text)
        found = []
        names = []
        for block in _UPSTREAM.finditer(code):
            depth = 1
            pos = block.end()
            while pos < len(code) and depth:
                depth += {"{": 1, "}": -1}.get(code[pos], 0)
                pos += 1
            if depth:
                raise DeployError("%s: the upstream %s block is not closed: check the file's braces" % (self.describe(), block.group(1)))
            names.append(block.group(1))
            if self.upstream is not None and block.group(1) != self.upstream:
                continue
            for server in _SERVER.finditer(code, block.end(), pos - 1):
                if text[server.start(2):server.end(2)] != server.group(2):
                    raise DeployError("%s: the server %s statement has a comment inside it: put the comment after its ';'"
                                      % (self.describe(), server.group(1)))
                found.append(_NginxServer(block.group(1), server.group(1), server.start(2), server.end(2), text[server.start(2):server.end(2)]))
        if self.upstream is not None and self.upstream not in names:
            raise DeployError("%s: no upstream %s in the file (it has: %s): check the upstream name"
                              % (self.describe(), self.upstream, ", ".join(names) or "none"))
        if not found:
            raise DeployError("%s: no `server ADDRESS ...;` line in an upstream block: check the file" % self.describe())
        return found

    def normalize(self, change: Change) -> Change:
        if change.get("state") == "drain":
            change["state"] = "maint"
        if change.get("weight") == 0:
            if change.get("state") == "ready":
                raise DeployError("%s: server %s: weight 0 on nginx means down, which contradicts state ready"
                                  % (self.describe(), change["name"]))
            change["state"] = "maint"
            del change["weight"]
        return change

    def servers(self) -> t.Dict[str, Server]:
        dummy, entries = self._read()
        result = {}  # type: t.Dict[str, Server]
        for entry in entries:
            if entry.name in result:
                result[entry.name]["upstreams"].append(entry.upstream)
                if entry.down:  # flagged down in any of its upstreams: not fully serving
                    result[entry.name].update(state="maint", status="MAINT")
                continue
            result[entry.name] = {
                "name": entry.name,
                "state": "maint" if entry.down else "ready",
                "status": "MAINT" if entry.down else "no check",
                "weight": entry.weight,
                "counters": {},
                "upstream": entry.upstream,
                "upstreams": [entry.upstream],
            }
        return result

    def _run(self, command: str, what: str) -> t.Tuple[int, str]:
        try:
            proc = subprocess.run(shlex.split(command), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  timeout=self.command_timeout, check=False)
        except (OSError, ValueError, subprocess.TimeoutExpired) as err:
            return 127, "%s: %s" % (command, err)
        return proc.returncode, proc.stdout.decode("utf-8", "replace").strip()

    def _execute(self, plan: _Plan, current: t.Dict[str, Server], moves: t.List[t.Dict[str, t.Any]],
                 drain_timeout: float, allow_timeout: float) -> t.Dict[str, t.Any]:
        text, entries = self._read()
        wanted = {name: (state, weight) for name, state, weight in plan.all()}
        new = text
        for entry in sorted(entries, key=lambda e: e.start, reverse=True):
            if entry.name in wanted:
                state, weight = wanted[entry.name]
                new = new[:entry.start] + entry.rewrite(state != "ready", weight) + new[entry.end:]
        st = os.stat(self.upstream_file)
        self._write(new, st)
        code, output = self._run(self.test_command, "test")
        if code != 0:
            self._write(text, st)
            raise DeployError("%s: `%s` rejected the changed file, which was put back and nginx was not reloaded: %s"
                              % (self.describe(), self.test_command, output), test_output=output)
        workers = _nginx_workers()
        code, output = self._run(self.reload_command, "reload")
        if code != 0:
            self._write(text, st)
            raise DeployError("%s: `%s` failed (the file was put back): %s" % (self.describe(), self.reload_command, output))
        warnings = []
        if plan.leaving:
            start = time.monotonic()
            left = _wait_old_workers(workers, start + drain_timeout)
            waited = round(time.monotonic() - start, 2)
            for move in moves:
                if move["to"] != "ready" and move["from"] == "ready":
                    move.update(drain_seconds=waited, sessions_left=None, old_workers_left=left)
            if left:
                warnings.append("%s: %d old nginx workers were still finishing requests after the drain timeout (%ss); carrying on"
                                % (self.describe(), left, drain_timeout))
        return {"changed": True, "moves": moves, "warnings": warnings}

    def _write(self, text: str, st: os.stat_result) -> None:
        atomic_write_text(self.upstream_file, text, mode=stat.S_IMODE(st.st_mode))
        if os.geteuid() == 0 and (st.st_uid, st.st_gid) != (0, 0):
            os.chown(self.upstream_file, st.st_uid, st.st_gid)


def _proc_title(pid: int) -> t.Optional[str]:
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except OSError:
        return None


def _proc_ppid(pid: int) -> int:
    try:
        with open("/proc/%d/stat" % pid) as handle:
            return int(handle.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def _nginx_workers() -> t.Dict[int, int]:
    """Running nginx worker processes: pid -> pid of their master."""
    workers = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            title = _proc_title(int(entry))
            if title and title.startswith("nginx: worker process"):
                workers[int(entry)] = _proc_ppid(int(entry))
    return workers


def _wait_old_workers(before: t.Dict[int, int], deadline: float) -> int:
    """Wait until the reloaded masters' old workers have exited; return how many are left at the deadline.

    A master counts as reloaded once it has a worker that was not there before, or one of its old workers
    is shutting down (the reload signal is asynchronous); masters of other nginx instances are left alone.
    """
    reloaded = set()  # type: t.Set[int]
    while True:
        now = _nginx_workers()
        for pid, master in now.items():
            if pid not in before or "shutting down" in (_proc_title(pid) or ""):
                reloaded.add(master)
        masters = set(before.values())
        left = [pid for pid, master in before.items() if master in reloaded and pid in now]
        if (reloaded or not masters) and not left:
            return 0
        if time.monotonic() >= deadline:
            return len(left)
        time.sleep(POLL)
