"""Run a playbook through bench/ansible_timed.py and read back its JSON result and phase records.

Shared by the staging and fleet benchmarks: the JSON stdout callback gives per-task start and end
times; ansible_timed.py writes one line per action phase (module run, upload, ...) to BENCH_PHASES.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(book, inventory, extra, work_dir, **env_extra):
    """(JSON result, phase records, wall seconds, completed process); SystemExit when stdout is not JSON."""
    phases = os.path.join(work_dir, "phases.jsonl")
    if os.path.exists(phases):
        os.unlink(phases)
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"),
               BENCH_PHASES=phases, **env_extra)
    started = time.monotonic()
    proc = subprocess.run(
        [os.path.join(REPO, ".venv", "bin", "python"), os.path.join(REPO, "bench", "ansible_timed.py"),
         "-i", inventory, book, "-e", json.dumps(extra)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    wall = time.monotonic() - started
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
    return data, records, wall, proc


def timestamp(text):
    return datetime.datetime.strptime(text.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


def task_seconds(task):
    return timestamp(task["task"]["duration"]["end"]) - timestamp(task["task"]["duration"]["start"])
