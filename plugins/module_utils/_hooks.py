# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run the lifecycle-event hooks of a CodeDeploy revision, as the agent would, without its hangs.

Two layers:

* :func:`run_process` runs ONE command: its own session and process group, stdin ``/dev/null``,
  stdout/stderr streamed line by line into a callback, a deadline after which every process of the
  hook gets SIGTERM, then SIGKILL after a grace period, until none is left. Its processes are found
  by ancestry, recorded as they appear (:class:`ProcessTree`: parent pid chains read from /proc,
  this process as child subreaper so double-forked orphans come back to us), plus its process group
  and session; the per-script environment token is only an extra (``env -i`` drops it). When the command exits, what is in
  its pipes is drained and the pipes are handed to a tiny detached drainer: a daemon it started
  keeps running, never blocks the hook and never gets SIGPIPE. Should this process die while the hook
  runs (a hook may ``kill -9 $PPID``), the hook's main process dies with it (``PR_SET_PDEATHSIG``) and a
  :class:`Watchdog` (one per runner process) kills the rest at once.
* :func:`run_events` runs the scripts of several lifecycle events in order (plan everything first:
  revisions, appspecs, scripts, users; then run; stop at the first failure), logs to the
  deployment's ``logs/scripts.log`` in the agent's format (bounded: ``SCRIPT_LOG_LIMIT`` per script,
  ``SCRIPTS_LOG_LIMIT`` per file) and returns per-event/per-script results.
  Reserved events (``Install``) and steps after an event (switching ``current``) are callables
  supplied by the caller, so this file knows nothing about installing files.

Python API used by ``plugins/modules/lifecycle_event.py``::

    ctx = EventContext(root=DeploymentRoot(root_dir), deployment_id=..., application_name=...,
                       deployment_group_name=..., deployment_group_id=..., bundle_env={...})
    result = run_events(ctx, ["BeforeInstall", "Install", "AfterInstall"],
                        reserved_handlers={"Install": install_callable},
                        after_event_handlers={"AfterInstall": switch_callable})
    # -> {"changed", "events": [...], "failed_event", "warnings"}; raises HookError on failure
"""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import os
import pwd
import select
import signal
import subprocess
import time
import typing as t
import uuid

from ansible_collections.appspec.deploy.plugins.module_utils._errors import DeployError
from ansible_collections.appspec.deploy.plugins.module_utils._host_state import LAST_SUCCESSFUL_INSTALL, GroupState
from ansible_collections.appspec.deploy.plugins.module_utils._layout import DeploymentRoot

from ansible_collections.appspec.deploy.plugins.module_utils._spec import (
    IN_PLACE_EVENTS,
    LAST_SUCCESSFUL_EVENTS,
    RESERVED_EVENTS,
    ParsedAppSpec,
    deployment_dir_of,
    read_appspec_json,
    require_appspec_json,
)

STANDARD_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
DEFAULT_OUTPUT_TAIL_BYTES = 4096
DEFAULT_KILL_GRACE = 10.0
DEFAULT_SCRIPT_TIMEOUT = 3600
# What one deployment's scripts.log may receive (timestamps and prefixes included): one script's output at
# most SCRIPT_LOG_LIMIT, the whole file at most SCRIPTS_LOG_LIMIT (plus a few [runner] lines). Past a cap the
# output is still read (the hook never blocks on a full pipe) and kept in the result's output tail, but not
# logged: one [runner] line says how much was dropped. The agent logs everything; a hook flooding output
# for its timeout then fills the host's disk (hundreds of MB in 5 s).
SCRIPT_LOG_LIMIT = 4 * 1024 * 1024
SCRIPTS_LOG_LIMIT = 16 * 1024 * 1024
# Each script's processes carry this variable (a fresh uuid per script): one more way to find them on
# timeout, besides their ancestry (a script can drop it with ``env -i``; it cannot drop its parent).
TOKEN_VARIABLE = "APPSPEC_DEPLOY_HOOK_TOKEN"

_READ_SIZE = 65536
_MAX_PARTIAL_LINE = 65536  # a line longer than this is logged in pieces: memory stays bounded
_DRAIN_LIMIT = 4 * 1024 * 1024  # after exit, read at most this much from a pipe before detaching
_POLL_INTERVAL = 0.05
_SCAN_INTERVAL = 0.1  # how often /proc is read for the hook's new processes

Handler = t.Callable[["EventContext"], t.Dict[str, t.Any]]


class AppSpecNeeded(DeployError):
    """A revision to run has no normalized AppSpec here (the CodeDeploy agent deployed it).

    Raised before anything runs; the lifecycle_event action plugin reads that revision's YAML
    AppSpec from the host, parses it on the controller and calls the module again with the option
    ``details["appspec_needed"]["option"]`` names: ``previous_appspec`` (the last successful
    revision) or ``appspec`` (the revision a rollback goes back to).
    """


class HookError(DeployError):
    """A lifecycle event failed; ``details`` carry ``events`` and ``failed_event`` for fail_json."""


# --------------------------------------------------------------------------------------------
# Users and commands


@dataclasses.dataclass
class UserInfo:
    name: str
    uid: int
    gid: int
    home: str
    shell: str
    groups: t.List[int]


def lookup_user(name: str) -> UserInfo:
    """The account ``runas`` names, with its supplementary groups; DeployError when unknown."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise DeployError("runas user %r does not exist on this host" % name)
    try:
        groups = os.getgrouplist(entry.pw_name, entry.pw_gid)
    except OSError:  # pragma: no cover - NSS trouble
        groups = [entry.pw_gid]
    return UserInfo(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir or "/", entry.pw_shell or "/bin/sh", list(groups))


def _switch_user(user: UserInfo) -> t.Callable[[], None]:
    """preexec_fn for ``runas`` as root: groups, gid, uid; no password, no terminal, no PAM."""

    def switch() -> None:  # pragma: no cover - runs in the child between fork and exec
        os.setgroups(user.groups)
        os.setgid(user.gid)
        os.setuid(user.uid)

    return switch


def _interpreter_prefix(path: str) -> t.List[str]:
    """``/bin/sh`` for a script with neither ``#!`` nor an ELF header (execve would say ENOEXEC;
    the agent's Ruby spawn falls back to /bin/sh the same way)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
    except OSError:
        return []
    if head.startswith(b"#!") or head == b"\x7fELF":
        return []
    return ["/bin/sh"]


def _shebang_problem(path: str) -> t.Optional[str]:
    """Why a script with a shebang could not be started, when we can tell."""
    try:
        with open(path, "rb") as handle:
            first = handle.readline(512)
    except OSError:
        return None
    if not first.startswith(b"#!"):
        return None
    if first.rstrip(b"\n").endswith(b"\r"):
        return "its first line ends with CRLF (\\r\\n): convert the script to LF line endings"
    interpreter = first[2:].strip().split(b" ")[0].decode("utf-8", "replace")
    if interpreter and not os.path.exists(interpreter):
        return "its interpreter %s does not exist on this host" % interpreter
    return None


def ensure_executable(path: str) -> bool:
    """Give the script its run bits (a+x) as the agent does; True when the mode was changed."""
    mode = os.stat(path).st_mode
    if mode & 0o111 == 0o111:
        return False
    os.chmod(path, (mode | 0o111) & 0o7777)
    return True


# --------------------------------------------------------------------------------------------
# Environment


def sane_path(inherited: t.Optional[str]) -> str:
    """The inherited PATH, with the standard directories (sbin included) appended when missing."""
    parts = [p for p in (inherited or "").split(":") if p]
    for directory in STANDARD_PATH:
        if directory not in parts:
            parts.append(directory)
    return ":".join(parts)


def base_environment(source: t.Optional[t.Mapping[str, str]] = None) -> t.Dict[str, str]:
    """What a script inherits: our own environment (as the agent's scripts inherit the agent's)
    minus Ansible/Python internals that would confuse a script's own Python, with a sane PATH."""
    env = dict(os.environ if source is None else source)
    for key in list(env):
        if key.startswith(("ANSIBLE_", "_ANSIBLE")) or key in ("PYTHONPATH", "PYTHONHOME", TOKEN_VARIABLE):
            del env[key]
    env["PATH"] = sane_path(env.get("PATH"))
    return env


