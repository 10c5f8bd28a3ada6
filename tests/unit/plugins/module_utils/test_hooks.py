# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The hook runner with real processes: order, failures, timeouts, daemons, runas, env, logs."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import tracemalloc
import uuid

import pytest

import bundle_fixtures
from bundle_fixtures import server_appspec

from ansible_collections.appspec.deploy.plugins.module_utils import _hooks
from ansible_collections.appspec.deploy.plugins.module_utils._errors import DeployError
from ansible_collections.appspec.deploy.plugins.module_utils._hooks import (
    EventContext,
    HookError,
    ScriptPlan,
    command_for,
    run_events,
    run_script,
)
from ansible_collections.appspec.deploy.plugins.module_utils._layout import DeploymentRoot, deployment_group_id

GID = deployment_group_id("webapp", "production")
DID = "d-TEST00001"


# --- helpers -------------------------------------------------------------------------------------


def _session_of(pid: int) -> int:
    try:
        return os.getsid(pid)
    except ProcessLookupError:
        return -1


def survivors(marker: str, in_argv: bytes = b""):
    """Living processes whose argv or environment holds ``marker`` (independent of the runner's token),
    and whose argv holds ``in_argv``."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open("/proc/%s/stat" % name, "rb") as handle:
                state = handle.read().rsplit(b")", 1)[1].split()[0]
            if state in (b"Z", b"X"):
                continue
            with open("/proc/%s/cmdline" % name, "rb") as handle:
                cmdline = handle.read()
            with open("/proc/%s/environ" % name, "rb") as handle:
                environ = handle.read()
        except OSError:
            continue
        if (marker.encode() in cmdline or marker.encode() in environ) and in_argv in cmdline:
            found.append(int(name))
    return found


def kill_marked(marker: str) -> None:
    for pid in survivors(marker):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def write_revision(archive: str, hooks: dict, scripts: dict, *, appspec_json: bool = True) -> str:
    """A staged revision: ``scripts`` ({path: body}) in ``archive`` and, beside it, the appspec.json of an
    AppSpec with ``hooks`` ({event: [location or dict]}, 60 s timeouts unless given)."""
    hooks = {event: [dict({"timeout": 60}, **({"location": e} if isinstance(e, str) else e)) for e in entries]
             for event, entries in hooks.items()}
    return bundle_fixtures.write_revision(archive, scripts, server_appspec(hooks), appspec_json=appspec_json)


@pytest.fixture
def root(tmp_path):
    return DeploymentRoot(str(tmp_path / "root"))


def archive_of(root: DeploymentRoot, deployment_id: str = DID) -> str:
    return root.archive_dir(GID, deployment_id)


def context(root: DeploymentRoot, **kwargs) -> EventContext:
    values = dict(
        root=root,
        deployment_id=DID,
        application_name="webapp",
        deployment_group_name="production",
        deployment_group_id=GID,
        kill_grace=1.0,
    )
    values.update(kwargs)
    return EventContext(**values)


def plan(path: str, *, timeout: int = 5, runas=None, sudo=False, event="AfterInstall", user=None) -> ScriptPlan:
    return ScriptPlan(event, os.path.basename(path), path, timeout, runas, sudo, os.path.dirname(path), user)


def script(tmp_path, body: str, name: str = "s.sh") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body).lstrip())
    path.chmod(0o755)
    return str(path)


# --- order, failure, resolution -------------------------------------------------------------------


def test_events_and_scripts_run_in_order_and_stop_at_first_failure(root, tmp_path):
    trace = tmp_path / "trace"
    append = '#!/bin/sh\necho "$LIFECYCLE_EVENT $(basename $0)" >> %s\n' % trace
    write_revision(
        archive_of(root),
        {
            "BeforeInstall": ["s/one.sh", "s/two.sh"],
            "AfterInstall": ["s/three.sh", "s/fail.sh", "s/never.sh"],
            "ApplicationStart": ["s/one.sh"],
        },
        {"s/one.sh": append, "s/two.sh": append, "s/three.sh": append, "s/fail.sh": append + "echo broken >&2\nexit 3\n", "s/never.sh": append},
    )

    with pytest.raises(HookError) as caught:
        run_events(context(root), ["BeforeInstall", "AfterInstall", "ApplicationStart"])

    assert trace.read_text().splitlines() == ["BeforeInstall one.sh", "BeforeInstall two.sh", "AfterInstall three.sh", "AfterInstall fail.sh"]
    details = caught.value.details
    assert details["failed_event"] == "AfterInstall"
    assert [e["status"] for e in details["events"]] == ["succeeded", "failed", "skipped"]
    assert [s["exit_code"] for s in details["events"][1]["scripts"]] == [0, 3]
    assert details["events"][1]["scripts"][1]["output_tail"] == "broken\n"
    assert "s/fail.sh failed with exit code 3" in str(caught.value)
    assert "AfterInstall" in str(caught.value)


def test_success_returns_every_script(root, tmp_path):
    write_revision(
        archive_of(root),
        {"ApplicationStart": [{"location": "a.sh", "timeout": None}], "ValidateService": [{"location": "b.sh", "timeout": 7}]},
        {"a.sh": "#!/bin/sh\necho a\n", "b.sh": "#!/bin/sh\necho b\n"},
    )
    result = run_events(context(root), ["ApplicationStart", "ValidateService"])
    event = result["events"][0]
    assert result["changed"] is True and result["failed_event"] is None
    assert [e["status"] for e in result["events"]] == ["succeeded", "succeeded"]
    assert [(s["location"], s["exit_code"], s["timeout"], s["output_tail"]) for e in result["events"] for s in e["scripts"]] == [
        ("a.sh", 0, 3600, "a\n"),
        ("b.sh", 0, 7, "b\n"),
    ]
    assert event["scripts"][0]["path"] == os.path.join(archive_of(root), "a.sh")
    assert event["scripts"][0]["runas"] == "root"


@pytest.mark.parametrize(
    "events, message",
    [
        (["AfterInstall", "BeforeInstall"], "out of place"),
        (["BeforeInstall", "BeforeInstall"], "out of place"),
        (["AfterInstal"], "unknown lifecycle event 'AfterInstal'"),
        (["DownloadBundle"], "DownloadBundle is reserved"),
        (["Install"], "Install is reserved"),
        ([], "events is empty"),
    ],
)
def test_event_list_is_checked(root, events, message):
    write_revision(archive_of(root), {}, {})
    with pytest.raises(DeployError, match=re.escape(message)):
        run_events(context(root), events)


def test_missing_script_fails_before_anything_runs(root, tmp_path):
    trace = tmp_path / "trace"
    write_revision(archive_of(root), {"BeforeInstall": ["first.sh"], "AfterInstall": ["scripts/missing.sh"]}, {"first.sh": "#!/bin/sh\ntouch %s\n" % trace})
    with pytest.raises(DeployError) as caught:
        run_events(context(root), ["BeforeInstall", "AfterInstall"])
    assert "AfterInstall" in str(caught.value) and "'scripts/missing.sh'" in str(caught.value)
    assert "nothing was run" in str(caught.value)
    assert not trace.exists()


def test_leading_slash_is_revision_relative_and_run_bit_is_added(root, tmp_path):
    archive = write_revision(
        archive_of(root),
        {"AfterInstall": ["/scripts/plain.sh", "scripts/noshebang.sh"]},
        {"scripts/plain.sh": "#!/bin/sh\necho plain\n", "scripts/noshebang.sh": "echo no shebang $0\n"},
    )
    os.chmod(os.path.join(archive, "scripts/plain.sh"), 0o644)
    os.chmod(os.path.join(archive, "scripts/noshebang.sh"), 0o600)
    result = run_events(context(root), ["AfterInstall"])
    scripts = result["events"][0]["scripts"]
    assert scripts[0]["path"] == os.path.join(archive, "scripts/plain.sh")
    assert scripts[0]["output_tail"] == "plain\n"
    assert scripts[1]["output_tail"].startswith("no shebang ")
    assert os.stat(os.path.join(archive, "scripts/plain.sh")).st_mode & 0o777 == 0o755


def test_no_scripts_and_unstaged_revision(root):
    write_revision(archive_of(root), {"AfterInstall": ["a.sh"]}, {"a.sh": "#!/bin/sh\n"})
    result = run_events(context(root), ["BeforeInstall"])
    assert result["events"][0]["status"] == "skipped"
    assert result["changed"] is False
    with pytest.raises(DeployError, match="not staged"):
        run_events(context(root, deployment_id="d-NOTSTAGED"), ["BeforeInstall"])


def test_crlf_shebang_gets_a_clear_message(root):
    write_revision(archive_of(root), {"AfterInstall": ["crlf.sh"]}, {"crlf.sh": "#!/bin/sh\r\necho hi\r\n"})
    with pytest.raises(HookError, match="CRLF"):
        run_events(context(root), ["AfterInstall"])


# --- timeouts, process groups, daemons --------------------------------------------------------------


def test_timeout_kills_children_and_grandchildren(tmp_path):
    marker = "hooktest-%s" % uuid.uuid4().hex
    path = script(
        tmp_path,
        """
        #!/bin/bash
        export HOOK_TEST_MARKER=%s
        sleep 300 &                              # child, same group
        ( sleep 301 & wait ) &                   # grandchild, same group
        setsid sleep 302 &                       # new session: escapes the process group
        bash -c 'set -m; sleep 303 & wait' &     # job control: its own process group
        echo started
        sleep 304
    """ % marker,
    )
    started = time.monotonic()
    try:
        result = run_script(plan(path, timeout=1), variables={}, log=_hooks.ScriptsLog(None), kill_grace=5.0)
        elapsed = time.monotonic() - started
        assert result["failed"] and result["timed_out"]
        assert "s.sh failed to complete in 1 seconds" in result["msg"]
        assert result["output_tail"] == "started\n"
        assert elapsed < 4.0, elapsed  # the sleeps die on SIGTERM: the 5 s grace period is not waited for
        time.sleep(0.1)
        assert survivors(marker) == []
    finally:
        kill_marked(marker)


def test_timeout_escalates_to_sigkill_for_a_script_that_ignores_sigterm(tmp_path):
    marker = "hooktest-%s" % uuid.uuid4().hex
    path = script(
        tmp_path,
        """
        #!/bin/bash
        export HOOK_TEST_MARKER=%s
        trap '' TERM
        sleep 300 &
        echo waiting
        while :; do sleep 0.1; done
    """ % marker,
    )
    started = time.monotonic()
    try:
        result = run_script(plan(path, timeout=1), variables={}, log=_hooks.ScriptsLog(None), kill_grace=0.5)
        elapsed = time.monotonic() - started
        assert result["timed_out"] and result["exit_code"] == 128 + signal.SIGKILL
        assert 1.4 <= elapsed < 4.0, elapsed  # timeout + grace, then SIGKILL
        assert survivors(marker) == []
    finally:
        kill_marked(marker)


def test_a_daemon_holding_stdout_does_not_block_the_hook_and_survives(tmp_path):
    marker = "hooktest-%s" % uuid.uuid4().hex
    ticks = tmp_path / "ticks"
    path = script(
        tmp_path,
        """
        #!/bin/sh
        export HOOK_TEST_MARKER=%s
        sleep 300 &                                                      # same group, holds stdout
        setsid sh -c 'while :; do echo tick; echo x >> %s; sleep 0.1; done' &   # writes to our stdout forever
        echo started
        exit 0
    """ % (marker, ticks),
    )
    started = time.monotonic()
    try:
        result = run_script(plan(path, timeout=30), variables={}, log=_hooks.ScriptsLog(str(tmp_path / "log")))
        assert time.monotonic() - started < 3.0  # the timeout is 30 s: nothing waited for the daemon
        assert not result["failed"] and result["exit_code"] == 0 and result["left_running"] is True
        assert "started" in result["output_tail"]
        # The loop shell is the session leader setsid made; its short-lived forks (for `sleep 0.1`)
        # share its argv until they exec, so they are told apart by their session.
        loop = [pid for pid in survivors(marker, b"while :") if _session_of(pid) == pid]
        long_lived = set(survivors(marker, b"sleep\x00300") + loop)
        assert len(long_lived) == 2
        size = ticks.stat().st_size if ticks.exists() else 0
        time.sleep(0.6)
        # both still alive, the loop still writing to its (detached, drained) stdout: no SIGPIPE
        assert set(survivors(marker)) >= long_lived
        assert ticks.stat().st_size > size
    finally:
        kill_marked(marker)


def _unique_sleep() -> str:
    """A ``sleep`` argument no other process has: its argv finds it even without its environment."""
    return "1000.%d" % (uuid.uuid4().int % 10 ** 9)


def _sleepers(argument: str):
    return survivors(argument, b"sleep\x00" + argument.encode())


@pytest.mark.parametrize("escape", [
    "setsid env -i sleep {arg} &",                                             # new session, empty environment
    "( setsid env -i sh -c 'sleep {arg} & exit 0' & ); sleep 0.3",           # double fork: an orphan at once
    "setsid env -i sh -c 'sleep {arg} & sleep 2; exit 0' &",                 # orphaned later, while we wait
    "setsid env -i sh -c 'exec 0</dev/null 1>/dev/null 2>&1; sleep {arg}' &",  # lets go of our pipes too
])
def test_no_process_of_a_timed_out_hook_survives_whatever_it_dropped(tmp_path, escape):
    # Fault (issue 14): `setsid env -i` left the group, the session and the token behind; it survived.
    arg = _unique_sleep()
    path = script(tmp_path, """
        #!/bin/bash
        %s
        echo started
        sleep 300
    """ % escape.format(arg=arg))
    try:
        result = run_script(plan(path, timeout=2), variables={}, log=_hooks.ScriptsLog(None), kill_grace=1.0)
        assert result["failed"] and result["timed_out"]
        time.sleep(0.2)
        assert _sleepers(arg) == []
    finally:
        for pid in _sleepers(arg):
            os.kill(pid, signal.SIGKILL)


def test_a_double_forked_daemon_is_known_after_its_parent_is_gone(tmp_path):
    # The intermediate process is gone long before the timeout: only the recorded ancestry (or the
    # subreaper) ties the daemon to the hook.
    arg = _unique_sleep()
    path = script(tmp_path, """
        #!/bin/bash
        python3 -c 'import os, sys
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.execvpe("sleep", ["sleep", sys.argv[1]], {{}})
        ' {arg}
        sleep 300
    """.format(arg=arg))
    try:
        result = run_script(plan(path, timeout=2), variables={}, log=_hooks.ScriptsLog(None), kill_grace=1.0)
        assert result["timed_out"]
        time.sleep(0.2)
        assert _sleepers(arg) == []
    finally:
        for pid in _sleepers(arg):
            os.kill(pid, signal.SIGKILL)


RUNNER = """
import sys
import time
from ansible_collections.appspec.deploy.plugins.module_utils import _hooks
for path in sys.argv[3:]:
    plan = _hooks.ScriptPlan("BeforeInstall", "fault.sh", path, int(sys.argv[1]), None, False, sys.argv[2], None)
    result = _hooks.run_script(plan, variables={}, log=_hooks.ScriptsLog(None), kill_grace=1.0)
    print(result["exit_code"], flush=True)
