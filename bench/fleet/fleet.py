"""Benchmark: deploy examples/webapp to a fleet of 4 SSH hosts, per host, against simpler ways.

Four containers from the test-host image (systemd, sshd) are reached over real SSH as the non-root
user ``deploy`` with sudo (``become``), as real fleets are, with the project's ansible.cfg (pipelining,
ControlMaster/ControlPersist). Every deployment ships a NEW revision (examples/webapp with its VERSION
changed), so every method really transfers and unpacks; each method deploys to hosts that already run
a previous version of the application (a warm-up round first, not counted), as in steady state.

Methods, on the same hosts, taking turns (each deploys over what the previous one left running):

- ``appspec``: ``ansible-playbook playbooks/deploy.yml`` with ``CodeDeployDefault.AllAtOnce`` in release
  mode (``/opt/appspec-example``): every lifecycle event, hooks, Install, release switch;
- ``handwritten``: bench/fleet/handwritten.yml, 6 tasks (copy, unarchive, stop, symlink, start,
  validate) with the example's own scripts;
- ``ssh + tar``: two ``ssh`` commands per host, hosts in parallel (``tar -xz`` from stdin; then stop,
  switch the symlink, start, validate).

Reported: wall time of the whole run, wall time / hosts, the task time of each host (the sum of the
durations of the tasks that ran on it), tasks run per host and module runs per host over SSH (timed
inside Ansible by bench/ansible_timed.py).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tarfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "bench"))

from report import write_section  # noqa: E402
from sshhosts import Hosts  # noqa: E402
import timed_playbook  # noqa: E402

WORK = os.environ.get("BENCH_FLEET_WORK", "/var/tmp/appspec-bench-fleet")
HOSTS = int(os.environ.get("BENCH_FLEET_HOSTS", "4"))
RUNS = int(os.environ.get("BENCH_FLEET_RUNS", "3"))
PREFIX = "appspec-bench-fleet"
RELEASE_ROOT = "/opt/appspec-example"
RESET = ("systemctl stop appspec-example.service 2>/dev/null; systemctl reset-failed appspec-example.service "
         "2>/dev/null; pkill -f '[s]erver[.]py'; rm -rf /opt/appspec-example /var/lib/appspec-example "
         "/opt/codedeploy-agent /home/deploy/.ansible/tmp")


class Fleet:
    def __init__(self, hosts):
        self.hosts = hosts
        self.version = 0

    def new_revision(self):
        """A copy of examples/webapp with a new VERSION: (version, directory, tar.gz with a top folder)."""
        self.version += 1
        version = "bench-%d-%d" % (os.getpid(), self.version)
        src = os.path.join(WORK, "revisions", version)
        shutil.rmtree(src, ignore_errors=True)
        shutil.copytree(os.path.join(REPO, "examples", "webapp"), src, symlinks=True)
        with open(os.path.join(src, "app", "VERSION"), "w") as handle:
            handle.write(version + "\n")
        bundle = src + ".tgz"
        with tarfile.open(bundle, "w:gz") as archive:
            archive.add(src, arcname=version)
        return version, src, bundle

    # ------------------------------------------------------------------------------- ansible
    def playbook(self, book, extra, label):
        data, records, wall, proc = timed_playbook.run(book, os.path.join(WORK, "inventory.yml"), extra, WORK,
                                                       APPSPEC_DEPLOY_CACHE_DIR=os.path.join(WORK, "cache"),
                                                       ANSIBLE_FORKS="10")
        if proc.returncode != 0:
            log = os.path.join(WORK, "failed-%s.json" % label)
            with open(log, "w") as handle:
                handle.write(proc.stdout.decode(errors="replace"))
            raise SystemExit("%s: ansible-playbook failed (rc %d), output in %s" % (label, proc.returncode, log))
        return self.summarize(data, records, wall)

    def summarize(self, data, records, wall):
        names = self.hosts.names
        per_host = {name: {"tasks": 0, "task_seconds": 0.0, "modules": 0, "uploads": 0} for name in names}
        controller = 0.0
        for play in data["plays"]:
            for task in play["tasks"]:
                seconds = timed_playbook.task_seconds(task)
                ran = [h for h, res in task["hosts"].items() if not res.get("skipped")]
                if any(h in per_host for h in ran):
                    for host in ran:
                        if host in per_host:
                            per_host[host]["tasks"] += 1
                            per_host[host]["task_seconds"] += seconds
                elif ran:
                    controller += seconds
        address_to_name = {address: name for name, address in self.hosts.addresses.items()}
        for record in records:
            name = address_to_name.get(record["host"])
            if name is None:
                continue
            if record["phase"] == "module":
                per_host[name]["modules"] += 1
            elif record["phase"] == "upload":
                per_host[name]["uploads"] += 1
        return {"wall": wall, "per_host": per_host, "controller_tasks": controller}

    def appspec(self, src, version):
        return self.playbook(os.path.join(REPO, "playbooks", "deploy.yml"), {
            "appspec_revision": src, "appspec_hosts": "fleet", "appspec_application_name": "webapp",
            "appspec_deployment_group_name": "bench", "appspec_release_root": RELEASE_ROOT,
            "appspec_deployment_config": "CodeDeployDefault.AllAtOnce"}, "appspec-" + version)

    def handwritten(self, bundle, version):
        for name in self.hosts.names:
            self.hosts.ssh(name, "mkdir -p %s/releases" % RELEASE_ROOT)
        return self.playbook(os.path.join(HERE, "handwritten.yml"), {
            "handwritten_bundle": bundle, "handwritten_version": version}, "handwritten-" + version)

    # ------------------------------------------------------------------------------- plain
    def plain(self, bundle, version):
        release = "%s/releases/%s" % (RELEASE_ROOT, version)
        unpack = "sudo sh -c 'mkdir -p %s/releases && tar -xzf - -C %s/releases'" % (RELEASE_ROOT, RELEASE_ROOT)
        switch = ("sudo env DEPLOYMENT_ID=%s sh -c '%s/scripts/stop_server.sh && ln -sfn %s/app %s/current.new "
                  "&& mv -T %s/current.new %s/current && %s/scripts/start_server.sh && %s/scripts/validate_service.sh'"
                  % (version, release, release, RELEASE_ROOT, RELEASE_ROOT, RELEASE_ROOT, release, release))
        times = {}
        errors = []

        def one(name):
            started = time.monotonic()
            try:
                self.hosts.ssh(name, unpack, user="deploy", stdin_path=bundle)
                self.hosts.ssh(name, switch, user="deploy")
            except SystemExit as err:
                errors.append(str(err))
            times[name] = time.monotonic() - started

        started = time.monotonic()
        threads = [threading.Thread(target=one, args=(name,)) for name in self.hosts.names]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.monotonic() - started
        if errors:
            raise SystemExit("plain deploy failed: %s" % errors[0])
        per_host = {name: {"tasks": 2, "task_seconds": times[name], "modules": 0, "uploads": 1} for name in times}
        return {"wall": wall, "per_host": per_host, "controller_tasks": 0.0}

    # ------------------------------------------------------------------------------- checks
    def serving(self, version):
        for name in self.hosts.names:
            body = self.hosts.ssh(name, "curl -fsS http://127.0.0.1:8080/")
            if "version=%s" % version not in body.split():
                raise SystemExit("%s serves %r, not version %s" % (name, body.strip(), version))

    def reset(self):
        for name in self.hosts.names:
            self.hosts.ssh(name, RESET)


def write_inventory(hosts):
    fleet = {name: hosts.inventory_host(name, "deploy", become=True) for name in hosts.names}
    inventory = {"all": {"children": {"fleet": {"hosts": fleet}}}}
    with open(os.path.join(WORK, "inventory.yml"), "w") as handle:
        json.dump(inventory, handle, indent=1)  # JSON is YAML


def aggregate(runs):
    """The run with the smallest wall time, with per-host averages."""
    best = min(runs, key=lambda run: run["wall"])
    hosts = list(best["per_host"].values())
    return {
        "wall": best["wall"], "walls": [run["wall"] for run in runs],
        "per_host_wall": best["wall"] / len(hosts),
        "task_seconds": sum(h["task_seconds"] for h in hosts) / len(hosts),
        "tasks": sum(h["tasks"] for h in hosts) / len(hosts),
        "modules": sum(h["modules"] for h in hosts) / len(hosts),
        "uploads": sum(h["uploads"] for h in hosts) / len(hosts),
        "controller_tasks": best["controller_tasks"],
    }


LABELS = [
    ("appspec", "`playbooks/deploy.yml` (AllAtOnce, release mode, every lifecycle event)"),
    ("handwritten", "hand-written 6-task playbook (`bench/fleet/handwritten.yml`)"),
    ("plain", "plain `ssh` + `tar` (2 commands per host, hosts in parallel)"),
]


def render(results, hosts):
    lines = [
        "## Deploying to a fleet over SSH (`bench/fleet/run.sh`)",
        "",
        "examples/webapp deployed to %d test-host containers (systemd, sshd) reached over real SSH as the "
        "non-root user `deploy` with sudo (`become`), with the project's `ansible.cfg` (pipelining, "
        "ControlMaster/ControlPersist, forks 10). Every run ships a **new** revision (VERSION changed) to hosts "
        "already running the previous one (a warm-up round first, not counted); each host is checked to serve "
        "the new version afterwards. The methods take turns on the same hosts, %d rounds in a rotating order; "
        "best run per method (by wall time) shown, all runs listed: the machine (2 cores, shared with other "
        "jobs, controller and all hosts on the same cores) is noisy." % (hosts, RUNS),
        "",
        "- **wall / host**: the whole run's wall time (`ansible-playbook` start to end, controller plays "
        "included) divided by the number of hosts.",
        "- **task time per host**: the sum of the durations of the tasks that ran on the host (hosts run each "
        "task in parallel, so this is close to the wall time of the host plays).",
        "- **tasks / host**: tasks that ran on the host (skipped ones not counted); **module runs / host**: "
        "modules executed on the host over SSH (one pipelined SSH command each); **uploads / host**: files "
        "sent (sftp).",
        "",
        "| method | wall (best) | all runs | wall / host | task time per host | tasks / host | module runs / host "
        "| uploads / host | controller-only tasks |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for key, label in LABELS:
        row = results[key]
        lines.append("| %s | %.2f s | %s | %.2f s | %.2f s | %.1f | %.1f | %.1f | %.2f s |" % (
            label, row["wall"], ", ".join("%.1f" % w for w in row["walls"]), row["per_host_wall"],
            row["task_seconds"], row["tasks"], row["modules"], row["uploads"], row["controller_tasks"]))
    app, hand, plain = results["appspec"], results["handwritten"], results["plain"]
    lines += [
        "",
        "`deploy.yml` against the hand-written playbook: %.2fx the wall time, %.2fx the task time per host; "
        "against plain ssh + tar: %.1fx the wall time. Outside the hosts' tasks, `deploy.yml` spends %.2f s in "
        "controller-only tasks (resolving and validating the revision before any host is touched, the outcome, "
        "the report) and %.2f s starting `ansible-playbook` and its plays; the hand-written playbook %.2f s. "
        "Fractional task counts: `run_once` tasks count on one host only." % (
            app["wall"] / hand["wall"], app["task_seconds"] / hand["task_seconds"], app["wall"] / plain["wall"],
            app["controller_tasks"], app["wall"] - app["task_seconds"] - app["controller_tasks"],
            hand["wall"] - hand["task_seconds"]),
    ]
    return "\n".join(lines)


def main():
    os.makedirs(WORK, exist_ok=True)
    shutil.rmtree(os.path.join(WORK, "revisions"), ignore_errors=True)
    shutil.rmtree(os.path.join(WORK, "cache"), ignore_errors=True)
    print("fleet bench: starting %d SSH hosts" % HOSTS, flush=True)
    results = {}
    with Hosts(PREFIX, HOSTS, WORK) as hosts:
        write_inventory(hosts)
        fleet = Fleet(hosts)
        methods = {
            "appspec": lambda version, src, bundle: fleet.appspec(src, version),
            "handwritten": lambda version, src, bundle: fleet.handwritten(bundle, version),
            "plain": lambda version, src, bundle: fleet.plain(bundle, version),
        }
        runs = {key: [] for key in methods}
        fleet.reset()
        # Round 0 is the warm-up (no previous version running yet). Then the methods take turns, in a
        # rotating order, so that load from other jobs on the machine hits every method alike; each
        # deploys over what the previous one left running (same release root, same pid file).
        order = [key for key, _label in LABELS]
        for attempt in range(RUNS + 1):
            for key in order[attempt % len(order):] + order[:attempt % len(order)]:
                version, src, bundle = fleet.new_revision()
                result = methods[key](version, src, bundle)
                fleet.serving(version)
                print("  round %d %s: %.2f s wall" % (attempt, key, result["wall"]), flush=True)
                if attempt:
                    runs[key].append(result)
        for key in order:
            results[key] = aggregate(runs[key])
            print(json.dumps({key: results[key]}), flush=True)
        fleet.reset()
    text = render(results, HOSTS)
    write_section("fleet", text)
    print(text)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--render":
        # Re-render the section from the JSON lines a previous run printed.
        RESULTS = {}
        with open(sys.argv[2]) as log:
            for line in log:
                if line.startswith("{"):
                    RESULTS.update(json.loads(line))
        write_section("fleet", render(RESULTS, HOSTS))
        print(render(RESULTS, HOSTS))
    else:
        main()