# --------------------------------------------------------------------------------------------
# Logs


def _stamp() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S")


class ScriptsLog:
    """``<deployment>/logs/scripts.log`` in the agent's format, written as output arrives.

    ``2024-05-01 12:00:00 LifecycleEvent - ApplicationStart``, ``... Script - scripts/start.sh``,
    ``... [stdout]line``, ``... [stderr]line``; plus our ``... [runner]`` lines (exit code,
    duration, timeout, kills). Lines are written in bytes, exactly as the script wrote them.

    Bounded: script output is written only while the file is under ``limit`` bytes (its size when opened
    counts: every module run of a deployment appends to the same file); ``[runner]`` lines always are.
    """

    def __init__(self, path: t.Optional[str], limit: int = SCRIPTS_LOG_LIMIT) -> None:
        self.path = path
        self.limit = limit
        self.size = 0  # bytes in the file (once opened)
        self._handle = None  # type: t.Optional[t.BinaryIO]

    def _file(self) -> t.Optional[t.BinaryIO]:
        if self.path is None:
            return None
        if self._handle is None:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            self._handle = open(self.path, "ab")
            self.size = os.fstat(self._handle.fileno()).st_size
        return self._handle

    def room(self) -> int:
        """Bytes of script output the file may still receive (unbounded when nothing is written)."""
        if self.path is None:
            return 1 << 62
        self._file()
        return max(0, self.limit - self.size)

    def _write(self, handle: t.BinaryIO, data: bytes) -> None:
        handle.write(data)
        handle.flush()
        self.size += len(data)

    def line(self, text: str) -> None:
        handle = self._file()
        if handle is not None:
            self._write(handle, ("%s %s\n" % (_stamp(), text)).encode("utf-8", "replace"))

    def output(self, stream: str, lines: t.List[bytes], room: t.Optional[int] = None) -> int:
        """Write ``lines`` (each with its ``\\n``, or a piece of a longer line without) as ``[stream]`` lines,
        whole lines only, while they fit in ``room`` bytes of the file (all when None); returns how many."""
        handle = self._file()
        if handle is None or not lines:
            return len(lines)
        prefix = ("%s [%s]" % (_stamp(), stream)).encode("ascii")
        records = [prefix + line if line.endswith(b"\n") else prefix + line + b"\n" for line in lines]
        count = len(records)
        if room is not None and sum(map(len, records)) > room:
            total = 0
            for index, record in enumerate(records):
                total += len(record)
                if total > room:
                    count = index
                    break
        if count:
            self._write(handle, b"".join(records[:count]))
        return count

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def append_deployments_log(root: DeploymentRoot, deployment_id: str, message: str) -> None:
    """One line in ``<root_dir>/deployment-logs/codedeploy-agent-deployments.log`` (agent format:
    ``[YYYY-MM-DD HH:MM:SS.mmm] [<deployment id>]<message>``)."""
    now = time.time()
    stamp = "%s.%03d" % (time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now)), int(now * 1000) % 1000)
    os.makedirs(root.deployment_logs_dir, exist_ok=True)
    path = os.path.join(root.deployment_logs_dir, "codedeploy-agent-deployments.log")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, ("[%s] [%s]%s\n" % (stamp, deployment_id, message)).encode("utf-8", "replace"))
    finally:
        os.close(fd)


class _LineSplitter:
    """Bytes in, whole lines out (each with its ``\\n``); a partial line never grows beyond ``_MAX_PARTIAL_LINE``
    (longer lines come out in pieces, without ``\\n``)."""

    def __init__(self) -> None:
        self.partial = b""

    def feed(self, data: bytes) -> t.List[bytes]:
        data = self.partial + data
        end = data.rfind(b"\n") + 1
        lines = [line + b"\n" for line in data[:end].split(b"\n")[:-1]] if end else []
        self.partial = data[end:]
        while len(self.partial) > _MAX_PARTIAL_LINE:
            lines.append(self.partial[:_MAX_PARTIAL_LINE])
            self.partial = self.partial[_MAX_PARTIAL_LINE:]
        return lines

    def flush(self) -> t.List[bytes]:
        rest, self.partial = self.partial, b""
        return [rest] if rest else []


class _ScriptOutput:
    """One script's output: all of it to the result's tail, to scripts.log up to ``limit`` bytes of the
    log (and the log's own cap). Past a cap the rest is only counted (and still read: the script never
    blocks on a full pipe), and one ``[runner]`` line says so at once; :meth:`finish` says how much."""

    def __init__(self, log: ScriptsLog, tail: _Tail, limit: int = SCRIPT_LOG_LIMIT) -> None:
        self.log = log
        self.tail = tail
        self.limit = limit
        self.logged = 0  # bytes of the log this script's output took
        self.received = 0  # bytes the script wrote
        self.written = 0  # of those, the bytes in scripts.log
        self.capped = False
        self.splitters = {"stdout": _LineSplitter(), "stderr": _LineSplitter()}

    def feed(self, stream: str, data: bytes) -> None:
        self.tail.add(data)
        self.received += len(data)
        if not self.capped:
            self._log(stream, self.splitters[stream].feed(data))

    def _log(self, stream: str, lines: t.List[bytes]) -> None:
        if not lines:
            return
        before = self.log.size
        own_room, log_room = self.limit - self.logged, self.log.room()
        count = self.log.output(stream, lines, min(own_room, log_room))
        self.logged += self.log.size - before
        self.written += sum(map(len, lines[:count]))
        if count < len(lines):
            self.capped = True
            for splitter in self.splitters.values():
                splitter.partial = b""
            what = "this script's cap of %d bytes" % self.limit if own_room <= log_room \
                else "the cap of %d bytes of this deployment's scripts.log" % self.log.limit
            self.log.line("[runner]output reached %s: the rest is not logged here (its last bytes are in the "
                          "result's output_tail)" % what)

    def finish(self) -> int:
        """Log what is left of a last line; return the bytes of output that were not logged."""
        if not self.capped:
            for stream, splitter in self.splitters.items():
                self._log(stream, splitter.flush())
        dropped = self.received - self.written
        if dropped:
            self.log.line("[runner]%d bytes of output were not logged (%d logged): scripts.log keeps at most %d bytes "
                          "per script and %d per deployment; the last %d bytes are in the result's output_tail"
                          % (dropped, self.written, self.limit, self.log.limit, self.tail.limit))
        return dropped