time.sleep(30)  # then killed by the test
# %s
"""


def run_runner(tmp_path, bodies, timeout: int):
    """A process of its own running hooks one after the other, as the lifecycle_event module does; its cmdline
    holds a mark (so does the watchdog it forks): (process, mark)."""
    paths = [script(tmp_path, body, "fault%d.sh" % index) for index, body in enumerate(bodies)]
    mark = "runner-%s" % uuid.uuid4().hex
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    proc = subprocess.Popen([sys.executable, "-c", RUNNER % mark, str(timeout), str(tmp_path)] + paths,
                            env=env, stdout=subprocess.PIPE, start_new_session=True)
    return proc, mark


def wait_until(check, seconds: float):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not check():
        time.sleep(0.05)
    return check()


KILLS_ITS_RUNNER = """
    #!/bin/bash
    setsid env -i sleep {0} &
    sleep 0.5
    sleep {1} &
    echo "killing my parent $PPID"
    kill -9 $PPID
    sleep {2}
"""

LEAVES_A_DAEMON = """
    #!/bin/sh
    setsid sleep {0} >/dev/null 2>&1 &   # not holding our pipes: no drainer (which has the mark too)
    exit 0
"""


def test_a_hook_that_kills_its_runner_dies_with_it(tmp_path):
    """Fault 5 (issue 14): `kill -9 $PPID` killed the lifecycle_event module, and the hook went on, unsupervised,
    past its timeout, for ever. Now its main process dies with the runner (PR_SET_PDEATHSIG) and the watchdog kills
    the rest at once: the one in the group, and one that left the session and dropped the token first. What an
    earlier hook of the same runner left running on purpose is spared."""
    spared = _unique_sleep()
    args = [_unique_sleep() for dummy in range(3)]
    proc, mark = run_runner(tmp_path, [LEAVES_A_DAEMON.format(spared), KILLS_ITS_RUNNER.format(*args)], timeout=60)
    try:
        assert proc.wait(timeout=30) == -signal.SIGKILL
        assert wait_until(lambda: not any(_sleepers(arg) for arg in args), 5.0), [_sleepers(arg) for arg in args]
        assert wait_until(lambda: not survivors(mark), 3.0), survivors(mark)  # the watchdog is gone too
        assert len(_sleepers(spared)) == 1
    finally:
        proc.stdout.close()
        for arg in args + [spared]:
            for pid in _sleepers(arg):
                os.kill(pid, signal.SIGKILL)
        kill_marked(mark)


def test_the_watchdog_spares_what_a_hook_left_running_and_leaves_with_its_runner(tmp_path):
    """Hooks that end (here, leaving a daemon, as 5c): the runner's one watchdog waits on; when the runner ends,
    it exits without a kill."""
    arg = _unique_sleep()
    proc, mark = run_runner(tmp_path, [LEAVES_A_DAEMON.format(arg), "#!/bin/sh\nexit 3\n"], timeout=60)
    try:
        assert proc.stdout.readline() == b"0\n" and proc.stdout.readline() == b"3\n"  # the runner sleeps now
        assert wait_until(lambda: len(survivors(mark)) == 2, 3.0), survivors(mark)  # the runner and its watchdog
        assert len(_sleepers(arg)) == 1
        proc.kill()
        proc.wait()
        assert wait_until(lambda: not survivors(mark), 3.0), survivors(mark)
        assert len(_sleepers(arg)) == 1  # released: the runner's death no longer concerns it
    finally:
        proc.stdout.close()
        for pid in _sleepers(arg):
            os.kill(pid, signal.SIGKILL)
        kill_marked(mark)


def test_process_tree_follows_parents_not_the_environment(tmp_path):
    """ProcessTree alone, without a subreaper: a child found while its parent lives stays known after
    the parent exits and it is re-parented; an unrelated process is never taken."""
    arg = _unique_sleep()
    parent = subprocess.Popen(["sh", "-c", "env -i setsid sleep %s & sleep 0.5" % arg], start_new_session=True)
    unrelated = subprocess.Popen(["sleep", "30"])
    try:
        tree = _hooks.ProcessTree(parent.pid, adopts_orphans=False)
        deadline = time.monotonic() + 5
        while not _sleepers(arg) and time.monotonic() < deadline:
            time.sleep(0.02)
        first = tree.scan()
        [daemon] = _sleepers(arg)
        assert daemon in first and unrelated.pid not in first
        parent.wait()  # the daemon is an orphan now, in a session of its own
        assert os.getsid(daemon) == daemon and daemon in tree.scan()
        assert parent.pid not in tree.scan() and unrelated.pid not in tree.scan()
    finally:
        unrelated.kill()
        unrelated.wait()
        for pid in _sleepers(arg):
            os.kill(pid, signal.SIGKILL)


def test_an_orphan_an_earlier_hook_left_is_not_taken_for_the_next_hooks(tmp_path):
    """A daemon left running by one hook, re-parented to us (the subreaper), may have started in the same clock
    tick as the next hook: it is not that hook's (its timeout, or the watchdog, would kill it)."""
    arg = _unique_sleep()
    was = _hooks.set_subreaper(True)
    try:
        subprocess.run(["sh", "-c", "setsid sleep %s >/dev/null 2>&1 &" % arg], check=True)
        assert wait_until(lambda: len(_sleepers(arg)) == 1, 5.0)
        [daemon] = _sleepers(arg)
        assert _hooks._proc_stat(daemon)[1] == os.getpid()  # an orphan, adopted by us
        started = _hooks._proc_stat(daemon)[4]
        nxt = subprocess.Popen(["sleep", "30"], start_new_session=True)
        tree = _hooks.ProcessTree(nxt.pid, adopts_orphans=True, started=started)  # the same tick, at worst
        assert daemon not in tree.scan() and nxt.pid in tree.scan()
        nxt.kill()
        nxt.wait()
    finally:
        if was is False:
            _hooks.set_subreaper(False)
        for pid in _sleepers(arg):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


