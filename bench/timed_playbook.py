"""Run a playbook through bench/ansible_timed.py and read back its JSON result and phase records.

Shared by the staging and fleet benchmarks: the JSON stdout callback gives per-task start and end
times; ansible_timed.py writes one line per action phase (module run, upload, ...) to BENCH_PHASES.
``run_measured`` also measures the controller's cost of the run: the CPU time (user + system) of
``ansible-playbook`` and every process it reaped (workers, ``ssh`` clients: ``os.wait4``), and its
process tree's memory, sampled from /proc (``TreeSampler``).
"""

from __future__ import annotations

import datetime
import json
import os
import resource
import subprocess
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(book, inventory, extra, work_dir, **env_extra):
    """(JSON result, phase records, wall seconds, completed process); SystemExit when stdout is not JSON."""
    data, records, wall, proc, dummy = run_measured(book, inventory, extra, work_dir, **env_extra)
    return data, records, wall, proc


def run_measured(book, inventory, extra, work_dir, **env_extra):
    """``run`` plus the controller's cost: (data, records, wall, completed process, measure).

    ``measure``: ``cpu_user`` / ``cpu_sys`` (seconds, ``ansible-playbook`` and all the descendants it
    reaped, from ``os.wait4``), ``maxrss_kb`` (the largest single process's peak RSS, from the same
    rusage), ``peak_rss_kb`` / ``peak_pss_kb`` (the peak of the summed RSS / PSS of its live process tree,
    sampled from /proc), ``samples``, ``started`` / ``ended`` (epoch seconds, to place the JSON
    callback's timestamps).
    """
    phases = os.path.join(work_dir, "phases.jsonl")
    if os.path.exists(phases):
        os.unlink(phases)
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"),
               BENCH_PHASES=phases, **env_extra)
    cmd = [os.path.join(REPO, ".venv", "bin", "python"), os.path.join(REPO, "bench", "ansible_timed.py"),
           "-i", inventory, book, "-e", json.dumps(extra)]
    # Output goes to files, not pipes: the child is reaped here with os.wait4 (its rusage), not by Popen.
    with tempfile.TemporaryFile(dir=work_dir) as out_file, tempfile.TemporaryFile(dir=work_dir) as err_file:
        started, started_epoch = time.monotonic(), time.time()
        child = subprocess.Popen(cmd, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=out_file, stderr=err_file)
        sampler = TreeSampler(child.pid)
        sampler.start()
        dummy, status, usage = os.wait4(child.pid, 0)
        wall, ended_epoch = time.monotonic() - started, time.time()
        child.returncode = os.waitstatus_to_exitcode(status)  # reaped: Popen must not wait for it again
        sampler.stop()
        out_file.seek(0)
        err_file.seek(0)
        proc = subprocess.CompletedProcess(cmd, child.returncode, out_file.read(), err_file.read())
    measure = {"cpu_user": usage.ru_utime, "cpu_sys": usage.ru_stime, "maxrss_kb": usage.ru_maxrss,
               "peak_rss_kb": sampler.peak_rss_kb, "peak_pss_kb": sampler.peak_pss_kb, "samples": sampler.samples,
               "started": started_epoch, "ended": ended_epoch}
    out = proc.stdout.decode(errors="replace")
    try:
        # raw_decode: an aggregate callback may print after the JSON document.
        data = json.JSONDecoder().raw_decode(out.lstrip())[0]
    except ValueError:
        raise SystemExit("%s: output is not JSON:\n%s\n%s" % (book, out[-3000:], proc.stderr.decode()[-3000:]))
    records = []
    if os.path.exists(phases):
        with open(phases) as handle:
            records = [json.loads(line) for line in handle]
    return data, records, wall, proc, measure


PAGE_KB = resource.getpagesize() // 1024


class TreeSampler:
    """Peak summed memory of a process tree (``root`` and its live descendants), sampled from /proc.

    Every ``interval`` seconds: RSS of each process of the tree (``/proc/PID/stat``), summed; every
    ``pss_every``-th sample also PSS (``/proc/PID/smaps_rollup``: shared pages divided among the
    processes sharing them, so forked workers are not counted once per fork). With ``include_root``
    false the root itself is left out (to measure the children of this very process).
    """

    def __init__(self, root, interval=0.1, pss_every=5, include_root=True):
        self.root = root
        self.interval = interval
        self.pss_every = pss_every
        self.include_root = include_root
        self.peak_rss_kb = 0
        self.peak_pss_kb = 0
        self.samples = 0
        self._outside = set()  # pids seen outside the tree
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self):
        self._thread.start()

    def stop(self):
        self._stop.set()
        self._thread.join()

    def _loop(self):
        while True:
            self.sample()
            if self._stop.wait(self.interval):
                return

    def tree(self):
        """{pid: rss_kb} of the tree's live processes.

        A process found outside the tree stays outside (a process cannot join a tree after it started), so
        its /proc entry is not read again while it lives: each sample reads only the tree and new processes.
        """
        entries = {int(entry) for entry in os.listdir("/proc") if entry.isdigit()}
        self._outside &= entries  # forget the dead: a reused pid is read again
        parent, rss = {}, {}
        for pid in entries - self._outside:
            try:
                with open("/proc/%d/stat" % pid, "rb") as handle:
                    stat = handle.read()
            except OSError:
                continue
            fields = stat[stat.rindex(b")") + 2:].split()  # after "pid (comm) "; comm may hold spaces
            parent[pid] = int(fields[1])
            rss[pid] = int(fields[21]) * PAGE_KB
        children = {}
        for pid, ppid in parent.items():
            children.setdefault(ppid, []).append(pid)
        found, reached, todo = {}, set(), [self.root]
        while todo:
            pid = todo.pop()
            reached.add(pid)
            if pid in rss and (pid != self.root or self.include_root):
                found[pid] = rss[pid]
            todo.extend(children.get(pid, ()))
        self._outside |= set(parent) - reached
        return found

    def sample(self):
        tree = self.tree()
        self.samples += 1
        self.peak_rss_kb = max(self.peak_rss_kb, sum(tree.values()))
        if self.samples % self.pss_every == 1 or self.pss_every == 1:
            pss = 0
            for pid in tree:
                try:
                    with open("/proc/%d/smaps_rollup" % pid) as handle:
                        for line in handle:
                            if line.startswith("Pss:"):
                                pss += int(line.split()[1])
                                break
                except OSError:
                    continue
            self.peak_pss_kb = max(self.peak_pss_kb, pss)


def timestamp(text):
    return datetime.datetime.strptime(text.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


def task_seconds(task):
    return timestamp(task["task"]["duration"]["end"]) - timestamp(task["task"]["duration"]["start"])