class _Tail:
    """The last ``limit`` bytes of a script's combined output, shown from a line start."""

    def __init__(self, limit: int) -> None:
        self.limit = max(0, limit)
        self.buffer = bytearray()
        self.cut_mid_line = False  # the bytes dropped so far did not end with a newline

    def add(self, data: bytes) -> None:
        if not data:
            return
        if not self.limit:
            return
        if len(data) >= self.limit:
            self.cut_mid_line = data[-self.limit - 1:-self.limit] not in (b"\n", b"")
            self.buffer = bytearray(data[-self.limit:])
            return
        self.buffer += data
        excess = len(self.buffer) - self.limit
        if excess > 0:
            self.cut_mid_line = self.buffer[excess - 1:excess] != b"\n"
            del self.buffer[:excess]

    def text(self) -> str:
        data = bytes(self.buffer)
        if self.cut_mid_line:
            cut = data.find(b"\n")
            if 0 <= cut < len(data) - 1:
                data = data[cut + 1:]  # start on a whole line
        return data.decode("utf-8", "replace")


# --------------------------------------------------------------------------------------------
# Processes


def _proc_stat(pid: int) -> t.Optional[t.Tuple[str, int, int, int, int]]:
    """(state, parent, process group, session, start time in clock ticks since boot) of a process,
    None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2:].split()
    try:
        return fields[0].decode(), int(fields[1]), int(fields[2]), int(fields[3]), int(fields[19])
    except (IndexError, ValueError):  # pragma: no cover - malformed /proc
        return None


def _has_token(pid: int, token: bytes) -> bool:
    try:
        with open("/proc/%d/environ" % pid, "rb") as handle:
            return token in handle.read().split(b"\0")
    except OSError:
        return False


_PR_SET_CHILD_SUBREAPER = 36
_PR_GET_CHILD_SUBREAPER = 37


def _prctl() -> t.Optional[t.Callable[..., int]]:
    try:
        import ctypes  # a host's Python may lack it (no libffi): the /proc scan alone then

        libc = ctypes.CDLL(None, use_errno=True)
        return t.cast(t.Callable[..., int], libc.prctl)
    except (ImportError, OSError, AttributeError):  # pragma: no cover - depends on the host's Python
        return None


def set_subreaper(on: bool) -> t.Optional[bool]:
    """Make this process the child subreaper (Linux 3.4+): an orphan among the hook's descendants (a
    double-forked daemon) is re-parented to us, not to init, so its ancestry still leads here.
    Returns the previous setting, None when it cannot be set."""
    prctl = _prctl()
    if prctl is None:  # pragma: no cover - depends on the host's Python
        return None
    try:
        import ctypes

        previous = ctypes.c_int(0)
        if prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(previous), 0, 0, 0) != 0:
            return None
        if prctl(_PR_SET_CHILD_SUBREAPER, 1 if on else 0, 0, 0, 0) != 0:
            return None
        return bool(previous.value)
    except (ImportError, OSError, TypeError, ValueError):  # pragma: no cover - depends on the host's Python
        return None


def _children_of_this_process(but: int) -> t.Dict[int, int]:
    """{pid: start time} of this process's living children but ``but`` (``/proc/self/task/*/children``, Linux
    3.5+; empty where it cannot be read)."""
    found = {}  # type: t.Dict[int, int]
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:  # pragma: no cover - no /proc
        return found
    for task in tasks:
        try:
            with open("/proc/self/task/%s/children" % task, "rb") as handle:
                pids = [int(pid) for pid in handle.read().split()]
        except (OSError, ValueError):
            continue
        for pid in pids:
            stat = _proc_stat(pid) if pid != but else None
            if stat is not None:
                found[pid] = stat[4]
    return found


class ProcessTree:
    """Every process a hook started, whatever it did to escape: found by ancestry, not by what it carries.

    Each :meth:`scan` reads ``/proc`` once and records (pid, start time) of every process whose parent
    is the hook or a process recorded before, so a process stays known after its parent dies and it is
    re-parented (``setsid``, double fork, ``env -i``). Also members: the hook's process group and session
    (the hook is their leader), processes carrying the hook's token, and, while this process is the
    child subreaper, orphans re-parented to us that started after the hook and were not our children
    before it (a daemon an earlier hook left running, adopted by us, may have started in the same clock
    tick). A pid is matched with its start time, so a recycled pid is never taken for the hook's.
    """

    def __init__(self, root_pid: int, token: t.Optional[str] = None, adopts_orphans: bool = False,
                 started: t.Optional[int] = None) -> None:
        self.root = root_pid
        self.me = os.getpid()
        self.needle = ("%s=%s" % (TOKEN_VARIABLE, token)).encode() if token else None
        self.adopts_orphans = adopts_orphans
        if started is None:
            stat = _proc_stat(root_pid)
            started = stat[4] if stat is not None else 0
        self.started = started
        self.known = {root_pid: self.started}  # type: t.Dict[int, int]
        # Our children when the hook started: not its orphans (it cannot have made one yet).
        self.earlier = _children_of_this_process(root_pid) if adopts_orphans else {}

    def scan(self) -> t.List[int]:
        """Record the hook's new processes; return the living ones (zombies are dead: not counted)."""
        table = {}  # type: t.Dict[int, t.Tuple[str, int, int, int, int]]
        for name in os.listdir("/proc"):
            if name.isdigit():
                pid = int(name)
                if pid != self.me:
                    stat = _proc_stat(pid)
                    if stat is not None:
                        table[pid] = stat
        living = []
        # Parents start before their children: one pass in start order follows every chain.
        for pid, stat in sorted(table.items(), key=lambda item: (item[1][4], item[0])):
            state, ppid, pgid, sid, started = stat
            member = self.known.get(pid) == started
            if not member:
                parent = table.get(ppid)
                member = (
                    (parent is not None and self.known.get(ppid) == parent[4])
                    or pgid == self.root or sid == self.root
                    or (self.adopts_orphans and ppid == self.me and started >= self.started
                        and self.earlier.get(pid) != started)
                    or (self.needle is not None and _has_token(pid, self.needle))
                )
                if member:
                    self.known[pid] = started
            if member and state not in ("Z", "X"):
                living.append(pid)
        return living

    def reap(self) -> None:
        """Collect the exit status of the hook's processes re-parented to us (no zombies left behind)."""
        for pid in self.known:
            if pid == self.root:
                continue
            try:
                os.waitpid(pid, os.WNOHANG)
            except OSError:
                pass


def find_group_processes(pgid: int, token: t.Optional[str] = None) -> t.List[int]:
    """Living processes of the script whose leader is ``pgid``: see :class:`ProcessTree` (one scan)."""
    return ProcessTree(pgid, token).scan()


def _signal_all(pgid: int, pids: t.Iterable[int], sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except OSError:
        pass
    for pid in pids:
        try:
            os.kill(pid, sig)
        except OSError:
            pass


def _set_nonblocking(fd: int) -> None:
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_NONBLOCK)