def test_output_written_just_before_exit_is_not_lost(tmp_path):
    marker = "hooktest-%s" % uuid.uuid4().hex
    path = script(
        tmp_path,
        """
        #!/bin/sh
        HOOK_TEST_MARKER=%s sleep 300 &          # holds stdout open after the script exits
        seq 1 20000
    """ % marker,
    )
    try:
        result = run_script(plan(path), variables={}, log=_hooks.ScriptsLog(str(tmp_path / "log")), output_tail_bytes=12)
        assert result["output_tail"] == "19999\n20000\n"
        assert (tmp_path / "log").read_bytes().count(b"[stdout]") == 20000
    finally:
        kill_marked(marker)


def test_killed_by_a_signal_reports_128_plus_n(tmp_path):
    path = script(tmp_path, "#!/bin/sh\nkill -USR1 $$\n")
    result = run_script(plan(path), variables={}, log=_hooks.ScriptsLog(None))
    assert result["exit_code"] == 128 + signal.SIGUSR1
    assert "killed by signal %d" % signal.SIGUSR1 in result["msg"]


# --- output, memory, logs -------------------------------------------------------------------------


def test_50_mb_of_output_with_bounded_memory(tmp_path):
    path = script(
        tmp_path,
        """
        #!/bin/sh
        yes 'the quick brown fox jumps over the lazy dog, again and again and again and again' | head -c 52428800
        echo
        echo last line
    """,
    )
    log_path = tmp_path / "logs" / "scripts.log"
    tracemalloc.start()
    try:
        # No wall-clock assertion (shared machines): the script's own timeout fails a runner that stalls.
        result = run_script(plan(path, timeout=120), variables={}, log=_hooks.ScriptsLog(str(log_path)), output_tail_bytes=1000)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result["exit_code"] == 0
    assert peak < 2 * 1024 * 1024, peak  # 50 MB went through; at most a few read buffers were alive
    assert len(result["output_tail"].encode()) <= 1000
    assert result["output_tail"].endswith("last line\n")
    # scripts.log got this script's cap (timestamps included) and a few [runner] lines, not the 50 MB.
    data = log_path.read_bytes()
    assert _hooks.SCRIPT_LOG_LIMIT - 200 < len(data) < _hooks.SCRIPT_LOG_LIMIT + 1024, len(data)
    logged = sum(len(line.split(b"[stdout]", 1)[1]) + 1 for line in data.splitlines() if b"[stdout]" in line)
    assert result["output_not_logged"] == 52428800 + len("\nlast line\n") - logged
    assert b"[runner]%d bytes of output were not logged" % result["output_not_logged"] in data


