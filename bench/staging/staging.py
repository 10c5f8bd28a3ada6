"""Benchmark: stage revisions with appspec.deploy.bundle over SSH vs a plain ssh copy + ``tar -x``.

The host is a container from the test-host image (systemd, sshd), reached over real SSH from this
machine, with the project's ansible.cfg (pipelining, ControlMaster/ControlPersist). Ansible and the
plain baselines share ONE multiplexed SSH connection per host and user (the same ControlPath), so
neither pays a connection setup. Revisions are uncompressed tars of 1 MiB random files plus an
appspec.yml: about 10 MB, 200 MB and (``BENCH_STAGING_1G=1``) 1 GB.

Per size, interleaved n times (best of n kept, the machine is shared):

- plain: ``ssh host 'cat > rev.tar' < rev.tar`` + ``ssh host tar -xf rev.tar``; ``scp`` + ``tar -xf`` too;
- bundle: the ``appspec.deploy.bundle`` task as root, the controller knowing the host (one upload + one
  module run); its phases are timed by bench/ansible_timed.py (sftp upload, module run, round trips);
- bundle, cold controller: the controller has never seen the host (probe, upload, module run);
- bundle as ``deploy`` + sudo: the non-root way real fleets log in;
- Ansible copy + tar: ``ansible.builtin.copy`` + ``command: tar -xf`` (what a hand-written playbook does);
- unchanged revision: staged again for a new deployment id and for the same one (time, bytes).

Each ``ansible-playbook`` run stages a tiny revision first (a reuse), so the measured task does not pay
building the module's payload on the controller, a once-per-run cost reported on its own.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "bench"))
sys.path.insert(0, os.path.join(REPO, ".cache", "collections"))

from report import write_section  # noqa: E402
from sshhosts import Hosts  # noqa: E402
import timed_playbook  # noqa: E402

WORK = os.environ.get("BENCH_STAGING_WORK", "/var/tmp/appspec-bench-staging")
CACHE = os.path.join(WORK, "cache")
REMOTE = "/var/lib/appspec-bench"
HOST = "appspec-bench-staging"
SIZES = [("10 MB", 10), ("200 MB", 200)] + ([("1 GB", 1024)] if os.environ.get("BENCH_STAGING_1G") == "1" else [])
REPEAT = {10: 5, 200: 3, 1024: 2}
GROUP = "bench-group"


def make_revision(mib):
    path = os.path.join(WORK, "rev-%d.tar" % mib)
    if os.path.exists(path):
        return path
    src = os.path.join(WORK, "src-%d" % mib)
    shutil.rmtree(src, ignore_errors=True)
    os.makedirs(os.path.join(src, "data"))
    with open(os.path.join(src, "appspec.yml"), "w") as handle:
        handle.write("version: 0.0\nos: linux\nfiles:\n  - source: data\n    destination: /srv/bench\n")
    for number in range(mib):
        with open(os.path.join(src, "data", "f%05d.bin" % number), "wb") as handle:
            handle.write(os.urandom(1024 * 1024))
    subprocess.run(["tar", "-C", src, "-cf", path + ".tmp", "."], check=True)
    os.replace(path + ".tmp", path)
    shutil.rmtree(src)
    return path


PLAYBOOK = """
- hosts: "{{ target }}"
  gather_facts: false
  tasks:
    - name: Connect
      ansible.builtin.ping:
    - name: Warm up
      appspec.deploy.bundle:
        revision: "{{ tiny }}"
        deployment_id: d-WARMUP01
        deployment_group_id: warmup
        root_dir: /var/lib/appspec-bench/warm
    - name: Stage
      appspec.deploy.bundle:
        revision: "{{ revision }}"
        deployment_id: "{{ deployment_id }}"
        deployment_group_id: bench-group
        root_dir: "{{ root_dir }}"
        max_revisions: 3
"""

BASELINE_PLAYBOOK = """
- hosts: "{{ target }}"
  gather_facts: false
  tasks:
    - name: Connect
      ansible.builtin.ping:
    - name: Make the directory
      ansible.builtin.file:
        path: "{{ dest }}/out"
        state: directory
        mode: "0755"
    - name: Copy
      ansible.builtin.copy:
        src: "{{ revision }}"
        dest: "{{ dest }}/rev.tar"
        mode: "0644"
    - name: Untar
      ansible.builtin.command: tar -xf {{ dest }}/rev.tar -C {{ dest }}/out
      changed_when: true