def _detach_pipes(fds: t.List[int]) -> None:
    """Hand pipes still held open by a survivor (a daemon the script started) to a detached drainer
    that reads and discards until the survivor closes them. The survivor never blocks on a full pipe
    and never gets SIGPIPE; we do not wait. Double fork: nothing to reap, nothing inherited."""
    if not fds:
        return
    try:
        pid = os.fork()
    except OSError:  # pragma: no cover - out of processes: closing is the fallback
        pid = -1
    if pid == 0:  # pragma: no cover - child processes (coverage does not follow them)
        try:
            if os.fork() == 0:
                os.setsid()
                signal.signal(signal.SIGPIPE, signal.SIG_DFL)
                devnull = os.open(os.devnull, os.O_RDWR)
                for target in (0, 1, 2):
                    os.dup2(devnull, target)
                keep = set(fds) | {0, 1, 2}
                for name in os.listdir("/proc/self/fd"):
                    fd = int(name)
                    if fd not in keep:
                        try:
                            os.close(fd)
                        except OSError:
                            pass
                open_fds = list(fds)
                for fd in open_fds:
                    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
                while open_fds:
                    ready = select.select(open_fds, [], [])[0]
                    for fd in ready:
                        if not os.read(fd, _READ_SIZE):
                            open_fds.remove(fd)
        finally:
            os._exit(0)
    if pid > 0:
        os.waitpid(pid, 0)
    for fd in fds:
        os.close(fd)


_PR_SET_PDEATHSIG = 1


def _die_with_parent(then: t.Optional[t.Callable[[], None]]) -> t.Optional[t.Callable[[], None]]:
    """preexec_fn: ``then`` (the user switch), then SIGKILL to the hook's main process when its runner dies
    (prctl PR_SET_PDEATHSIG, Linux; it must come after the switch: a change of uid clears it). None where
    prctl cannot be called: the watchdog alone then."""
    prctl = _prctl()
    if prctl is None:  # pragma: no cover - depends on the host's Python
        return then
    parent = os.getpid()

    def preexec() -> None:  # pragma: no cover - runs in the child between fork and exec
        if then is not None:
            then()
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent:  # the runner died before the line above: nobody would ever stop us
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec


class Watchdog:
    """A supervisor that outlives the runner: if the process running a hook dies (``kill -9`` of the module,
    by the hook itself or anyone), the hook's processes are killed at once; otherwise it does nothing.

    One per runner process (:func:`watchdog`), forked (twice: init adopts it, not us) before the first hook
    starts and before this process becomes the child subreaper, in a session of its own, holding nothing of
    ours but the read end of a pipe. For each hook the runner writes to it the hook's pid, start time, kill
    grace and token, then each process of the hook as :class:`ProcessTree` finds it, then ``end``. The end of
    the pipe (the runner is gone) while a hook is not ended: the watchdog scans once more (the pids it was
    told, their descendants, the hook's process group and session, its token) and kills them as a timeout
    does (SIGTERM, SIGKILL after the grace period). The end of the pipe otherwise: it exits. A hook can still
    escape by killing the watchdog first (it runs as the runner's user, root usually) and then its runner.
    """

    def __init__(self) -> None:
        self.fd = -1
        self.owner = os.getpid()
        self.sent = {}  # type: t.Dict[int, int]
        try:
            read_end, write_end = os.pipe()
        except OSError:  # pragma: no cover - out of file descriptors: no watchdog
            return
        try:
            pid = os.fork()
        except OSError:  # pragma: no cover - out of processes: no watchdog
            os.close(read_end)
            os.close(write_end)
            return
        if pid == 0:  # pragma: no cover - child processes (coverage does not follow them)
            try:
                os.close(write_end)
                if os.fork() == 0:
                    _watch(read_end)
            finally:
                os._exit(0)
        os.close(read_end)
        os.waitpid(pid, 0)
        self.fd = write_end
        _set_nonblocking(write_end)

    @property
    def usable(self) -> bool:
        return self.fd >= 0 and self.owner == os.getpid()

    def _send(self, text: str, wait: float = 0.0) -> None:
        if not self.usable:
            return
        data = text.encode()
        end = time.monotonic() + wait
        while data:
            try:
                data = data[os.write(self.fd, data):]
            except BlockingIOError:  # it lags: a pid it misses is still found by ancestry, group, session, token
                if time.monotonic() >= end:
                    return
                time.sleep(0.01)
            except OSError:  # it is gone (killed): the next hook gets a new one
                self.close()
                return

    def watch(self, tree: "ProcessTree", token: t.Optional[str], kill_grace: float) -> None:
        """A hook started: its main process is ``tree.root``."""
        self.sent = {tree.root: tree.started}
        self._send("hook %d %d %r %s\n" % (tree.root, tree.started, float(kill_grace), token or "-"))
        self.tell(tree)

    def tell(self, tree: "ProcessTree") -> None:
        """Send the processes of the hook found since last time."""
        new = ["pid %d %d\n" % (pid, started) for pid, started in tree.known.items() if self.sent.get(pid) != started]
        if new and self.usable:
            self.sent.update(tree.known)
            self._send("".join(new))

    def release(self) -> None:
        """The runner is done with the hook (whatever is left running is meant to be)."""
        self._send("end\n", wait=1.0)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


_WATCHDOG = {}  # type: t.Dict[str, Watchdog]


def watchdog() -> Watchdog:
    """This process's watchdog, forked when first needed (again if it was killed, or in a forked child)."""
    current = _WATCHDOG.get("current")
    if current is None or not current.usable:
        if current is not None and current.owner != os.getpid():
            current.close()  # our copy of the parent's pipe: its watchdog must see the parent's death
        current = _WATCHDOG["current"] = Watchdog()
    return current


def _watch(fd: int) -> None:  # pragma: no cover - runs in the watchdog process
    """The watchdog's life (see :class:`Watchdog`)."""
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDWR)
    for target in (0, 1, 2):
        os.dup2(devnull, target)
    for name in os.listdir("/proc/self/fd"):
        if int(name) not in (0, 1, 2, fd):
            try:
                os.close(int(name))
            except OSError:
                pass
    tree = None  # type: t.Optional[ProcessTree]
    grace = DEFAULT_KILL_GRACE
    pending = b""
    while True:
        try:
            data = os.read(fd, 65536)
        except InterruptedError:
            continue
        except OSError:
            data = b""
        if not data:
            break
        lines = (pending + data).split(b"\n")
        pending = lines.pop()
        for line in lines:
            words = line.decode("ascii", "replace").split()
            if words[:1] == ["end"]:
                tree = None
            elif words[:1] == ["hook"] and len(words) == 5:
                tree = ProcessTree(int(words[1]), None if words[4] == "-" else words[4], started=int(words[2]))
                grace = float(words[3])
            elif words[:1] == ["pid"] and len(words) == 3 and tree is not None:
                tree.known[int(words[1])] = int(words[2])
    if tree is not None:
        _kill_all(tree.root, tree, grace, lambda: None)


@dataclasses.dataclass
class ProcessOutcome:
    exit_code: t.Optional[int]  # shell convention: 128 + N when killed by signal N
    signal: t.Optional[int]
    timed_out: bool
    duration: float
    killed: t.List[int]  # pids that had to be signalled after the timeout
    left_running: bool  # something still held stdout/stderr after a clean exit (detached)