LINES_SCRIPT = """
    #!/bin/sh
    i=100
    while [ $i -lt 400 ]; do echo "line $i"; i=$((i + 1)); done   # 300 lines of 9 bytes
    printf 'no newline at the end'
"""


def _stdout_lines(data: bytes):
    return [line.split(b"[stdout]", 1)[1] for line in data.splitlines() if b"[stdout]" in line]


@pytest.mark.parametrize("script_limit, log_limit, already, binding", [
    (1 << 30, 1 << 30, 0, None),                       # no cap reached: every line, the last one without newline
    (100 * 30, 1 << 30, 0, "this script's cap of 3000 bytes"),
    (1 << 30, 50 * 30 + 1000, 1000, "the cap of 2500 bytes of this deployment's scripts.log"),  # 1000 there before
    (1 << 30, 500, 1000, "the cap of 500 bytes of this deployment's scripts.log"),  # full before the script started
])
def test_scripts_log_is_capped_per_script_and_per_file(tmp_path, script_limit, log_limit, already, binding):
    """Fault 5 (issue 14): a hook flooding output wrote hundreds of MB into scripts.log. Whole lines are logged
    up to the cap (the first ones), one [runner] line says the cap was reached, one how much was not logged; the
    tail still has the last bytes; nothing of the script is lost before the cap."""
    log_path = tmp_path / "logs" / "scripts.log"
    log_path.parent.mkdir()
    log_path.write_bytes(b"x" * (already - 1) + b"\n" if already else b"")
    path = script(tmp_path, LINES_SCRIPT)
    log = _hooks.ScriptsLog(str(log_path), limit=log_limit)
    try:
        result = run_script(plan(path), variables={}, log=log, output_tail_bytes=30, script_log_limit=script_limit)
    finally:
        log.close()
    total = 300 * 9 + len("no newline at the end")
    data = log_path.read_bytes()
    lines = _stdout_lines(data)
    assert result["exit_code"] == 0 and result["output_tail"] == "line 399\nno newline at the end"
    expected = [b"line %d" % i for i in range(100, 400)] + [b"no newline at the end"]
    assert lines == expected[:len(lines)] and (len(lines) == 301) == (binding is None), lines[-3:]
    stdout_bytes = sum(len(re.match(rb"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \[stdout\].*\n", line).group(0))
                       for line in re.findall(rb".*\n", data) if b"[stdout]" in line)
    if binding is None:
        assert "output_not_logged" not in result and b"not logged" not in data
        return
    # Full up to the last whole line that fits (a line of the log is 29 bytes here).
    capped_at = data.index(b"\n", data.index(b"[stdout]line %d" % (99 + len(lines)))) + 1 if lines else None
    if script_limit < log_limit:
        assert script_limit - 29 < stdout_bytes <= script_limit
    elif already < log_limit:
        assert log_limit - 29 < capped_at <= log_limit
    else:
        assert not lines
    written = sum(len(line) for line in lines) + len(lines)
    assert result["output_not_logged"] == total - written
    runner = [line for line in data.decode().splitlines() if "[runner]" in line]
    assert runner[0].endswith("[runner]output reached %s: the rest is not logged here (its last bytes are in the "
                              "result's output_tail)" % binding)
    assert runner[1].endswith("[runner]%d bytes of output were not logged (%d logged): scripts.log keeps at most %d "
                              "bytes per script and %d per deployment; the last 30 bytes are in the result's output_tail"
                              % (total - written, written, script_limit, log_limit))
    assert runner[2].endswith("[runner]exit code 0, %.3f s" % result["duration"]) or "exit code 0" in runner[2]