"""


class Bench:
    def __init__(self, hosts):
        self.hosts = hosts
        self.name = hosts.names[0]
        self.counter = 0
        self.tiny = make_revision(1)

    def next_id(self):
        self.counter += 1
        return "d-BENCH%04d" % self.counter

    # -------------------------------------------------------------------------------- plain
    def plain(self, revision, use_scp=False):
        dest = REMOTE + "/plain"
        self.hosts.ssh(self.name, "rm -rf %s && mkdir -p %s/out" % (dest, dest))
        started = time.monotonic()
        if use_scp:
            self.hosts.scp(self.name, revision, dest + "/rev.tar")
        else:
            self.hosts.ssh(self.name, "cat > %s/rev.tar" % dest, stdin_path=revision)
        copied = time.monotonic()
        self.hosts.ssh(self.name, "tar -xf %s/rev.tar -C %s/out" % (dest, dest))
        done = time.monotonic()
        self.hosts.ssh(self.name, "rm -rf %s" % dest)
        return {"total": done - started, "copy": copied - started, "untar": done - copied}

    # -------------------------------------------------------------------------------- ansible
    def _playbook(self, text, target, extra):
        book = os.path.join(WORK, "playbook-%d.yml" % (hash(text) & 0xffff))
        with open(book, "w") as handle:
            handle.write(text)
        extra = dict(extra, target=target, tiny=self.tiny)
        data, records, wall, _proc = timed_playbook.run(book, os.path.join(WORK, "inventory.yml"), extra, WORK,
                                                        APPSPEC_DEPLOY_CACHE_DIR=CACHE)
        tasks = {}
        for task in data["plays"][0]["tasks"]:
            result = task["hosts"][target]
            if result.get("failed") or result.get("unreachable"):
                raise SystemExit("task %s failed: %s" % (task["task"]["name"], result.get("msg")))
            tasks[task["task"]["name"]] = (timed_playbook.task_seconds(task), result,
                                           timed_playbook.timestamp(task["task"]["duration"]["start"]),
                                           timed_playbook.timestamp(task["task"]["duration"]["end"]))
        return tasks, records, wall

    def bundle(self, revision, target, deployment_id, root_dir, known_host=True):
        """Stage ``revision``; with ``known_host`` the controller's cache knows the host (not this revision)."""
        if known_host:
            from ansible_collections.appspec.deploy.plugins.plugin_utils._transfer import StagedCache
            StagedCache(target, root_dir, GROUP, CACHE).add("0" * 64)
        tasks, records, _wall = self._playbook(PLAYBOOK, target, {
            "revision": revision, "deployment_id": deployment_id, "root_dir": root_dir})
        seconds, result, task_start, task_end = tasks["Stage"]
        phases = {}
        stage_records = [record for record in records if record["task"] == "Stage"]
        for record in stage_records:
            phases[record["phase"]] = phases.get(record["phase"], 0.0) + record["seconds"]
        if stage_records:
            # Task start (the strategy queues it) to the first remote call, and the last one to the task's end.
            phases["before"] = min(r["start"] for r in stage_records) - task_start
            phases["after"] = task_end - max(r["start"] + r["seconds"] for r in stage_records)
        warm_payload = sum(r["seconds"] for r in records if r["task"] == "Warm up" and r["phase"] == "payload")
        return {"seconds": seconds, "result": result, "phases": phases, "ping": tasks["Connect"][0],
                "first_task": tasks["Warm up"][0], "payload_build": warm_payload}

    def ansible_copy_tar(self, revision):
        dest = REMOTE + "/plain-ansible"
        self.hosts.ssh(self.name, "rm -rf %s" % dest)
        tasks, _records, _wall = self._playbook(BASELINE_PLAYBOOK, "root", {"revision": revision, "dest": dest})
        self.hosts.ssh(self.name, "rm -rf %s" % dest)
        return tasks["Copy"][0] + tasks["Untar"][0]


def controller_sha256_seconds(path):
    started = time.monotonic()
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(chunk)
    return time.monotonic() - started