def run_process(
    argv: t.List[str],
    *,
    env: t.Mapping[str, str],
    cwd: t.Optional[str],
    timeout: float,
    on_output: t.Callable[[str, bytes], None],
    preexec_fn: t.Optional[t.Callable[[], None]] = None,
    kill_grace: float = DEFAULT_KILL_GRACE,
    token: t.Optional[str] = None,
) -> ProcessOutcome:
    """Run ``argv`` in a new session; stream output to ``on_output(stream, data)``.

    Its processes are tracked by ancestry while it runs (:class:`ProcessTree`); on timeout every one
    of them is killed, wherever it went.

    Raises OSError when the command cannot be started (missing interpreter...).
    """
    start = time.monotonic()
    # Should this process die (the hook may kill it), the watchdog kills the hook's processes. Forked (when
    # first needed) before we are the subreaper: it must not be re-parented to us.
    guard = watchdog()
    # While the hook runs, its orphans (a double-forked daemon) are re-parented to us, not to init.
    was_subreaper = set_subreaper(True)
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=dict(env),
            start_new_session=True,
            preexec_fn=_die_with_parent(preexec_fn),
            close_fds=True,
        )
    except BaseException:
        if was_subreaper is False:
            set_subreaper(False)
        raise
    tree = ProcessTree(proc.pid, token, adopts_orphans=was_subreaper is not None)
    guard.watch(tree, token, kill_grace)
    if proc.stdout is None or proc.stderr is None:  # pragma: no cover - PIPE always gives both
        raise DeployError("could not capture the output of %s" % argv[0])
    # Raw fds from here on: the file objects must not close them behind our back.
    streams = {os.dup(proc.stdout.fileno()): "stdout", os.dup(proc.stderr.fileno()): "stderr"}
    proc.stdout.close()
    proc.stderr.close()
    proc.stdout = proc.stderr = None
    for fd in streams:
        _set_nonblocking(fd)
    pidfd = -1
    if hasattr(os, "pidfd_open"):
        try:
            pidfd = os.pidfd_open(proc.pid)  # wakes us the moment the script exits (Python 3.9+)
        except OSError:
            pidfd = -1
    poller = select.poll()
    for fd in streams:
        poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
    if pidfd >= 0:
        poller.register(pidfd, select.POLLIN)
    deadline = start + timeout
    open_fds = set(streams)
    timed_out = False
    killed = []  # type: t.List[int]
    next_scan = 0.0

    def read_ready(fd: int, limit: int = _READ_SIZE) -> int:
        """Read what is there now; -1 at EOF, else the number of bytes read."""
        total = 0
        while total < limit:
            try:
                data = os.read(fd, _READ_SIZE)
            except BlockingIOError:
                return total
            except OSError as err:  # pragma: no cover - EIO and friends: treat as closed
                if err.errno == errno.EINTR:
                    continue
                data = b""
            if not data:
                poller.unregister(fd)
                open_fds.discard(fd)
                os.close(fd)
                return -1
            on_output(streams[fd], data)
            total += len(data)
        return total

    try:
        while True:
            if proc.poll() is not None:
                break
            now = time.monotonic()
            if now >= deadline:
                timed_out = True
                break
            if now >= next_scan:  # record the hook's processes as they appear, before they can hide
                tree.scan()
                guard.tell(tree)
                next_scan = now + _SCAN_INTERVAL
            wait = min(deadline, next_scan) - now
            if not open_fds:  # both pipes closed: only the exit is left to wait for
                try:
                    proc.wait(timeout=max(wait, 0.001))
                except subprocess.TimeoutExpired:
                    pass
                continue
            if pidfd < 0:
                wait = min(wait, _POLL_INTERVAL)
            for fd, _events in poller.poll(max(0, int(wait * 1000)) + 1):
                if fd in open_fds:
                    read_ready(fd)
                elif fd == pidfd and proc.poll() is None:  # pragma: no cover - race
                    time.sleep(0.001)
        if timed_out:
            killed = _terminate(proc, tree, kill_grace, lambda: [read_ready(fd) for fd in list(open_fds)], guard)
        # Drain what the script left in its pipes, then detach: a survivor holding them (a daemon it
        # started) must neither delay the hook nor be killed by SIGPIPE.
        for fd in list(open_fds):
            read_ready(fd, _DRAIN_LIMIT)
        left_running = bool(open_fds)
        if was_subreaper is False:  # before the drainer is forked: it must not be re-parented to us
            set_subreaper(False)
            was_subreaper = None
        if not timed_out and open_fds:
            _detach_pipes(sorted(open_fds))
        else:
            for fd in open_fds:
                os.close(fd)
        open_fds.clear()
    finally:
        for fd in open_fds:
            os.close(fd)
        if pidfd >= 0:
            os.close(pidfd)
        if proc.returncode is None:  # an exception above: leave nothing behind
            _signal_all(proc.pid, tree.scan(), signal.SIGKILL)
            proc.wait()
        if was_subreaper is False:
            set_subreaper(False)
        tree.reap()
        guard.release()
    code = proc.returncode
    sig = -code if code is not None and code < 0 else None
    return ProcessOutcome(
        exit_code=(128 + sig) if sig else code,
        signal=sig,
        timed_out=timed_out,
        duration=time.monotonic() - start,
        killed=killed,
        left_running=left_running and not timed_out,
    )


def _terminate(proc: subprocess.Popen, tree: ProcessTree, grace: float, pump: t.Callable[[], t.Any],
               guard: t.Optional[Watchdog] = None) -> t.List[int]:
    """SIGTERM to every process of the script, SIGKILL after ``grace`` seconds, until none is left.

    Output keeps being read meanwhile, so a process handling SIGTERM never blocks on a full pipe.
    """

    def pump_and_reap() -> None:
        pump()
        proc.poll()
        if guard is not None:
            guard.tell(tree)

    seen = _kill_all(proc.pid, tree, grace, pump_and_reap)
    proc.wait()
    return seen


def _kill_all(pgid: int, tree: ProcessTree, grace: float, pump: t.Callable[[], t.Any]) -> t.List[int]:
    """SIGTERM to the process group ``pgid`` and every living process of ``tree``, SIGKILL after ``grace``
    seconds, until none is left; ``pump`` is called between rounds. Returns every pid signalled."""
    victims = tree.scan()
    seen = set(victims)
    _signal_all(pgid, victims, signal.SIGTERM)
    end = time.monotonic() + grace
    while time.monotonic() < end:
        pump()
        time.sleep(_POLL_INTERVAL)
        victims = tree.scan()
        seen.update(victims)
        if not victims:
            break
    for dummy in range(100):  # each round: SIGKILL everything found, forks in flight included
        victims = tree.scan()
        if not victims:
            break
        seen.update(victims)
        _signal_all(pgid, victims, signal.SIGKILL)
        pump()
        time.sleep(0.02)
    return sorted(seen)


# --------------------------------------------------------------------------------------------
# Scripts


@dataclasses.dataclass
class ScriptPlan:
    """One script of one event, resolved before anything runs."""

    event: str
    location: str
    path: str
    timeout: int
    runas: t.Optional[str]
    sudo: bool
    archive_dir: str
    user: t.Optional[UserInfo] = None

    def describe(self) -> t.Dict[str, t.Any]:
        return {
            "location": self.location,
            "path": self.path,
            "runas": self.runas or _current_user(),
            "sudo": self.sudo,
            "timeout": self.timeout,
            "exit_code": None,
            "duration": 0.0,
            "output_tail": "",
        }