def test_a_flood_past_the_cap_is_still_read_and_the_log_stays_bounded(tmp_path):
    """The real fault: `yes` of 1000-byte lines until the timeout. The pipe is read to the end (the hook never
    blocks on it), scripts.log gets its cap; then, past it, a quick script still runs to its end at once."""
    log_path = tmp_path / "logs" / "scripts.log"
    flood = script(tmp_path, """
        #!/bin/bash
        line=$(printf '%01000d' 0)
        exec yes "$line"
    """, "flood.sh")
    after = script(tmp_path, """
        #!/bin/sh
        head -c 20000000 /dev/zero | tr '\\0' 'z' | fold -w 100
        echo done
    """, "after.sh")
    log = _hooks.ScriptsLog(str(log_path))
    try:
        flooded = run_script(plan(flood, timeout=2), variables={}, log=log, kill_grace=1.0)
        size = log_path.stat().st_size
        assert _hooks.SCRIPT_LOG_LIMIT - 1100 < size < _hooks.SCRIPT_LOG_LIMIT + 1024, size
        assert flooded["timed_out"] and flooded["output_not_logged"] > 0 and flooded["duration"] < 3.5
        assert 3000 < len(flooded["output_tail"]) <= 4096 and set(flooded["output_tail"]) == {"0", "\n"}
        for dummy in range(3):  # the file's cap: 16 MiB for the whole deployment
            quick = run_script(plan(after, timeout=60), variables={}, log=log)
            assert quick["exit_code"] == 0 and quick["output_tail"].endswith("z" * 100 + "done\n")
            assert quick["output_not_logged"] > 0
    finally:
        log.close()
    size = log_path.stat().st_size
    assert _hooks.SCRIPTS_LOG_LIMIT - 200 < size < _hooks.SCRIPTS_LOG_LIMIT + 4096, size
    assert log_path.read_bytes().count(b"[runner]output reached the cap of %d bytes of this deployment's scripts.log"
                                       % _hooks.SCRIPTS_LOG_LIMIT) == 1


def test_a_huge_line_without_newline_is_logged_in_pieces(tmp_path):
    path = script(tmp_path, "#!/bin/sh\nhead -c 300000 /dev/zero | tr '\\0' 'y'\n")
    log_path = tmp_path / "scripts.log"
    result = run_script(plan(path), variables={}, log=_hooks.ScriptsLog(str(log_path)), output_tail_bytes=10)
    assert result["output_tail"] == "y" * 10
    lines = log_path.read_bytes().splitlines()
    pieces = [line for line in lines if b"[stdout]" in line]
    assert sum(len(p.split(b"[stdout]", 1)[1]) for p in pieces) == 300000
    assert max(len(p) for p in pieces) < 70000


def test_scripts_log_and_deployments_log_format(root):
    write_revision(archive_of(root), {"ApplicationStart": ["start.sh"]}, {"start.sh": "#!/bin/sh\necho hello\necho oops >&2\nexit 0\n"})
    run_events(context(root), ["ApplicationStart"])
    text = open(root.scripts_log(GID, DID)).read().splitlines()
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d "
    assert re.fullmatch(stamp + "LifecycleEvent - ApplicationStart", text[0])
    assert re.fullmatch(stamp + "Script - start.sh", text[1])
    # Two pipes: which line is read first is up to the scheduler; each line keeps its stream's tag.
    assert sorted(re.sub("^" + stamp, "", line) for line in text[2:4]) == ["[stderr]oops", "[stdout]hello"]
    assert all(re.match(stamp, line) for line in text[2:4])
    assert re.fullmatch(stamp + r"\[runner\]exit code 0, \d+\.\d{3} s", text[-1])
    deployments = open(os.path.join(root.deployment_logs_dir, "codedeploy-agent-deployments.log")).read()
    expected = r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\] \[%s\]LifecycleEvent - ApplicationStart: succeeded in \d+\.\d{3} s \(1 script\(s\)\)\n"
    assert re.fullmatch(expected % DID, deployments)


# --- environment, cwd, users -------------------------------------------------------------------------


def test_every_environment_variable_cwd_and_stdin(root, tmp_path):
    dump = tmp_path / "env"
    write_revision(
        archive_of(root),
        {"AfterInstall": ["dump.sh"]},
        {
            "dump.sh": """
        #!/bin/sh
        env > %s
        echo "CWD=$(pwd)" >> %s
        echo "STDIN=$(readlink /proc/self/fd/0)" >> %s
    """
            % (dump, dump, dump)
        },
    )
    ctx = context(
        root,
        bundle_env={"BUNDLE_BUCKET": "b", "BUNDLE_KEY": "k/x.zip", "BUNDLE_VERSION": None, "BUNDLE_ETAG": "e1", "BUNDLE_COMMIT": "abc"},
        release_root="/srv/app",
        release_dir="/srv/app/releases/" + DID,
        previous_release_dir=None,
        base_env={"PATH": "/opt/custom/bin", "BUNDLE_VERSION": "stale", "KEEP": "1"},
    )
    run_events(ctx, ["AfterInstall"])
    env = dict(line.split("=", 1) for line in dump.read_text().splitlines() if "=" in line)
    assert {
        k: env.get(k)
        for k in (
            "LIFECYCLE_EVENT",
            "DEPLOYMENT_ID",
            "APPLICATION_NAME",
            "DEPLOYMENT_GROUP_NAME",
            "DEPLOYMENT_GROUP_ID",
            "BUNDLE_BUCKET",
            "BUNDLE_KEY",
            "BUNDLE_ETAG",
            "BUNDLE_COMMIT",
            "RELEASE_ROOT",
            "RELEASE_DIR",
            "PREVIOUS_RELEASE_DIR",
            "KEEP",
            "CWD",
            "STDIN",
        )
    } == {
        "LIFECYCLE_EVENT": "AfterInstall",
        "DEPLOYMENT_ID": DID,
        "APPLICATION_NAME": "webapp",
        "DEPLOYMENT_GROUP_NAME": "production",
        "DEPLOYMENT_GROUP_ID": GID,
        "BUNDLE_BUCKET": "b",
        "BUNDLE_KEY": "k/x.zip",
        "BUNDLE_ETAG": "e1",
        "BUNDLE_COMMIT": "abc",
        "RELEASE_ROOT": "/srv/app",
        "RELEASE_DIR": "/srv/app/releases/" + DID,
        "PREVIOUS_RELEASE_DIR": "",
        "KEEP": "1",
        "CWD": archive_of(root),
        "STDIN": "/dev/null",
    }
    assert "BUNDLE_VERSION" not in env  # a null value unsets, as the agent does
    assert env["PATH"].split(":")[0] == "/opt/custom/bin"
    assert {"/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/bin"} <= set(env["PATH"].split(":"))


