"""Benchmark: deploy examples/webapp to fleets of 10 and 20 SSH hosts, per host, against simpler ways.

Containers from the test-host image (systemd, sshd) are reached over real SSH as the non-root user
``deploy`` with sudo (``become``), as real fleets are, with the project's ansible.cfg (pipelining,
ControlMaster/ControlPersist). ``BENCH_FLEET_HOSTS`` lists the fleet sizes (default ``10,20``): the
largest fleet is started once and every smaller one is its first hosts, so each size measures every
method in the same invocation. Both Ansible methods run with the same forks (``BENCH_FLEET_FORKS``,
default the largest size: every host of a fleet in parallel). Every deployment ships a NEW revision
(examples/webapp with its VERSION changed), so every method really transfers and unpacks; each method
deploys to hosts that already run a previous version of the application (a warm-up round per size
first, not counted), as in steady state.

Methods, at each size on the same hosts, taking turns (each deploys over what the previous one left
running):

- ``appspec``: ``ansible-playbook playbooks/deploy.yml`` with ``CodeDeployDefault.AllAtOnce`` in release
  mode (``/opt/appspec-example``): every lifecycle event, hooks, Install, release switch;
- ``handwritten``: bench/fleet/handwritten.yml, 6 tasks (copy, unarchive, stop, symlink, start,
  validate) with the example's own scripts;
- ``ssh + tar``: two ``ssh`` commands per host, hosts in parallel (``tar -xz`` from stdin; then stop,
  switch the symlink, start, validate).

Reported, a row per (fleet size, method): wall time of the whole run, wall time / hosts, the ratio to the
hand-written playbook's wall time at the same size, the task time of each host (the sum of the
durations of the tasks that ran on it), tasks run per host and module runs per host over SSH (timed
inside Ansible by bench/ansible_timed.py).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
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
SIZES = sorted({int(size) for size in os.environ.get("BENCH_FLEET_HOSTS", "10,20").split(",") if size.strip()})
RUNS = int(os.environ.get("BENCH_FLEET_RUNS", "2"))
FORKS = int(os.environ.get("BENCH_FLEET_FORKS", str(max(SIZES))))
if FORKS < max(SIZES):
    raise SystemExit("BENCH_FLEET_FORKS=%d is below the largest fleet (%d hosts): the comparison would not run "
                     "every host in parallel" % (FORKS, max(SIZES)))
PREFIX = "appspec-bench-fleet"
RELEASE_ROOT = "/opt/appspec-example"
RESET = ("systemctl stop appspec-example.service 2>/dev/null; systemctl reset-failed appspec-example.service "
         "2>/dev/null; pkill -f '[s]erver[.]py'; rm -rf /opt/appspec-example /var/lib/appspec-example "
         "/opt/codedeploy-agent /home/deploy/.ansible/tmp")


class Fleet:
    """The first ``size`` hosts of the started containers (``use``), with their own inventory."""

    def __init__(self, hosts):
        self.hosts = hosts
        self.version = 0
        self.names = list(hosts.names)
        self.inventory = None

    def use(self, size):
        self.names = self.hosts.names[:size]
        self.inventory = write_inventory(self.hosts, self.names)

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
        data, records, wall, proc = timed_playbook.run(book, self.inventory, extra, WORK,
                                                       APPSPEC_DEPLOY_CACHE_DIR=os.path.join(WORK, "cache"),
                                                       ANSIBLE_FORKS=str(FORKS))
        if proc.returncode != 0:
            log = os.path.join(WORK, "failed-%s.json" % label)
            with open(log, "w") as handle:
                handle.write(proc.stdout.decode(errors="replace"))
            raise SystemExit("%s: ansible-playbook failed (rc %d), output in %s" % (label, proc.returncode, log))
        return self.summarize(data, records, wall)

    def summarize(self, data, records, wall):
        names = self.names
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
        address_to_name = {self.hosts.addresses[name]: name for name in names}
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
        for name in self.names:
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
        threads = [threading.Thread(target=one, args=(name,)) for name in self.names]
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
        for name in self.names:
            body = self.hosts.ssh(name, "curl -fsS http://127.0.0.1:8080/")
            if "version=%s" % version not in body.split():
                raise SystemExit("%s serves %r, not version %s" % (name, body.strip(), version))

    def reset(self):
        for name in self.hosts.names:  # every started host, whatever the size in use
            self.hosts.ssh(name, RESET)


def write_inventory(hosts, names):
    fleet = {name: hosts.inventory_host(name, "deploy", become=True) for name in names}
    inventory = {"all": {"children": {"fleet": {"hosts": fleet}}}}
    path = os.path.join(WORK, "inventory-%d.yml" % len(names))
    with open(path, "w") as handle:
        json.dump(inventory, handle, indent=1)  # JSON is YAML
    return path


def ensure_inotify(count):
    """systemd in every container takes inotify instances: 20 containers exhaust the default 128."""
    path = "/proc/sys/fs/inotify/max_user_instances"
    want = max(1024, 32 * count)
    try:
        with open(path) as handle:
            have = int(handle.read())
    except (OSError, ValueError):
        return
    if have >= want:
        return
    try:
        with open(path, "w") as handle:
            handle.write(str(want))
    except OSError:
        raise SystemExit("fs.inotify.max_user_instances is %d, too low for %d systemd containers: run "
                         "scripts/bootstrap.sh --hosts (or sysctl -w fs.inotify.max_user_instances=%d) as root"
                         % (have, count, want))


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
TARGET = 0.8  # deploy.yml / hand-written wall time at the largest fleet (issue 9)


def render(results, runs=RUNS, forks=FORKS):
    """``results``: {size: {method: aggregate}}."""
    sizes = sorted(results)
    lines = [
        "## Deploying to a fleet over SSH (`bench/fleet/run.sh`)",
        "",
        "examples/webapp deployed to fleets of %s test-host containers (systemd, sshd) reached over real SSH as "
        "the non-root user `deploy` with sudo (`become`), with the project's `ansible.cfg` (pipelining, "
        "ControlMaster/ControlPersist). Both Ansible methods run with **forks %d** (`ANSIBLE_FORKS`, the same "
        "for both, at least the largest fleet: every host in parallel). The %d containers are started once; a "
        "smaller fleet is their first hosts, and every size measures all three methods in the same invocation. "
        "Every run ships a **new** revision (VERSION changed) to hosts already running the previous one (a "
        "warm-up round per size first, not counted); each host is checked to serve the new version afterwards. "
        "The methods take turns on the same hosts, %d round%s per size in a rotating order; best run per method "
        "(by wall time) shown, all runs listed: the machine (%d cores, shared with other jobs, controller and "
        "all hosts on the same cores) is noisy, so compare the ratios more than the seconds." % (
            " and ".join(str(size) for size in sizes), forks, max(sizes), runs, "" if runs == 1 else "s",
            os.cpu_count() or 0),
        "",
        "- **wall / host**: the whole run's wall time (`ansible-playbook` start to end, controller plays "
        "included) divided by the number of hosts.",
        "- **/ hand-written**: the wall time against the hand-written playbook's at the same fleet size.",
        "- **task time per host**: the sum of the durations of the tasks that ran on the host (hosts run each "
        "task in parallel, so this is close to the wall time of the host plays).",
        "- **tasks / host**: tasks that ran on the host (skipped ones not counted); **module runs / host**: "
        "modules executed on the host over SSH (one pipelined SSH command each); **uploads / host**: files "
        "sent (sftp).",
        "",
        "| hosts | method | wall (best) | all runs | wall / host | / hand-written | task time per host "
        "| tasks / host | module runs / host | uploads / host | controller-only tasks |",
        "|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size in sizes:
        hand = results[size]["handwritten"]["wall"]
        for key, label in LABELS:
            row = results[size][key]
            ratio = "%.2fx" % (row["wall"] / hand)
            if key == "appspec":
                ratio = "**%s**" % ratio
            lines.append("| %d | %s | %.2f s | %s | %.2f s | %s | %.2f s | %.2f | %.2f | %.2f | %.2f s |" % (
                size, label, row["wall"], ", ".join("%.1f" % w for w in row["walls"]), row["per_host_wall"],
                ratio, row["task_seconds"], row["tasks"], row["modules"], row["uploads"], row["controller_tasks"]))
    lines.append("")
    for size in sizes:
        app, hand, plain = results[size]["appspec"], results[size]["handwritten"], results[size]["plain"]
        lines.append(
            "- %d hosts: `deploy.yml` takes %.2fx the hand-written playbook's wall time (%.2fx its task time per "
            "host) and %.1fx plain ssh + tar's. Outside the hosts' tasks, `deploy.yml` spends %.2f s in "
            "controller-only tasks (resolving and validating the revision before any host is touched, the "
            "outcome, the report) and %.2f s starting `ansible-playbook` and its plays; the hand-written "
            "playbook %.2f s." % (
                size, app["wall"] / hand["wall"], app["task_seconds"] / hand["task_seconds"],
                app["wall"] / plain["wall"], app["controller_tasks"],
                app["wall"] - app["task_seconds"] - app["controller_tasks"], hand["wall"] - hand["task_seconds"]))
    largest = max(sizes)
    ratio = results[largest]["appspec"]["wall"] / results[largest]["handwritten"]["wall"]
    lines += [
        "",
        "Target (at %d hosts, `deploy.yml` at most %.1fx the hand-written playbook's wall time): %.2fx, %s. "
        "Fractional task counts: `run_once` tasks count on one host only." % (
            largest, TARGET, ratio, "met" if ratio <= TARGET else "**not met**"),
    ]
    return "\n".join(lines)


def main():
    # A SIGTERM (timeout, CI cancel) unwinds like Ctrl-C, so that the containers are removed.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))
    os.makedirs(WORK, exist_ok=True)
    shutil.rmtree(os.path.join(WORK, "revisions"), ignore_errors=True)
    shutil.rmtree(os.path.join(WORK, "cache"), ignore_errors=True)
    count = max(SIZES)
    ensure_inotify(count)
    started = time.monotonic()
    print("fleet bench: sizes %s, %d run(s) per method, forks %d; starting %d SSH hosts" % (
        ",".join(map(str, SIZES)), RUNS, FORKS, count), flush=True)
    results = {}
    with Hosts(PREFIX, count, WORK) as hosts:
        print("  %d hosts up in %.0f s" % (count, time.monotonic() - started), flush=True)
        fleet = Fleet(hosts)
        methods = {
            "appspec": lambda version, src, bundle: fleet.appspec(src, version),
            "handwritten": lambda version, src, bundle: fleet.handwritten(bundle, version),
            "plain": lambda version, src, bundle: fleet.plain(bundle, version),
        }
        fleet.reset()
        order = [key for key, _label in LABELS]
        for size in SIZES:
            fleet.use(size)
            runs = {key: [] for key in methods}
            # Round 0 is the warm-up (no previous version running yet on hosts new to this size). Then
            # the methods take turns, in a rotating order, so that load from other jobs on the machine
            # hits every method alike; each deploys over what the previous one left running (same
            # release root, same pid file).
            for attempt in range(RUNS + 1):
                for key in order[attempt % len(order):] + order[:attempt % len(order)]:
                    version, src, bundle = fleet.new_revision()
                    result = methods[key](version, src, bundle)
                    fleet.serving(version)
                    print("  %d hosts, round %d %s: %.2f s wall (%.0f s elapsed)" % (
                        size, attempt, key, result["wall"], time.monotonic() - started), flush=True)
                    if attempt:
                        runs[key].append(result)
            results[size] = {key: aggregate(runs[key]) for key in order}
            for key in order:
                print(json.dumps({"size": size, "method": key, "result": results[size][key]}), flush=True)
        fleet.reset()
    text = render(results)
    write_section("fleet", text)
    print(text)
    print("fleet bench: %.0f s in all" % (time.monotonic() - started), flush=True)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--render":
        # Re-render the section from the JSON lines a previous run printed (same BENCH_FLEET_* settings).
        RESULTS = {}
        with open(sys.argv[2]) as log:
            for line in log:
                if line.startswith("{"):
                    item = json.loads(line)
                    RESULTS.setdefault(item["size"], {})[item["method"]] = item["result"]
        write_section("fleet", render(RESULTS))
        print(render(RESULTS))
    else:
        main()