def _current_user() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:  # pragma: no cover
        return str(os.geteuid())


def resolve_script(archive_dir: str, location: str, event: str, must_exist: bool = True) -> str:
    """``location`` below the revision root; a leading ``/`` still means the revision root.

    ``must_exist=False``: the revision is not unpacked yet (check mode before DownloadBundle): the path it will have.
    """
    relative = location.strip().lstrip("/")
    path = os.path.normpath(os.path.join(archive_dir, relative))
    if must_exist and not os.path.isfile(path):
        raise DeployError(
            "%s: script %r does not exist in the revision (looked for %s)" % (event, location, path),
            event=event,
            location=location,
        )
    return path


def plan_script(event: str, archive_dir: str, hook: t.Mapping[str, t.Any], must_exist: bool = True) -> ScriptPlan:
    location = str(hook.get("location") or "")
    path = resolve_script(archive_dir, location, event, must_exist)
    runas = hook.get("runas") or None
    user = lookup_user(str(runas)) if runas else None
    timeout = hook.get("timeout") or DEFAULT_SCRIPT_TIMEOUT
    return ScriptPlan(event, location, path, int(timeout), str(runas) if runas else None, bool(hook.get("sudo")), archive_dir, user)


def command_for(plan: ScriptPlan, is_root: t.Optional[bool] = None) -> t.Tuple[t.List[str], t.Optional[t.Callable[[], None]]]:
    """The argv and the user switch for a script.

    As root (the usual case: the agent runs as root, Ansible with ``become``), ``runas`` switches
    user in the child (groups, gid, uid; no su, no PAM, no tty) and ``sudo`` adds nothing.
    Not root: ``sudo: true`` runs the script through ``sudo -n [-u user]`` (never prompts);
    ``runas`` of another user without ``sudo`` cannot work and is refused.
    """
    root = os.geteuid() == 0 if is_root is None else is_root
    argv = _interpreter_prefix(plan.path) + [plan.path]
    user = plan.user
    if root:
        if user is not None and user.uid != 0:
            return argv, _switch_user(user)
        return argv, None
    if plan.sudo:
        prefix = ["sudo", "-n"]
        if user is not None:
            prefix += ["-H", "-u", user.name]
        return prefix + ["--"] + argv, None
    if user is not None and user.uid != os.geteuid():
        raise DeployError(
            "%s: script %s has runas: %s, which needs root: run the task with become: true, or set "
            "sudo: true on the script (passwordless sudo)" % (plan.event, plan.location, user.name),
            event=plan.event,
            location=plan.location,
        )
    return argv, None


def script_environment(base: t.Mapping[str, str], variables: t.Mapping[str, t.Optional[str]], user: t.Optional[UserInfo]) -> t.Dict[str, str]:
    env = dict(base)
    for key, value in variables.items():
        if value is None:
            env.pop(key, None)  # agent semantics: a nil BUNDLE_VERSION unsets it
        else:
            env[key] = str(value)
    if user is not None:
        env.update(HOME=user.home, USER=user.name, LOGNAME=user.name, SHELL=user.shell)
    env["PATH"] = sane_path(env.get("PATH"))
    return env


def run_script(
    plan: ScriptPlan,
    *,
    variables: t.Mapping[str, t.Optional[str]],
    log: ScriptsLog,
    base_env: t.Optional[t.Mapping[str, str]] = None,
    output_tail_bytes: int = DEFAULT_OUTPUT_TAIL_BYTES,
    kill_grace: float = DEFAULT_KILL_GRACE,
    script_log_limit: int = SCRIPT_LOG_LIMIT,
) -> t.Dict[str, t.Any]:
    """Run one planned script; the result dict has ``failed`` and ``msg`` besides the contract keys."""
    result = plan.describe()
    argv, preexec = command_for(plan)
    log.line("Script - %s" % plan.location)
    try:
        if ensure_executable(plan.path):
            log.line("[runner]%s was not executable: made it executable (a+x), as the agent does" % plan.location)
    except OSError as err:
        log.line("[runner]could not make %s executable: %s" % (plan.location, err))
    token = uuid.uuid4().hex
    env = script_environment(base_environment() if base_env is None else base_env, variables, plan.user)
    env[TOKEN_VARIABLE] = token
    tail = _Tail(output_tail_bytes)
    output = _ScriptOutput(log, tail, script_log_limit)

    started = time.monotonic()
    try:
        outcome = run_process(
            argv, env=env, cwd=plan.archive_dir, timeout=plan.timeout, on_output=output.feed,
            preexec_fn=preexec, kill_grace=kill_grace, token=token,
        )
    except (OSError, subprocess.SubprocessError) as err:
        problem = _shebang_problem(plan.path)
        if problem is None and getattr(err, "errno", None) == errno.EACCES and plan.user is not None:
            problem = "user %s may not read or execute it: every directory above it must be searchable (o+x) by that user" % plan.user.name
        msg = "%s: script at specified location: %s failed to start: %s%s" % (
            plan.event, plan.location, err, " (%s)" % problem if problem else "")
        log.line("[runner]%s" % msg)
        result.update(failed=True, msg=msg, duration=round(time.monotonic() - started, 3))
        return result
    dropped = output.finish()
    result.update(exit_code=outcome.exit_code, duration=round(outcome.duration, 3), output_tail=tail.text())
    if dropped:
        result["output_not_logged"] = dropped
    who = " run as user %s" % plan.runas if plan.runas else ""
    if outcome.timed_out:
        msg = "%s: script at specified location: %s%s failed to complete in %d seconds (timeout); " \
              "its process group got SIGTERM, then SIGKILL after %g s" % (plan.event, plan.location, who, plan.timeout, kill_grace)
        result.update(failed=True, msg=msg, timed_out=True)
        log.line("[runner]%s; %d process(es) signalled" % (msg, len(outcome.killed)))
    elif outcome.exit_code != 0:
        how = "killed by signal %d" % outcome.signal if outcome.signal else "exit code %s" % outcome.exit_code
        msg = "%s: script at specified location: %s%s failed with %s" % (plan.event, plan.location, who, how)
        result.update(failed=True, msg=msg)
        log.line("[runner]%s" % msg)
    else:
        result.update(failed=False)
        if outcome.left_running:
            result["left_running"] = True
            log.line("[runner]processes started by %s still hold its output open: left running, not waited for" % plan.location)
    log.line("[runner]exit code %s, %.3f s" % (outcome.exit_code, outcome.duration))
    return result


# --------------------------------------------------------------------------------------------
# Events