def render(rows):
    """The markdown section for docs/benchmarks.md."""
    repeats = ", ".join("%d for %s" % (row["repeat"], row["label"]) for row in rows)
    lines = [
        "## Staging a revision over SSH (`bench/staging/run.sh`)",
        "",
        "One test-host container (systemd, sshd) reached over **real SSH** from the controller with the "
        "project's `ansible.cfg` (pipelining, ControlMaster/ControlPersist). Ansible and the plain baselines "
        "share one multiplexed SSH connection per host and user (same ControlPath), so nobody pays a "
        "handshake. Revisions: uncompressed tars of 1 MiB random files + appspec.yml. Best of n interleaved "
        "runs (%s); the machine (2 cores, container and controller on the same cores) was shared with other "
        "jobs, so expect noise of ±20%%." % repeats,
        "",
        "- **plain**: `ssh host 'cat > rev.tar' < rev.tar` + `ssh host tar -xf rev.tar` (no Ansible); "
        "`scp` + `tar -xf` for reference.",
        "- **bundle**: the `appspec.deploy.bundle` task as root, controller cache knowing the host: "
        "mkdtemp, one sftp upload, one pipelined module run that moves the upload into the deployment dir, "
        "checks every entry, unpacks (sendfile) into a temp dir while a thread checks the sha256, parses the "
        "AppSpec, renames into place and applies retention.",
        "- **cold controller**: the controller has never seen the host (AWX): a probe module run (0 bytes) "
        "first, then the upload and the module run.",
        "- **deploy + sudo**: the same as the non-root user `deploy` with `become` (real fleets).",
        "- **Ansible copy + tar**: the `ansible.builtin.copy` + `command: tar -xf` tasks.",
        "",
        "| revision | bytes | plain ssh cat + tar -x | scp + tar -x | bundle | **bundle / plain** | "
        "bundle, cold controller | bundle, deploy + sudo | Ansible copy + tar | bytes transferred |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append("| %s | %d | %.2f s | %.2f s | %.2f s | **%.2fx** | %.2f s | %.2f s | %.2f s | %d |" % (
            row["label"], row["size"], row["plain"], row["scp"], row["bundle"], row["bundle"] / row["plain"],
            row["cold"], row["become"], row["ansible_copy_tar"], row["transferred"]))
    lines += [
        "",
        "Where the time goes (the best bundle run, timed inside Ansible by `bench/ansible_timed.py`, against "
        "the best plain run): the upload against `ssh cat`, the module run against `ssh tar -xf`, the extra "
        "round trips (`echo ~` + mkdir of the remote temp dir, chmod) and what remains of the task (Ansible's own work in the "
        "worker: templating, result handling).",
        "",
        "| revision | plain: cat | plain: tar -x | bundle: upload (sftp) | bundle: module run | "
        "bundle: other round trips | bundle: rest of the task (before the first / after the last remote call) "
        "| ping task |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        ph = row["phases"]
        module = ph.get("module", 0.0) - ph.get("payload", 0.0)
        trips = ph.get("mkdtemp", 0.0) + ph.get("chmod", 0.0) + ph.get("rm", 0.0)
        rest = row["bundle"] - ph.get("module", 0.0) - ph.get("upload", 0.0) - trips  # Ansible's own work
        lines.append("| %s | %.2f s | %.2f s | %.2f s | %.2f s | %.2f s | %.2f s (%.2f / %.2f) | %.2f s |" % (
            row["label"], row["plain_copy"], row["plain_untar"], ph.get("upload", 0.0), module,
            trips, rest, ph.get("before", 0.0), ph.get("after", 0.0), row["ping"]))
    lines += [
        "",
        "Once per `ansible-playbook` run (not per host): the first `bundle` task builds the module's payload on "
        "the controller (%.2f s here; the first task of the run took %.2f s for an unchanged revision). Once per "
        "new revision file per controller: its sha256 (cached by path, size, mtime and inode): %s." % (
            min(row["payload_build"] for row in rows), min(row["first_task"] for row in rows),
            ", ".join("%.2f s for %s" % (row["controller_sha256"], row["label"]) for row in rows)),
        "",
        "Re-staging an unchanged revision (same sha256 already staged for the group on the host; one module "
        "run, nothing transferred; a new deployment id gets a hard-linked copy):",
        "",
        "| revision | new deployment id: time | bytes | changed | same deployment id: time | bytes |",
        "|---|---:|---:|---|---:|---:|",
    ]
    for row in rows:
        lines.append("| %s | %.2f s | %d | %s | %.2f s | %d |" % (
            row["label"], row["again_new"], row["again_new_bytes"], str(row["again_new_changed"]).lower(),
            row["again_same"], row["again_same_bytes"]))
    if not any(row["label"] == "1 GB" for row in rows):
        lines += ["", "(1 GB case skipped: run with `BENCH_STAGING_1G=1`.)"]
    return "\n".join(lines)


def write_inventory(hosts):
    name = hosts.names[0]
    inventory = {"all": {"hosts": {
        "root": hosts.inventory_host(name, "root"),
        "deploy": hosts.inventory_host(name, "deploy", become=True),
    }}}
    with open(os.path.join(WORK, "inventory.yml"), "w") as handle:
        json.dump(inventory, handle, indent=1)  # JSON is YAML


def measure(bench, label, mib, revision):
    size = os.path.getsize(revision)
    best = {}

    def keep(key, value, extra=None):
        if key not in best or value < best[key][0]:
            best[key] = (value, extra)

    for attempt in range(REPEAT[mib]):
        plain = bench.plain(revision)
        keep("plain", plain["total"], plain)
        keep("scp", bench.plain(revision, use_scp=True)["total"])
        root = "%s/root-%d-%d" % (REMOTE, mib, attempt)
        run = bench.bundle(revision, "root", bench.next_id(), root)
        assert run["result"]["changed"] and not run["result"]["reused"], run["result"]
        keep("bundle", run["seconds"], run)
        bench.hosts.ssh(bench.name, "rm -rf %s" % root)
        shutil.rmtree(os.path.join(CACHE, "hosts"), ignore_errors=True)
        cold = bench.bundle(revision, "root", bench.next_id(), root + "-cold", known_host=False)
        assert cold["result"]["changed"], cold["result"]
        keep("cold", cold["seconds"])
        bench.hosts.ssh(bench.name, "rm -rf %s-cold" % root)
        become = bench.bundle(revision, "deploy", bench.next_id(), root + "-deploy")
        assert become["result"]["changed"], become["result"]
        keep("become", become["seconds"])
        bench.hosts.ssh(bench.name, "rm -rf %s-deploy" % root)
        keep("ansible_copy_tar", bench.ansible_copy_tar(revision))
        print("  %s attempt %d: plain %.2f s, bundle %.2f s" % (label, attempt + 1, plain["total"], run["seconds"]),
              flush=True)
    # Unchanged revision: staged once more into a root that has it, for a new and for the same id.
    root = "%s/root-%d-again" % (REMOTE, mib)
    first = bench.bundle(revision, "root", bench.next_id(), root)
    assert first["result"]["changed"], first["result"]
    news, sames = [], []
    for _attempt in range(max(2, REPEAT[mib])):
        new_id = bench.next_id()
        res_new = bench.bundle(revision, "root", new_id, root)
        res_same = bench.bundle(revision, "root", new_id, root)
        assert res_new["result"]["reused"] and res_same["result"]["reused"], (res_new["result"], res_same["result"])
        news.append(res_new["seconds"])
        sames.append(res_same["seconds"])
    bench.hosts.ssh(bench.name, "rm -rf %s" % root)
    run = best["bundle"][1]
    return dict(
        label=label, size=size, repeat=REPEAT[mib],
        plain=best["plain"][0], plain_copy=best["plain"][1]["copy"], plain_untar=best["plain"][1]["untar"],
        scp=best["scp"][0], bundle=best["bundle"][0], cold=best["cold"][0], become=best["become"][0],
        ansible_copy_tar=best["ansible_copy_tar"][0], transferred=run["result"]["bytes_transferred"],
        phases=run["phases"], ping=run["ping"], first_task=run["first_task"], payload_build=run["payload_build"],
        controller_sha256=controller_sha256_seconds(revision),
        again_new=min(news), again_new_bytes=res_new["result"]["bytes_transferred"],
        again_new_changed=res_new["result"]["changed"],
        again_same=min(sames), again_same_bytes=res_same["result"]["bytes_transferred"])


def main():
    os.makedirs(WORK, exist_ok=True)
    shutil.rmtree(CACHE, ignore_errors=True)
    print("staging bench: preparing revisions and the SSH host", flush=True)
    revisions = {mib: make_revision(mib) for _label, mib in SIZES}
    rows = []
    with Hosts(HOST, 1, WORK) as hosts:
        write_inventory(hosts)
        hosts.ssh(hosts.names[0], "mkdir -p %s && chmod 0755 %s" % (REMOTE, REMOTE))
        bench = Bench(hosts)
        for label, mib in SIZES:
            rows.append(measure(bench, label, mib, revisions[mib]))
            print(json.dumps(rows[-1]), flush=True)
    text = render(rows)
    write_section("staging", text)
    print(text)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--render":
        # Re-render the section from the JSON rows a previous run printed (one per line).
        with open(sys.argv[2]) as log:
            ROWS = [json.loads(line) for line in log if line.startswith("{")]
        write_section("staging", render(ROWS))
        print(render(ROWS))
    else:
        main()