def test_no_release_variables_outside_release_mode(root, tmp_path):
    dump = tmp_path / "env"
    write_revision(archive_of(root), {"AfterInstall": ["dump.sh"]}, {"dump.sh": "#!/bin/sh\nenv > %s\n" % dump})
    run_events(context(root), ["AfterInstall"])
    assert "RELEASE_DIR=" not in dump.read_text()


def test_base_environment_drops_ansible_internals():
    env = _hooks.base_environment({"ANSIBLE_X": "1", "PYTHONPATH": "/x", "LANG": "C.UTF-8", _hooks.TOKEN_VARIABLE: "t"})
    assert set(env) == {"LANG", "PATH"}


@pytest.fixture
def test_user():
    """A throwaway system user with a supplementary group (we run as root)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to create users")
    suffix = uuid.uuid4().hex[:8]
    name, group = "hkt%s" % suffix, "hktg%s" % suffix
    subprocess.run(["groupadd", group], check=True)
    subprocess.run(["useradd", "--no-create-home", "--home-dir", "/nonexistent-%s" % suffix, "--shell", "/bin/sh", "--groups", group, name], check=True)
    try:
        yield name, group
    finally:
        subprocess.run(["userdel", name], check=False)
        subprocess.run(["groupdel", group], check=False)


@pytest.fixture
def public_dir():
    """A directory other users can reach (pytest's tmp_path sits under a 0700 directory)."""
    path = tempfile.mkdtemp(prefix="hooktest-", dir="/tmp")
    os.chmod(path, 0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_runas_switches_user_groups_and_login_variables(test_user, public_dir):
    name, group = test_user
    root = DeploymentRoot(os.path.join(public_dir, "root"))
    out = os.path.join(public_dir, "out")
    os.mkdir(out)
    os.chmod(out, 0o777)
    write_revision(
        archive_of(root),
        {"AfterInstall": [{"location": "who.sh", "runas": name}]},
        {
            "who.sh": """
        #!/bin/sh
        {
          echo "user=$(id -un) groups=$(id -Gn)"
          echo "HOME=$HOME USER=$USER LOGNAME=$LOGNAME SHELL=$SHELL"
          echo "event=$LIFECYCLE_EVENT tty=$(tty 2>&1)"
        } > %s/who
    """
            % out
        },
    )
    for directory in (public_dir, root.root_dir, root.group_dir(GID), root.deployment_dir(GID, DID)):
        os.chmod(directory, 0o755)
    result = run_events(context(root), ["AfterInstall"])
    assert result["events"][0]["scripts"][0]["runas"] == name
    lines = open(os.path.join(out, "who")).read().splitlines()
    user_line = lines[0].split()
    assert user_line[0] == "user=%s" % name
    assert group in user_line[1].split("=", 1)[1].split() + user_line[2:]
    assert lines[1] == "HOME=/nonexistent-%s USER=%s LOGNAME=%s SHELL=/bin/sh" % (name[3:], name, name)
    assert lines[2].startswith("event=AfterInstall tty=not a tty")
    assert os.stat(os.path.join(out, "who")).st_uid != 0


def test_unknown_runas_user_fails_before_anything_runs(root, tmp_path):
    trace = tmp_path / "trace"
    write_revision(
        archive_of(root),
        {
            "BeforeInstall": ["first.sh"],
            "ApplicationStart": [{"location": "second.sh", "runas": "no-such-user-hooktest"}],
        },
        {"first.sh": "#!/bin/sh\ntouch %s\n" % trace, "second.sh": "#!/bin/sh\n"},
    )
    with pytest.raises(DeployError, match="runas user 'no-such-user-hooktest' does not exist"):
        run_events(context(root), ["BeforeInstall", "ApplicationStart"])
    assert not trace.exists()
    assert not os.path.exists(root.scripts_log(GID, DID))


_ME = _hooks.lookup_user("root")
_OTHER = _hooks.UserInfo("app", 1234, 1234, "/home/app", "/bin/sh", [1234])


@pytest.mark.parametrize(
    "is_root, runas, sudo, expected",
    [
        (True, None, False, ["{path}"]),
        (True, None, True, ["{path}"]),  # root: sudo adds nothing
        (True, _OTHER, False, ["{path}", "switch"]),
        (True, _OTHER, True, ["{path}", "switch"]),
        (False, None, True, ["sudo", "-n", "--", "{path}"]),
        (False, _OTHER, True, ["sudo", "-n", "-H", "-u", "app", "--", "{path}"]),
        (False, _OTHER, False, "needs root"),
    ],
)
def test_command_for_runas_and_sudo(tmp_path, is_root, runas, sudo, expected):
    path = script(tmp_path, "#!/bin/sh\n")
    spec = plan(path, runas=runas.name if runas else None, sudo=sudo, user=runas)
    if isinstance(expected, str):
        with pytest.raises(DeployError, match=expected):
            command_for(spec, is_root=is_root)
        return
    argv, preexec = command_for(spec, is_root=is_root)
    want = [part.format(path=path) for part in expected if part != "switch"]
    assert argv == want
    assert (preexec is not None) == ("switch" in expected)


# --- ApplicationStop and friends: the last successful revision -------------------------------------


def _previous_and_current(root, tmp_path, stop_body):
    trace = tmp_path / "trace"
    previous = root.deployment_dir(GID, "d-PREVIOUS1")
    write_revision(
        os.path.join(previous, "deployment-archive"),
        {"ApplicationStop": ["stop.sh"], "BeforeBlockTraffic": ["stop.sh"]},
        {"stop.sh": stop_body.replace("TRACE", str(trace))},
    )
    write_revision(archive_of(root), {"ApplicationStop": ["stop.sh"]}, {"stop.sh": "#!/bin/sh\necho new $LIFECYCLE_EVENT $DEPLOYMENT_ID >> %s\n" % trace})
    return previous, trace


def test_application_stop_runs_the_last_successful_revision(root, tmp_path):
    previous, trace = _previous_and_current(root, tmp_path, "#!/bin/sh\necho previous $LIFECYCLE_EVENT $DEPLOYMENT_ID >> TRACE\n")
    root.write_record(GID, "last_successful_install", previous)
    result = run_events(context(root), ["BeforeBlockTraffic", "ApplicationStop"])
    assert trace.read_text().splitlines() == ["previous BeforeBlockTraffic %s" % DID, "previous ApplicationStop %s" % DID]
    assert result["events"][1]["revision"] == os.path.join(previous, "deployment-archive")
    assert result["events"][1]["scripts"][0]["path"] == os.path.join(previous, "deployment-archive", "stop.sh")
    # logged in the CURRENT deployment's scripts.log, as the agent does
    assert "LifecycleEvent - ApplicationStop" in open(root.scripts_log(GID, DID)).read()


def test_application_stop_is_skipped_without_a_previous_revision(root, tmp_path):
    _previous, trace = _previous_and_current(root, tmp_path, "#!/bin/sh\necho previous >> TRACE\n")
    result = run_events(context(root), ["ApplicationStop"])
    assert result["events"][0]["status"] == "skipped"
    assert "no revision was installed before" in result["events"][0]["reason"]
    assert not trace.exists()


def test_failing_previous_application_stop_blocks_with_a_hint(root, tmp_path):
    previous, _trace = _previous_and_current(root, tmp_path, "#!/bin/sh\necho cannot stop >&2\nexit 1\n")
    root.write_record(GID, "last_successful_install", previous)
    write_revision(archive_of(root), {"ApplicationStop": ["stop.sh"], "BeforeInstall": ["b.sh"]}, {"b.sh": "#!/bin/sh\n"})
    with pytest.raises(HookError) as caught:
        run_events(context(root), ["ApplicationStop", "BeforeInstall"])
    message = str(caught.value)
    assert "LAST SUCCESSFUL revision" in message and "ignore_application_stop_failures: true" in message
    assert previous in message
    assert caught.value.details["failed_event"] == "ApplicationStop"
    assert caught.value.details["events"][1]["status"] == "skipped"


def test_failing_previous_application_stop_can_be_ignored(root, tmp_path):
    previous, _trace = _previous_and_current(root, tmp_path, "#!/bin/sh\nexit 1\n")
    root.write_record(GID, "last_successful_install", previous)
    write_revision(archive_of(root), {"BeforeInstall": ["b.sh"]}, {"b.sh": "#!/bin/sh\necho ran\n"})
    result = run_events(context(root, ignore_application_stop_failures=True), ["ApplicationStop", "BeforeInstall"])
    stop, before = result["events"]
    assert stop["status"] == "failed" and stop["ignored"] is True
    assert before["status"] == "succeeded" and before["scripts"][0]["output_tail"] == "ran\n"
    assert result["failed_event"] is None
    assert result["warnings"] and "ignore_application_stop_failures" in result["warnings"][0]


@pytest.mark.parametrize("ignore", [False, True])
def test_a_deleted_previous_revision(root, tmp_path, ignore):
    root.write_record(GID, "last_successful_install", root.deployment_dir(GID, "d-GONE00001"))
    write_revision(archive_of(root), {}, {})
    if not ignore:
        with pytest.raises(HookError, match="is gone"):
            run_events(context(root), ["ApplicationStop"])
        return
    result = run_events(context(root, ignore_application_stop_failures=True), ["ApplicationStop"])
    assert result["events"][0]["status"] == "failed" and result["events"][0]["ignored"]


# --- reserved Install, after-event steps, check mode ------------------------------------------------


def test_install_handler_records_last_successful_install(root, tmp_path):
    trace = tmp_path / "trace"
    write_revision(archive_of(root), {"BeforeInstall": ["a.sh"], "AfterInstall": ["a.sh"]}, {"a.sh": "#!/bin/sh\necho $LIFECYCLE_EVENT >> %s\n" % trace})
    calls = []

    def install(ctx):
        calls.append(ctx.event)
        assert root.read_record(GID, "last_successful_install") is None
        return {"changed": True, "install": {"files": 3}}

    def switched(ctx):
        calls.append("after " + ctx.event)
        return {"switched": True}

    result = run_events(
        context(root), ["BeforeInstall", "Install", "AfterInstall"], reserved_handlers={"Install": install}, after_event_handlers={"AfterInstall": switched}
    )
    assert calls == ["Install", "after AfterInstall"]
    assert result["events"][1]["install"] == {"files": 3}
    assert result["events"][2]["switched"] is True
    assert root.read_record(GID, "last_successful_install") == root.deployment_dir(GID, DID)
    assert trace.read_text().split() == ["BeforeInstall", "AfterInstall"]


def test_install_failure_stops_and_records_nothing(root):
    write_revision(archive_of(root), {"AfterInstall": ["a.sh"]}, {"a.sh": "#!/bin/sh\n"})

    def install(_ctx):
        raise DeployError("conflict at /opt/x", errors=["conflict"])

    with pytest.raises(HookError, match="Install: conflict at /opt/x") as caught:
        run_events(context(root), ["Install", "AfterInstall"], reserved_handlers={"Install": install})
    assert caught.value.details["events"][0]["errors"] == ["conflict"]
    assert root.read_record(GID, "last_successful_install") is None


def test_check_mode_lists_scripts_and_runs_nothing(root, tmp_path):
    trace = tmp_path / "trace"
    previous = _previous_and_current(root, tmp_path, "#!/bin/sh\ntouch TRACE\n")[0]
    root.write_record(GID, "last_successful_install", previous)
    write_revision(
        archive_of(root),
        {"AfterInstall": ["a.sh", {"location": "b.sh", "runas": "root", "timeout": 9}]},
        {"a.sh": "#!/bin/sh\ntouch %s\n" % trace, "b.sh": "#!/bin/sh\ntouch %s\n" % trace},
    )
    result = run_events(
        context(root, check_mode=True),
        ["ApplicationStop", "Install", "AfterInstall"],
        reserved_handlers={"Install": lambda ctx: {"changed": True, "install": {"check_mode": ctx.check_mode}}},
    )
    stop, install, after = result["events"]
    assert stop["status"] == "skipped" and stop["reason"] == "check mode"
    assert stop["scripts"][0]["path"] == os.path.join(previous, "deployment-archive", "stop.sh")
    assert install["install"] == {"check_mode": True}
    assert [(s["path"], s["runas"], s["timeout"], s["exit_code"]) for s in after["scripts"]] == [
        (os.path.join(archive_of(root), "a.sh"), "root", 60, None),
        (os.path.join(archive_of(root), "b.sh"), "root", 9, None),
    ]
    assert result["changed"] is True
    assert not trace.exists()
    assert not os.path.exists(root.scripts_log(GID, DID))
    assert root.read_record(GID, "last_successful_install") == previous


def test_tail_keeps_whole_lines():
    tail = _hooks._Tail(10)
    for chunk in (b"aaaa\n", b"bbbb\n", b"cc\n"):
        tail.add(chunk)
    assert tail.text() == "bbbb\ncc\n"
    tail = _hooks._Tail(100)
    tail.add(b"x\ny\n")
    assert tail.text() == "x\ny\n"


@pytest.mark.parametrize(
    "limit, chunks, expected",
    [
        (12, [b"19999\n20000\n"], "19999\n20000\n"),
        (12, [b"1\n", b"19999\n20000\n"], "19999\n20000\n"),
        (11, [b"19999\n20000\n"], "20000\n"),
        (5, [b"abcdefgh"], "defgh"),  # one long line: no line start to go to
        (0, [b"abc\n"], ""),
    ],
)
def test_tail_table(limit, chunks, expected):
    tail = _hooks._Tail(limit)
    for chunk in chunks:
        tail.add(chunk)
    assert tail.text() == expected


def test_runas_user_who_cannot_reach_the_script_gets_a_hint(test_user, tmp_path):
    # tmp_path sits below a 0700 directory: the user cannot search it
    path = script(tmp_path, "#!/bin/sh\necho hi\n")
    user = _hooks.lookup_user(test_user[0])
    result = run_script(plan(path, runas=user.name, user=user), variables={}, log=_hooks.ScriptsLog(None))
    assert result["failed"] and result["exit_code"] is None
    assert "failed to start" in result["msg"] and "searchable (o+x)" in result["msg"]


def test_missing_script_of_the_previous_revision_names_the_event_once(root, tmp_path):
    previous = root.deployment_dir(GID, "d-PREVIOUS1")
    write_revision(os.path.join(previous, "deployment-archive"), {"ApplicationStop": ["gone.sh"]}, {})
    root.write_record(GID, "last_successful_install", previous)
    write_revision(archive_of(root), {}, {})
    with pytest.raises(HookError) as caught:
        run_events(context(root), ["ApplicationStop"])
    assert str(caught.value).startswith("ApplicationStop: script 'gone.sh' does not exist")
    assert "ignore_application_stop_failures" in str(caught.value)


# --- the last successful revision has no appspec.json (the CodeDeploy agent deployed it) ------------


def _agent_previous_and_current(root, tmp_path):
    """A previous revision as the agent leaves it (no appspec.json) and the new one; both scripts leave a trace."""
    trace = tmp_path / "trace"
    previous = root.deployment_dir(GID, "d-AGENT0001")
    write_revision(os.path.join(previous, "deployment-archive"), {"ApplicationStop": ["stop.sh"]},
                   {"stop.sh": "#!/bin/sh\necho previous $LIFECYCLE_EVENT $DEPLOYMENT_ID >> %s\n" % trace},
                   appspec_json=False)
    root.write_record(GID, "last_successful_install", previous)
    write_revision(archive_of(root), {"BeforeInstall": ["before.sh"]},
                   {"before.sh": "#!/bin/sh\necho new $LIFECYCLE_EVENT >> %s\n" % trace})
    return previous, trace


@pytest.mark.parametrize("check_mode", [False, True])
def test_previous_revision_without_appspec_json_needs_the_controller_before_anything_runs(root, tmp_path, check_mode):
    previous, trace = _agent_previous_and_current(root, tmp_path)
    with pytest.raises(_hooks.AppSpecNeeded) as caught:
        run_events(context(root, check_mode=check_mode), ["ApplicationStop", "BeforeInstall"])
    assert isinstance(caught.value, DeployError)
    assert caught.value.details == {"appspec_needed": {"archive_dir": os.path.join(previous, "deployment-archive"),
                                                       "deployment_dir": previous, "option": "previous_appspec"}}
    assert "has no appspec.json" in str(caught.value)
    assert not trace.exists()  # neither the previous ApplicationStop nor the new BeforeInstall ran
    assert not os.path.exists(root.scripts_log(GID, DID))


def test_previous_revision_without_appspec_json_is_not_needed_for_the_new_revisions_events(root, tmp_path):
    _previous, trace = _agent_previous_and_current(root, tmp_path)
    result = run_events(context(root), ["BeforeInstall"])
    assert result["events"][0]["status"] == "succeeded"
    assert trace.read_text().splitlines() == ["new BeforeInstall"]


def test_previous_appspec_from_the_controller_runs_the_previous_application_stop(root, tmp_path):
    previous, trace = _agent_previous_and_current(root, tmp_path)
    ctx = context(root, previous_appspec=server_appspec({"ApplicationStop": ["stop.sh"]}))
    result = run_events(ctx, ["ApplicationStop", "BeforeInstall"])
    assert [e["status"] for e in result["events"]] == ["succeeded", "succeeded"]
    assert result["events"][0]["scripts"][0]["path"] == os.path.join(previous, "deployment-archive", "stop.sh")
    assert trace.read_text().splitlines() == ["previous ApplicationStop %s" % DID, "new BeforeInstall"]


def test_appspec_json_of_the_previous_revision_wins_over_previous_appspec(root, tmp_path):
    previous, trace = _previous_and_current(root, tmp_path, "#!/bin/sh\necho from-json >> TRACE\n")
    root.write_record(GID, "last_successful_install", previous)
    ctx = context(root, previous_appspec=server_appspec({"ApplicationStop": ["other.sh"]}))
    result = run_events(ctx, ["ApplicationStop"])
    assert result["events"][0]["scripts"][0]["location"] == "stop.sh"
    assert trace.read_text() == "from-json\n"


@pytest.mark.parametrize("ignore", [False, True])
def test_previous_appspec_error_fails_the_event_unless_ignored(root, tmp_path, ignore):
    _previous, trace = _agent_previous_and_current(root, tmp_path)
    message = "the last successful revision's AppSpec cannot be used: appspec.yml: line 3 col 1 hooks: broken"
    ctx = context(root, previous_appspec_error=message, ignore_application_stop_failures=ignore)
    if not ignore:
        with pytest.raises(HookError) as caught:
            run_events(ctx, ["ApplicationStop", "BeforeInstall"])
        assert str(caught.value).startswith("ApplicationStop: " + message)
        assert "ignore_application_stop_failures: true" in str(caught.value)
        assert caught.value.details["failed_event"] == "ApplicationStop"
        assert [e["status"] for e in caught.value.details["events"]] == ["failed", "skipped"]
        assert not trace.exists()
        return
    result = run_events(ctx, ["ApplicationStop", "BeforeInstall"])
    stop, before = result["events"]
    assert stop["status"] == "failed" and stop["ignored"] is True and message in stop["msg"]
    assert before["status"] == "succeeded" and result["failed_event"] is None
    assert trace.read_text().splitlines() == ["new BeforeInstall"]
    assert result["warnings"] and message in result["warnings"][0]