@dataclasses.dataclass
class EventContext:
    """Everything one lifecycle_event call knows. Handlers receive it (``event`` set to theirs)."""

    root: DeploymentRoot
    deployment_id: str
    application_name: str
    deployment_group_name: str
    deployment_group_id: str
    bundle_env: t.Dict[str, t.Optional[str]] = dataclasses.field(default_factory=dict)
    archive_dir: t.Optional[str] = None  # run this revision's hooks instead of the deployment's own
    # The last successful revision's AppSpec, parsed by the controller, for a revision that has no
    # appspec.json (deployed by the CodeDeploy agent); or why the controller could not parse it.
    previous_appspec: t.Optional[ParsedAppSpec] = None
    previous_appspec_error: t.Optional[str] = None
    # The AppSpec of the revision this call stages itself (DownloadBundle in its events), parsed by the
    # controller: used while the deployment has no appspec.json yet (check mode stages nothing), and then
    # the scripts are planned where the revision will put them, without requiring them to exist.
    own_appspec: t.Optional[ParsedAppSpec] = None
    # Check mode: where the revision this call stages is unpacked for a look (see _lifecycle._preview).
    preview_archive: t.Optional[str] = None
    release_root: t.Optional[str] = None
    release_dir: t.Optional[str] = None
    previous_release_dir: t.Optional[str] = None
    ignore_application_stop_failures: bool = False
    output_tail_bytes: int = DEFAULT_OUTPUT_TAIL_BYTES
    kill_grace: float = DEFAULT_KILL_GRACE
    check_mode: bool = False
    base_env: t.Optional[t.Dict[str, str]] = None
    event: t.Optional[str] = None
    warnings: t.List[str] = dataclasses.field(default_factory=list)

    @property
    def deployment_dir(self) -> str:
        return self.root.deployment_dir(self.deployment_group_id, self.deployment_id)

    @property
    def state(self) -> GroupState:
        """The owner of this group's lock, records and releases on this host."""
        return GroupState(self.root.root_dir, self.deployment_group_id, self.release_root)

    @property
    def own_archive_dir(self) -> str:
        """The archive of the revision this call deploys (``archive_dir`` or the deployment's)."""
        return self.archive_dir or self.root.archive_dir(self.deployment_group_id, self.deployment_id)

    @property
    def revision_deployment_id(self) -> str:
        """The deployment that staged the revision run here: ``archive_dir``'s own, or this one.

        In release mode it names the release, so a rollback re-running an older revision's hooks
        gets that revision's RELEASE_DIR.
        """
        if self.archive_dir:
            parent, leaf = os.path.split(os.path.normpath(self.archive_dir))
            if leaf == "deployment-archive" and os.path.dirname(parent) == self.root.group_dir(self.deployment_group_id):
                return os.path.basename(parent)
        return self.deployment_id

    def variables(self, event: str) -> t.Dict[str, t.Optional[str]]:
        values = {}  # type: t.Dict[str, t.Optional[str]]
        values.update(self.bundle_env or {})
        values.update(
            LIFECYCLE_EVENT=event,
            DEPLOYMENT_ID=self.deployment_id,
            APPLICATION_NAME=self.application_name,
            DEPLOYMENT_GROUP_NAME=self.deployment_group_name,
            DEPLOYMENT_GROUP_ID=self.deployment_group_id,
        )
        if self.release_root:
            values.update(
                RELEASE_ROOT=self.release_root,
                RELEASE_DIR=self.release_dir or "",
                PREVIOUS_RELEASE_DIR=self.previous_release_dir or "",
            )
        return values


def check_event_order(events: t.Sequence[str], reserved_handlers: t.Mapping[str, Handler]) -> None:
    """Known events only, no duplicates, in CodeDeploy's order; reserved ones only with a handler."""
    if not events:
        raise DeployError("events is empty: name at least one lifecycle event")
    order = list(IN_PLACE_EVENTS)
    last = -1
    for event in events:
        if event not in order:
            raise DeployError("unknown lifecycle event %r; known events in their order: %s" % (event, ", ".join(order)))
        if event in RESERVED_EVENTS and event not in reserved_handlers:
            raise DeployError("%s is reserved for CodeDeploy itself and cannot run here (this module runs: %s)" % (
                event, ", ".join(e for e in order if e not in RESERVED_EVENTS or e in reserved_handlers)))
        index = order.index(event)
        if index <= last:
            raise DeployError("events must be given once each, in CodeDeploy's order (%s); %s is out of place in %s" % (
                ", ".join(order), event, ", ".join(events)))
        last = index


@dataclasses.dataclass
class _EventPlan:
    event: str
    scripts: t.List[ScriptPlan]
    archive_dir: t.Optional[str] = None
    skip_reason: t.Optional[str] = None
    error: t.Optional[str] = None  # a planning failure of a last-successful event (may be ignored)
    previous: bool = False  # scripts of the last successful revision


def _last_successful_archive(ctx: EventContext) -> t.Tuple[t.Optional[str], t.Optional[str]]:
    """(archive dir, deployment dir) of the last revision Installed in this group, or (None, None)."""
    deployment_dir = ctx.state.last_installed_dir()
    if not deployment_dir:
        return None, None
    return os.path.join(deployment_dir, "deployment-archive"), deployment_dir


def _stop_hint(ctx: EventContext, event: str, deployment_dir: t.Optional[str]) -> str:
    record = ctx.root.record_path(ctx.deployment_group_id, LAST_SUCCESSFUL_INSTALL)
    return (
        "%s runs the scripts of the LAST SUCCESSFUL revision on this host (%s), not of the revision being "
        "deployed: fix or remove that script on the host, set ignore_application_stop_failures: true to "
        "continue past it, or delete %s to forget that revision" % (event, deployment_dir, record)
    )


def plan_events(ctx: EventContext, events: t.Sequence[str], reserved_handlers: t.Mapping[str, Handler]) -> t.List[_EventPlan]:
    """Resolve every event's revision, appspec, scripts and users before anything runs.

    Problems in the deployment's own revision are collected and raised together. Problems in the
    last successful revision become that event's failure (which ``ignore_application_stop_failures``
    may ignore) -- a broken old revision must not be able to block every later deployment.
    """
    appspecs = {}  # type: t.Dict[str, t.Any]
    problems = []  # type: t.List[str]
    plans = []  # type: t.List[_EventPlan]

    def appspec_of(archive: str, previous: bool) -> ParsedAppSpec:
        if archive not in appspecs:
            parsed = read_appspec_json(deployment_dir_of(archive))
            if parsed is None and previous:
                if ctx.previous_appspec_error:
                    raise DeployError(ctx.previous_appspec_error)
                if ctx.previous_appspec is None:
                    raise AppSpecNeeded(
                        "the last successful revision in %s has no appspec.json (the CodeDeploy agent deployed it): "
                        "its AppSpec must be parsed on the controller" % archive,
                        appspec_needed={"archive_dir": archive, "deployment_dir": deployment_dir_of(archive),
                                        "option": "previous_appspec"})
                parsed = ctx.previous_appspec
            if parsed is None and not previous and ctx.own_appspec is not None:
                parsed = ctx.own_appspec
            if parsed is None and not previous and ctx.archive_dir and os.path.isdir(archive):
                raise AppSpecNeeded(
                    "the revision in %s has no appspec.json (the CodeDeploy agent deployed it): its AppSpec must be "
                    "parsed on the controller" % archive,
                    appspec_needed={"archive_dir": archive, "deployment_dir": deployment_dir_of(archive), "option": "appspec"})
            appspecs[archive] = parsed or require_appspec_json(deployment_dir_of(archive))
        return appspecs[archive]

    for event in events:
        if event in reserved_handlers:
            plans.append(_EventPlan(event, []))
            continue
        previous = event in LAST_SUCCESSFUL_EVENTS
        if previous:
            archive, deployment_dir = _last_successful_archive(ctx)
            if archive is None:
                plans.append(_EventPlan(event, [], skip_reason="no revision was installed before in this deployment group on this host", previous=True))
                continue
            plan = _EventPlan(event, [], archive_dir=archive, previous=True)
            try:
                if not os.path.isdir(archive):
                    raise DeployError("the last successful revision's archive %s is gone" % archive)
                plan.scripts = [plan_script(event, archive, hook) for hook in appspec_of(archive, True).hooks_for(event)]
            except AppSpecNeeded:
                raise
            except DeployError as err:
                text = str(err) if str(err).startswith(event + ":") else "%s: %s" % (event, err)
                plan.error = "%s. %s" % (text, _stop_hint(ctx, event, deployment_dir))
            plans.append(plan)
            continue
        archive = ctx.own_archive_dir
        plan = _EventPlan(event, [], archive_dir=archive)
        try:
            unstaged = not os.path.isdir(archive)
            if unstaged and not (ctx.check_mode and ctx.own_appspec is not None):
                raise DeployError("the revision is not staged: %s does not exist (run the bundle module first)" % archive)
            parsed = appspec_of(archive, False)
            parsed.check_deployable(archive)
            for hook in parsed.hooks_for(event):
                try:
                    plan.scripts.append(plan_script(event, archive, hook, must_exist=not unstaged))
                except DeployError as err:
                    problems.append(str(err))
        except AppSpecNeeded:
            raise
        except DeployError as err:
            message = str(err)
            if message not in problems:
                problems.append(message)
        plans.append(plan)
    for plan in plans:
        for script in plan.scripts:
            try:
                command_for(script)
            except DeployError as err:
                if plan.previous:
                    plan.error = plan.error or "%s. %s" % (err, _stop_hint(ctx, plan.event, os.path.dirname(plan.archive_dir or "")))
                else:
                    problems.append(str(err))
    if problems:
        if len(problems) == 1:
            raise DeployError("nothing was run: %s" % problems[0], problems=problems)
        raise DeployError("nothing was run: %d problems: %s" % (len(problems), "; ".join(problems)), problems=problems)
    return plans


def run_events(
    ctx: EventContext,
    events: t.Sequence[str],
    reserved_handlers: t.Optional[t.Mapping[str, Handler]] = None,
    after_event_handlers: t.Optional[t.Mapping[str, Handler]] = None,
) -> t.Dict[str, t.Any]:
    """Run ``events`` in order; stop at the first failure (raising :class:`HookError`).

    ``reserved_handlers[event](ctx)`` runs a reserved event (``Install``); its dict is merged into
    that event's result (``changed`` counts). ``after_event_handlers[event](ctx)`` runs right after
    ``event`` succeeded (e.g. switch ``current`` after AfterInstall); its dict is merged too.
    After ``Install`` succeeds, ``last_successful_install`` is recorded (agent semantics).
    In check mode nothing runs: every script is listed with its path and user.
    """
    reserved_handlers = dict(reserved_handlers or {})
    after_event_handlers = dict(after_event_handlers or {})
    check_event_order(events, reserved_handlers)
    plans = plan_events(ctx, events, reserved_handlers)
    log = ScriptsLog(None if ctx.check_mode else ctx.root.scripts_log(ctx.deployment_group_id, ctx.deployment_id))
    base_env = base_environment() if ctx.base_env is None else ctx.base_env
    results = []  # type: t.List[t.Dict[str, t.Any]]
    changed = False
    failed_event = None  # type: t.Optional[str]
    failure = None  # type: t.Optional[str]
    try:
        for plan in plans:
            event = plan.event
            ctx.event = event
            entry = {"event": event, "status": "succeeded", "duration": 0.0, "scripts": []}  # type: t.Dict[str, t.Any]
            if plan.previous:
                entry["revision"] = plan.archive_dir
            results.append(entry)
            if failed_event is not None:
                entry.update(status="skipped", reason="an earlier event failed")
                continue
            started = time.monotonic()
            message = None  # type: t.Optional[str]
            if plan.skip_reason:
                entry.update(status="skipped", reason=plan.skip_reason)
            elif plan.error:
                message = plan.error
            elif event in reserved_handlers:
                try:
                    extra = reserved_handlers[event](ctx) or {}
                except DeployError as err:
                    message = "%s: %s" % (event, err)
                    entry.update({k: v for k, v in err.details.items() if k not in entry})
                else:
                    changed = changed or bool(extra.get("changed", True))
                    entry.update(extra)
                    if event == "Install" and not ctx.check_mode:
                        _record_install(ctx)
            elif not plan.scripts:
                entry.update(status="skipped", reason="no scripts for this event in the AppSpec")
            elif ctx.check_mode:
                entry.update(status="skipped", reason="check mode", scripts=[s.describe() for s in plan.scripts])
                changed = True
            else:
                log.line("LifecycleEvent - %s" % event)
                changed = True
                for script in plan.scripts:
                    outcome = run_script(
                        script, variables=ctx.variables(event), log=log, base_env=base_env,
                        output_tail_bytes=ctx.output_tail_bytes, kill_grace=ctx.kill_grace,
                    )
                    failed = outcome.pop("failed")
                    text = outcome.pop("msg", None)
                    entry["scripts"].append(outcome)
                    if failed:
                        message = text
                        if plan.previous:
                            message = "%s. %s" % (text, _stop_hint(ctx, event, os.path.dirname(plan.archive_dir or "")))
                        break
            if message is None and event in after_event_handlers and entry["status"] != "failed":
                try:
                    entry.update(after_event_handlers[event](ctx) or {})
                except DeployError as err:
                    message = "%s: %s" % (event, err)
            entry["duration"] = round(time.monotonic() - started, 3)
            if message is not None:
                entry.update(status="failed", msg=message)
                if plan.previous and ctx.ignore_application_stop_failures:
                    entry["ignored"] = True
                    ctx.warnings.append("ignored (ignore_application_stop_failures): %s" % message)
                else:
                    failed_event, failure = event, message
            if not ctx.check_mode:
                append_deployments_log(ctx.root, ctx.deployment_id, "LifecycleEvent - %s: %s in %.3f s%s" % (
                    event, entry["status"] + (" (ignored)" if entry.get("ignored") else ""), entry["duration"],
                    "" if not entry["scripts"] else " (%d script(s))" % len(entry["scripts"])))
    finally:
        log.close()
        ctx.event = None
    result = {"changed": changed, "events": results, "failed_event": failed_event, "warnings": list(ctx.warnings)}
    if failed_event is not None:
        raise HookError(failure or "%s failed" % failed_event, **result)
    return result


def _record_install(ctx: EventContext) -> None:
    """``last_successful_install`` := the deployment dir whose archive was just installed."""
    archive = ctx.own_archive_dir
    if os.path.basename(os.path.normpath(archive)) == "deployment-archive":
        ctx.state.record_installed(os.path.dirname(os.path.normpath(archive)))
    else:
        ctx.warnings.append(
            "Install succeeded from %s, which is not a deployment's deployment-archive directory: "
            "last_successful_install was not updated" % archive
        )
