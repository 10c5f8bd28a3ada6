"""Benchmark: deploy examples/webapp to fleets of 1 to 40 SSH hosts, AllAtOnce and OneAtATime, against simpler ways.

Containers from the test-host image (systemd, sshd) are reached over real SSH as the non-root user
``deploy`` with sudo (``become``), as real fleets are, with the project's ansible.cfg (pipelining,
ControlMaster/ControlPersist). ``BENCH_FLEET_HOSTS`` lists the fleet sizes (default ``1,5,10,20,40``):
the largest fleet is started once and every smaller one is its first hosts, so each size measures every
method in the same invocation. Both Ansible methods run with the same forks (``BENCH_FLEET_FORKS``,
default the largest size: every host of a fleet in parallel). Every deployment ships a NEW revision
(examples/webapp with its VERSION changed), so every method really transfers and unpacks; each method
deploys to hosts that already run a previous version of the application (a warm-up deployment by
deploy.yml to the hosts new to each size first, not counted), as in steady state.

Strategies (``BENCH_FLEET_STRATEGIES``, default both), each method with its own way of doing it:

- ``AllAtOnce``: ``CodeDeployDefault.AllAtOnce``; the hand-written playbook without ``serial``; plain
  ssh + tar to every host in parallel;
- ``OneAtATime``: ``CodeDeployDefault.OneAtATime``; the hand-written playbook with ``serial: 1``; plain
  ssh + tar to one host after the other. ``BENCH_FLEET_RUNS`` rounds (2) at every size but the largest,
  where OneAtATime runs ``BENCH_FLEET_SERIAL_RUNS_LARGEST`` rounds (1), to fit the time budget
  (``BENCH_FLEET_SERIAL_RUNS``: OneAtATime's rounds at the other sizes, default ``BENCH_FLEET_RUNS``).

Methods, at each size and strategy on the same hosts, taking turns (each deploys over what the previous
one left running):

- ``appspec``: ``ansible-playbook playbooks/deploy.yml`` in release mode (``/opt/appspec-example``): every
  lifecycle event, hooks, Install, release switch;
- ``handwritten``: bench/fleet/handwritten.yml, 6 tasks (copy, unarchive, stop, symlink, start,
  validate) with the example's own scripts;
- ``ssh + tar``: two ``ssh`` commands per host (``tar -xz`` from stdin; then stop, switch the symlink,
  start, validate).

Measured per run: wall time; the controller's CPU (user + system of ``ansible-playbook`` and every
process it reaped, from ``os.wait4``; for ssh + tar the ``ssh`` clients, from ``RUSAGE_CHILDREN``; plus,
for every method, the CPU the SSH ControlMaster processes, which run detached, spent meanwhile); the
targets' CPU (each container's cgroup ``cpuacct.usage``, or ``cpu.stat`` on cgroup v2, before and after);
the controller's peak memory (summed RSS and summed PSS of the process tree, sampled from /proc by
bench/timed_playbook.py's TreeSampler); the task time of each host and the module runs per host (timed
inside Ansible by bench/ansible_timed.py).
"""

from __future__ import annotations

import json
import os
import re
import resource
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
from sshhosts import Hosts, sh  # noqa: E402
import timed_playbook  # noqa: E402

WORK = os.environ.get("BENCH_FLEET_WORK", "/var/tmp/appspec-bench-fleet")
SIZES = sorted({int(size) for size in os.environ.get("BENCH_FLEET_HOSTS", "1,5,10,20,40").split(",") if size.strip()})
RUNS = int(os.environ.get("BENCH_FLEET_RUNS", "2"))
SERIAL_RUNS = int(os.environ.get("BENCH_FLEET_SERIAL_RUNS", str(RUNS)))
SERIAL_RUNS_LARGEST = int(os.environ.get("BENCH_FLEET_SERIAL_RUNS_LARGEST", "1"))
FORKS = int(os.environ.get("BENCH_FLEET_FORKS", str(max(SIZES))))
if FORKS < max(SIZES):
    raise SystemExit("BENCH_FLEET_FORKS=%d is below the largest fleet (%d hosts): the comparison would not run "
                     "every host in parallel" % (FORKS, max(SIZES)))
ALL_STRATEGIES = {"AllAtOnce": "CodeDeployDefault.AllAtOnce", "OneAtATime": "CodeDeployDefault.OneAtATime"}
STRATEGIES = [name.strip() for name in os.environ.get("BENCH_FLEET_STRATEGIES", "AllAtOnce,OneAtATime").split(",")
              if name.strip()]
for _name in STRATEGIES:
    if _name not in ALL_STRATEGIES:
        raise SystemExit("BENCH_FLEET_STRATEGIES: unknown strategy %r (known: %s)" % (_name, ", ".join(ALL_STRATEGIES)))
# Ansible's SSH connection and become-prompt timeout (10 s by default), for both Ansible methods: 40 hosts and
# other jobs on 2 cores can keep sudo's prompt waiting longer than that.
TIMEOUT = os.environ.get("BENCH_FLEET_TIMEOUT", "60")
PREFIX = "appspec-bench-fleet"
RELEASE_ROOT = "/opt/appspec-example"
RESET = ("systemctl stop appspec-example.service 2>/dev/null; systemctl reset-failed appspec-example.service "
         "2>/dev/null; pkill -f '[s]erver[.]py'; rm -rf /opt/appspec-example /var/lib/appspec-example "
         "/opt/codedeploy-agent /home/deploy/.ansible/tmp")
TICKS = os.sysconf("SC_CLK_TCK")


def runs_for(size, strategy):
    """Rounds per method: OneAtATime takes a host's time per host, so it may run fewer (the time budget)."""
    if strategy == "OneAtATime":
        return SERIAL_RUNS_LARGEST if size == max(SIZES) else SERIAL_RUNS
    return RUNS


class Fleet:
    """The first ``size`` hosts of the started containers (``use``), with their own inventory."""

    def __init__(self, hosts):
        self.hosts = hosts
        self.version = 0
        self.names = list(hosts.names)
        self.inventory = None
        self.cpu_files = {name: cgroup_cpu_file(name) for name in hosts.names}

    def use(self, size, start=0):
        """Use hosts ``start`` to ``size`` (the fleet of ``size`` hosts, or with ``start`` those new to it)."""
        self.names = self.hosts.names[start:size]
        self.inventory = write_inventory(self.hosts, self.names, start)

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

    # ------------------------------------------------------------------------------- costs
    def targets_cpu(self):
        """CPU seconds used so far by each host of the fleet in use (its container's cgroup)."""
        return {name: read_cgroup_cpu(self.cpu_files[name]) for name in self.names}

    def mux_cpu(self):
        """{pid: CPU seconds} of the SSH ControlMaster processes of these hosts (detached, so not reaped)."""
        return ssh_masters_cpu(self.hosts.control_dir)

    def measured(self, call):
        """Run ``call()`` (a method's result dict) and add the targets' CPU and the ControlMasters' CPU."""
        targets, masters = self.targets_cpu(), self.mux_cpu()
        result = call()
        targets_after, masters_after = self.targets_cpu(), self.mux_cpu()
        # A master that started meanwhile counts whole; one that exited meanwhile is lost (its last slice).
        result["cpu_masters"] = sum(max(0.0, seconds - masters.get(pid, 0.0)) for pid, seconds in masters_after.items())
        result["cpu_controller"] = result["cpu_user"] + result["cpu_sys"] + result["cpu_masters"]
        result["cpu_targets"] = sum(targets_after[name] - targets[name] for name in self.names)
        return result

    # ------------------------------------------------------------------------------- ansible
    def playbook(self, book, extra, label):
        data, records, wall, proc, measure = timed_playbook.run_measured(
            book, self.inventory, extra, WORK, APPSPEC_DEPLOY_CACHE_DIR=os.path.join(WORK, "cache"),
            ANSIBLE_FORKS=str(FORKS), ANSIBLE_TIMEOUT=TIMEOUT)
        if proc.returncode != 0:
            log = os.path.join(WORK, "failed-%s.json" % label)
            with open(log, "w") as handle:
                handle.write(proc.stdout.decode(errors="replace"))
            raise SystemExit("%s: ansible-playbook failed (rc %d), output in %s" % (label, proc.returncode, log))
        result = self.summarize(data, records, wall, measure)
        result.update(cpu_user=measure["cpu_user"], cpu_sys=measure["cpu_sys"], maxrss_kb=measure["maxrss_kb"],
                      peak_rss_kb=measure["peak_rss_kb"], peak_pss_kb=measure["peak_pss_kb"])
        return result

    def summarize(self, data, records, wall, measure):
        names = self.names
        per_host = {name: {"tasks": 0, "task_seconds": 0.0, "modules": 0, "uploads": 0} for name in names}
        controller = 0.0
        plays = {}  # play name -> seconds (summed over the batches of a serial play)
        tasks = {}  # task name -> seconds (summed over batches)
        first, last = None, None
        for play in data["plays"]:
            duration = play["play"]["duration"]
            if "end" in duration:
                begin, end = timed_playbook.timestamp(duration["start"]), timed_playbook.timestamp(duration["end"])
                plays[play["play"]["name"]] = plays.get(play["play"]["name"], 0.0) + end - begin
                first = begin if first is None else min(first, begin)
                last = end if last is None else max(last, end)
            for task in play["tasks"]:
                seconds = timed_playbook.task_seconds(task)
                tasks[task["task"]["name"]] = tasks.get(task["task"]["name"], 0.0) + seconds
                ran = [h for h, res in task["hosts"].items() if not res.get("skipped")]
                if any(h in per_host for h in ran):
                    for host in ran:
                        if host in per_host:
                            per_host[host]["tasks"] += 1
                            per_host[host]["task_seconds"] += seconds
                elif ran:
                    controller += seconds
        address_to_name = {self.hosts.addresses[name]: name for name in names}
        phases = {}  # phase -> seconds summed over all hosts' records
        for record in records:
            phases[record["phase"]] = phases.get(record["phase"], 0.0) + record["seconds"]
            name = address_to_name.get(record["host"])
            if name is None:
                continue
            if record["phase"] == "module":
                per_host[name]["modules"] += 1
            elif record["phase"] == "upload":
                per_host[name]["uploads"] += 1
        timeline = {
            "startup": (first - measure["started"]) if first is not None else wall,
            "plays": plays,
            "between_plays": ((last - first) - sum(plays.values())) if first is not None else 0.0,
            "exit": (measure["ended"] - last) if last is not None else 0.0,
            "tasks": sorted(tasks.items(), key=lambda item: -item[1])[:6],
            "phases": phases,
        }
        return {"wall": wall, "per_host": per_host, "controller_tasks": controller, "timeline": timeline}

    def appspec(self, src, version, strategy):
        return self.playbook(os.path.join(REPO, "playbooks", "deploy.yml"), {
            "appspec_revision": src, "appspec_hosts": "fleet", "appspec_application_name": "webapp",
            "appspec_deployment_group_name": "bench", "appspec_release_root": RELEASE_ROOT,
            "appspec_deployment_config": ALL_STRATEGIES[strategy]}, "appspec-" + version)

    def handwritten(self, bundle, version, strategy):
        return self.playbook(os.path.join(HERE, "handwritten.yml"), {
            "handwritten_bundle": bundle, "handwritten_version": version,
            "handwritten_serial": 1 if strategy == "OneAtATime" else 0}, "handwritten-" + version)

    def prepare_handwritten(self):
        """The release directory the hand-written playbook expects (made before it is timed)."""
        for name in self.names:
            self.hosts.ssh(name, "mkdir -p %s/releases" % RELEASE_ROOT)

    # ------------------------------------------------------------------------------- plain
    def plain(self, bundle, version, strategy):
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

        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        sampler = timed_playbook.TreeSampler(os.getpid(), include_root=False)
        sampler.start()
        started = time.monotonic()
        if strategy == "OneAtATime":
            for name in self.names:
                one(name)
                if errors:
                    break
        else:
            threads = [threading.Thread(target=one, args=(name,)) for name in self.names]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        wall = time.monotonic() - started
        sampler.stop()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if errors:
            raise SystemExit("plain deploy failed: %s" % errors[0])
        per_host = {name: {"tasks": 2, "task_seconds": times[name], "modules": 0, "uploads": 1} for name in times}
        return {"wall": wall, "per_host": per_host, "controller_tasks": 0.0, "timeline": None,
                "cpu_user": after.ru_utime - children.ru_utime, "cpu_sys": after.ru_stime - children.ru_stime,
                "maxrss_kb": after.ru_maxrss, "peak_rss_kb": sampler.peak_rss_kb, "peak_pss_kb": sampler.peak_pss_kb}

    # ------------------------------------------------------------------------------- checks
    def serving(self, version):
        for name in self.names:
            body = self.hosts.ssh(name, "curl -fsS http://127.0.0.1:8080/")
            if "version=%s" % version not in body.split():
                raise SystemExit("%s serves %r, not version %s" % (name, body.strip(), version))

    def reset(self):
        for name in self.hosts.names:  # every started host, whatever the size in use
            self.hosts.ssh(name, RESET)


def cgroup_cpu_file(name):
    """The file holding the container's CPU usage: cgroup v1 cpuacct.usage (ns) or v2 cpu.stat (usage_usec)."""
    path = json.loads(sh("podman", "inspect", name))[0]["State"]["CgroupPath"]
    for candidate in ("/sys/fs/cgroup/cpuacct%s/cpuacct.usage" % path, "/sys/fs/cgroup/cpu,cpuacct%s/cpuacct.usage" % path,
                      "/sys/fs/cgroup%s/cpu.stat" % path):
        if os.path.exists(candidate):
            return candidate
    raise SystemExit("%s: no CPU accounting file for its cgroup %s" % (name, path))


def read_cgroup_cpu(path):
    with open(path) as handle:
        text = handle.read()
    if path.endswith("cpuacct.usage"):
        return int(text) / 1e9
    for line in text.splitlines():
        if line.startswith("usage_usec "):
            return int(line.split()[1]) / 1e6
    raise SystemExit("%s: no usage_usec" % path)


def ssh_masters_cpu(control_dir):
    """{pid: CPU seconds} of the ssh ControlMaster processes ("ssh: <control path> [mux]") of ``control_dir``."""
    found = {}
    prefix = ("ssh: %s/" % control_dir).encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as handle:
                if not handle.read(len(prefix)) == prefix:
                    continue
            with open("/proc/%s/stat" % entry, "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        fields = stat[stat.rindex(b")") + 2:].split()
        found[int(entry)] = (int(fields[11]) + int(fields[12])) / TICKS
    return found


def write_inventory(hosts, names, start=0):
    fleet = {name: hosts.inventory_host(name, "deploy", become=True) for name in names}
    inventory = {"all": {"children": {"fleet": {"hosts": fleet}}}}
    path = os.path.join(WORK, "inventory-%d-%d.yml" % (start, start + len(names)))
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


def mean(values):
    return sum(values) / len(values)


def aggregate(runs):
    """The run with the smallest wall time, with per-host averages; CPU and memory: the mean over the runs."""
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
        "cpu_controller": mean([run["cpu_controller"] for run in runs]),
        "cpu_masters": mean([run["cpu_masters"] for run in runs]),
        "cpu_targets": mean([run["cpu_targets"] for run in runs]),
        "peak_rss_mb": mean([run["peak_rss_kb"] for run in runs]) / 1024,
        "peak_pss_mb": mean([run["peak_pss_kb"] for run in runs]) / 1024,
        "maxrss_mb": mean([run["maxrss_kb"] for run in runs]) / 1024,
        "timeline": best["timeline"],
    }


LABELS = [
    ("appspec", "`playbooks/deploy.yml`"),
    ("handwritten", "hand-written playbook"),
    ("plain", "plain `ssh` + `tar`"),
]
TARGET = 0.8  # deploy.yml / hand-written wall time at 20 hosts (issue 14, item 8)
TARGET_SIZE = 20


def fmt_mb(value):
    return "%.0f MB" % value


def render(results, runs=RUNS, forks=FORKS, load=None, elapsed=None, loads=None, stopped=None):
    """``results``: {strategy: {size: {method: aggregate}}}."""
    strategies = [name for name in ALL_STRATEGIES if name in results]
    sizes = sorted({size for strategy in strategies for size in results[strategy]})
    largest = max(sizes)
    fewer = ["%s at %d hosts: %d" % (strategy, size, len(results[strategy][size]["appspec"]["walls"]))
             for strategy in strategies for size in sizes
             if size in results[strategy] and len(results[strategy][size]["appspec"]["walls"]) != runs]
    lines = [
        "## Deploying to a fleet over SSH (`bench/fleet/run.sh`)",
        "",
        "examples/webapp deployed to fleets of %s test-host containers (systemd, sshd) reached over real SSH as "
        "the non-root user `deploy` with sudo (`become`), with the project's `ansible.cfg` (pipelining, "
        "ControlMaster/ControlPersist). Both Ansible methods run with **forks %d** (`ANSIBLE_FORKS`, the same "
        "for both, at least the largest fleet) and a %s s connection and become timeout (`ANSIBLE_TIMEOUT`). "
        "The %d containers are started once; a smaller fleet is their first hosts, and every size measures all "
        "three methods with both strategies in the same invocation:" % (
            ", ".join(str(size) for size in sizes), forks, TIMEOUT, max(SIZES + sizes)),
        "",
        "- **AllAtOnce**: `deploy.yml` with `CodeDeployDefault.AllAtOnce`; the hand-written playbook "
        "(`bench/fleet/handwritten.yml`: copy, unarchive, stop, symlink, start, validate) without `serial`; "
        "plain `ssh` + `tar` (2 commands per host) to every host in parallel.",
        "- **OneAtATime**: `deploy.yml` with `CodeDeployDefault.OneAtATime`; the hand-written playbook with "
        "`serial: 1` (`handwritten_serial`); plain `ssh` + `tar` to one host after the other.",
        "",
        "Every run ships a **new** revision (VERSION changed) to hosts already running the previous one (a "
        "warm-up deployment by `deploy.yml` to the hosts new to each size first, not counted); each host is checked to serve the new version after every "
        "run. The methods take turns on the same hosts, %d round%s per size and strategy in a rotating order%s; "
        "the best run per method (by wall time) is shown with all runs listed, CPU and memory are the mean over "
        "the runs. The machine (%d cores) is shared with other jobs (Molecule scenarios), the controller and all "
        "hosts on the same cores: compare the ratios and the CPU more than the seconds.%s" % (
            runs, "" if runs == 1 else "s",
            (" (rounds for the time budget: %s)" % ", ".join(fewer)) if fewer else "",
            os.cpu_count() or 0,
            load_text(load, loads)),
        "",
        "- **wall / host**: the run's wall time (`ansible-playbook` start to end, controller plays included) "
        "divided by the number of hosts; **/ hand-written**: the wall time against the hand-written playbook's "
        "at the same size and strategy.",
        "- **controller CPU**: user + system CPU seconds of `ansible-playbook` and every process it reaped "
        "(workers, `ssh` clients; `os.wait4`), or of the `ssh` clients for plain ssh + tar "
        "(`RUSAGE_CHILDREN`), plus what the SSH ControlMaster processes (detached, shared by all methods) "
        "spent during the run, in brackets.",
        "- **targets CPU**: the CPU seconds all the fleet's containers used during the run (each container's "
        "cgroup `cpuacct.usage` before and after: sshd, sudo, Python, the hooks, the application restart).",
        "- **peak memory**: the peak of the **summed RSS** of `ansible-playbook`'s live process tree (workers and "
        "`ssh` clients; the ControlMasters left out), sampled from /proc every 0.1 s; summed RSS counts pages "
        "the forked workers share once per process, so the **PSS** sum (sampled every 0.5 s from "
        "`smaps_rollup`, shared pages divided among their users) is the closer figure of what the controller "
        "really needs.",
        "- **task time / host**: the sum of the durations of the tasks that ran on the host; **module runs / "
        "host**: modules executed on the host over SSH (one pipelined SSH command each).",
        "",
        "| hosts | strategy | method | wall (best) | all runs | wall / host | / hand-written | controller CPU "
        "(of which ssh masters) | targets CPU | peak memory RSS sum | PSS sum | task time / host | module runs / host |",
        "|---:|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size in sizes:
        for strategy in strategies:
            if size not in results[strategy]:
                continue
            hand = results[strategy][size]["handwritten"]["wall"]
            for key, label in LABELS:
                row = results[strategy][size][key]
                ratio = "%.2fx" % (row["wall"] / hand)
                if key == "appspec":
                    ratio = "**%s**" % ratio
                lines.append("| %d | %s | %s | %.2f s | %s | %.2f s | %s | %.2f s (%.2f) | %.2f s | %s | %s | %.2f s "
                             "| %.2f |" % (
                                 size, strategy, label, row["wall"], ", ".join("%.1f" % w for w in row["walls"]),
                                 row["per_host_wall"], ratio, row["cpu_controller"], row["cpu_masters"],
                                 row["cpu_targets"], fmt_mb(row["peak_rss_mb"]), fmt_mb(row["peak_pss_mb"]),
                                 row["task_seconds"], row["modules"]))
    lines += ["", "### How it grows", ""] + growth(results, strategies, sizes)
    lines += ["", "### Where `deploy.yml`'s time goes", ""] + where_time_goes(results, strategies, sizes)
    lines += [""]
    for strategy in strategies:
        if TARGET_SIZE in results[strategy]:
            row = results[strategy][TARGET_SIZE]
            ratio = row["appspec"]["wall"] / row["handwritten"]["wall"]
            lines.append("- Target, %s at %d hosts (`deploy.yml` at most %.1fx the hand-written playbook's wall "
                         "time): %.2fx, %s." % (strategy, TARGET_SIZE, TARGET, ratio,
                                                "met" if ratio <= TARGET else "**not met**"))
    if elapsed:
        lines += ["", "The whole run (containers started, every size, strategy and method) took %.0f min." % (
            elapsed / 60)]
    if stopped:
        missing = ["%s at %d hosts" % (strategy, size) for size in SIZES for strategy in STRATEGIES
                   if size not in results.get(strategy, {})]
        lines += ["", "**The run was stopped after %.0f min** (its time limit), before it finished: not measured: "
                  "%s. The table holds every size and strategy it finished." % (
                      stopped / 60, ", ".join(missing) or "nothing")]
    return "\n".join(lines)


def load_text(load, loads):
    text = ""
    if load and load[0]:
        text += " Load average (1, 5, 15 min) at the start %s" % "/".join("%.2f" % v for v in load[0])
        text += (", at the end %s." % "/".join("%.2f" % v for v in load[1])) if load[1] else "."
    if loads:
        ordered = sorted(loads)
        text += (" The 1-minute load average after each run: min %.1f, median %.1f, max %.1f (on %d cores)." % (
            ordered[0], ordered[len(ordered) // 2], ordered[-1], os.cpu_count() or 0))
    return text


def increments(rows, sizes, metric):
    """Per added host between consecutive sizes: [(from, to, delta per host)]."""
    out = []
    for small, big in zip(sizes, sizes[1:]):
        out.append((small, big, (rows[big][metric] - rows[small][metric]) / (big - small)))
    return out


METRICS = [("wall", "wall", "%+.2f s"), ("cpu_controller", "controller CPU", "%+.2f s"),
           ("cpu_targets", "targets CPU", "%+.2f s"), ("peak_pss_mb", "peak PSS", "%+.1f MB")]


def growth(results, strategies, sizes):
    """A table of the cost of each added host between consecutive sizes, and a paragraph drawn from it."""
    lines = ["What each **added host** costs between consecutive fleet sizes (the difference between the two "
             "sizes divided by the hosts added; wall from the best runs, CPU and memory from the means):", "",
             "| strategy | method | metric | " + " | ".join("%d → %d" % pair for pair in zip(sizes, sizes[1:])) + " |",
             "|---|---|---|" + "---:|" * (len(sizes) - 1)]
    for strategy in strategies:
        have = [size for size in sizes if size in results[strategy]]
        for key, label in LABELS:
            rows = {size: results[strategy][size][key] for size in have}
            for metric, name, form in METRICS:
                cells = {(a, b): form % d for a, b, d in increments(rows, have, metric)}
                lines.append("| %s | %s | %s | %s |" % (strategy, label, name, " | ".join(
                    cells.get((a, b), "") for a, b in zip(sizes, sizes[1:]))))
    lines.append("")
    for strategy in strategies:
        have = [size for size in sizes if size in results[strategy]]
        if len(have) < 2:
            continue
        small, big = have[0], have[-1]
        app = {size: results[strategy][size]["appspec"] for size in have}
        hand = {size: results[strategy][size]["handwritten"] for size in have}

        def slope(rows, metric, small=small, big=big):
            return (rows[big][metric] - rows[small][metric]) / (big - small)

        first = increments(app, have, "wall")[0][2]
        last = increments(app, have, "wall")[-1][2]
        ratios = ", ".join("%.2fx" % (app[size]["wall"] / hand[size]["wall"]) for size in have)
        lines.append(
            "- **%s**, %d → %d hosts: each added host costs `deploy.yml` %.2f s of wall time (the hand-written "
            "playbook %.2f s), %.2f s of controller CPU (hand-written %.2f s), %.2f s of targets' CPU "
            "(hand-written %.2f s) and %.1f MB of peak controller PSS (hand-written %.1f MB; summed RSS %.1f MB "
            "against %.1f MB). Wall time per added host goes from %.2f s (%d → %d) to %.2f s (%d → %d): %s. "
            "The ratio to the hand-written playbook at %s hosts: %s." % (
                strategy, small, big, slope(app, "wall"), slope(hand, "wall"), slope(app, "cpu_controller"),
                slope(hand, "cpu_controller"), slope(app, "cpu_targets"), slope(hand, "cpu_targets"),
                slope(app, "peak_pss_mb"), slope(hand, "peak_pss_mb"), slope(app, "peak_rss_mb"),
                slope(hand, "peak_rss_mb"), first, have[0], have[1], last, have[-2], have[-1],
                describe_growth(first, last), ", ".join(map(str, have)), ratios))
    return lines


def describe_growth(first, last):
    if first <= 0 or last <= 0:
        return "no steady growth (noise dominates at these sizes)"
    if last > 1.25 * first:
        return "faster than linear (%.1fx the first step: the 2 cores saturate and hosts queue for them)" % (
            last / first)
    if last < 0.8 * first:
        return "slower than linear (%.1fx the first step: fixed costs spread over more hosts)" % (last / first)
    return "about linear (%.1fx the first step)" % (last / first)


def where_time_goes(results, strategies, sizes):
    lines = ["From `ansible-playbook`'s start to its end, in the best run (the JSON callback's play and task "
             "times; plays of a serial batch summed; module and upload phases timed inside Ansible by "
             "`bench/ansible_timed.py`, summed over hosts):", ""]
    for size in [size for size in sizes if size >= TARGET_SIZE] or sizes[-1:]:
        for strategy in strategies:
            if size not in results[strategy]:
                continue
            row = results[strategy][size]["appspec"]
            line = row["timeline"]
            if not line:
                continue
            plays = "; ".join("%s %.2f s" % (name, seconds) for name, seconds in
                              sorted(line["plays"].items(), key=lambda item: -item[1]) if seconds >= 0.005)
            tasks = "; ".join("%s %.2f s" % (name, seconds) for name, seconds in line["tasks"][:5])
            phases = line["phases"]
            lines.append(
                "- **%d hosts, %s** (wall %.2f s): start-up before the first play %.2f s, plays %.2f s (%s), "
                "between plays %.2f s, exit %.2f s. Longest tasks: %s (the longest alone %.0f%% of the wall time). "
                "Module runs took %.1f host-seconds in "
                "all (%.2f s per host, of which building payloads %.2f s in all), uploads %.1f host-seconds; "
                "controller CPU %.1f s for %.1f s of wall: the controller is %s." % (
                    size, strategy, row["wall"], line["startup"], sum(line["plays"].values()), plays,
                    line["between_plays"], line["exit"], tasks,
                    100 * line["tasks"][0][1] / row["wall"] if line["tasks"] else 0.0, phases.get("module", 0.0),
                    phases.get("module", 0.0) / size, phases.get("payload", 0.0), phases.get("upload", 0.0),
                    row["cpu_controller"], row["wall"],
                    "busy on %.0f%% of one core" % (100 * row["cpu_controller"] / row["wall"]) +
                    (" (the 2 cores are the bottleneck)" if row["cpu_controller"] / row["wall"] > 1.0 else "")))
    return lines


def main():
    # A SIGTERM (timeout, CI cancel) unwinds like Ctrl-C, so that the containers are removed.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))
    os.makedirs(WORK, exist_ok=True)
    shutil.rmtree(os.path.join(WORK, "revisions"), ignore_errors=True)
    shutil.rmtree(os.path.join(WORK, "cache"), ignore_errors=True)
    count = max(SIZES)
    ensure_inotify(count)
    started = time.monotonic()
    load_start = os.getloadavg()
    print("fleet bench: sizes %s, strategies %s, %d run(s) per method (OneAtATime at %d hosts: %d), forks %d; "
          "load %s; starting %d SSH hosts" % (
              ",".join(map(str, SIZES)), ",".join(STRATEGIES), RUNS, count, runs_for(count, "OneAtATime"), FORKS,
              "/".join("%.2f" % v for v in load_start), count), flush=True)
    results = {strategy: {} for strategy in STRATEGIES}
    loads = []  # the 1-minute load average after each run
    with Hosts(PREFIX, count, WORK) as hosts:
        print("  %d hosts up in %.0f s" % (count, time.monotonic() - started), flush=True)
        fleet = Fleet(hosts)

        def method(key, strategy, version, src, bundle):
            if key == "appspec":
                return fleet.measured(lambda: fleet.appspec(src, version, strategy))
            if key == "handwritten":
                fleet.prepare_handwritten()
                return fleet.measured(lambda: fleet.handwritten(bundle, version, strategy))
            return fleet.measured(lambda: fleet.plain(bundle, version, strategy))

        fleet.reset()
        order = [key for key, _label in LABELS]
        previous = 0
        for size in SIZES:
            # The warm-up (not counted): the hosts new to this size get a previous version, deployed by
            # deploy.yml (the first deployment of a group has no ApplicationStop to run; every method then
            # finds the application running, started from a release under the same release root).
            fleet.use(size, previous)
            previous = size
            for key in order[:1]:
                version, src, bundle = fleet.new_revision()
                result = method(key, STRATEGIES[0], version, src, bundle)
                fleet.serving(version)
                print("  %d hosts, warm-up %s: %.2f s wall (%.0f s elapsed)" % (
                    size, key, result["wall"], time.monotonic() - started), flush=True)
            fleet.use(size)
            for strategy in STRATEGIES:
                runs = {key: [] for key in order}
                # The methods take turns, in a rotating order, so that load from other jobs on the machine
                # hits every method alike; each deploys over what the previous one left running (same
                # release root, same pid file).
                for attempt in range(runs_for(size, strategy)):
                    shift = (attempt + 1) % len(order)
                    for key in order[shift:] + order[:shift]:
                        version, src, bundle = fleet.new_revision()
                        result = method(key, strategy, version, src, bundle)
                        fleet.serving(version)
                        print("  %d hosts, %s, round %d %s: %.2f s wall, controller CPU %.2f s, targets CPU %.2f s, "
                              "peak RSS %.0f MB / PSS %.0f MB (%.0f s elapsed, load %.2f)" % (
                                  size, strategy, attempt + 1, key, result["wall"], result["cpu_controller"],
                                  result["cpu_targets"], result["peak_rss_kb"] / 1024, result["peak_pss_kb"] / 1024,
                                  time.monotonic() - started, os.getloadavg()[0]), flush=True)
                        runs[key].append(result)
                        loads.append(os.getloadavg()[0])
                results[strategy][size] = {key: aggregate(runs[key]) for key in order}
                for key in order:
                    print(json.dumps({"size": size, "strategy": strategy, "method": key,
                                      "result": results[strategy][size][key]}), flush=True)
        fleet.reset()
    elapsed = time.monotonic() - started
    load = (load_start, os.getloadavg())
    print(json.dumps({"load": load, "elapsed": elapsed}), flush=True)
    text = render(results, load=load, elapsed=elapsed, loads=loads)
    write_section("fleet", text)
    print(text)
    print("fleet bench: %.0f s in all" % elapsed, flush=True)


def rerender(log_path):
    """Re-render the section from the lines a previous run printed (same BENCH_FLEET_* settings).

    Also for a run stopped before its end (a time limit): the sizes and strategies it finished are shown,
    with the time it had run and the load averages its progress lines recorded.
    """
    results, load, elapsed, loads, last_elapsed = {}, None, None, [], 0.0
    with open(log_path) as log:
        for line in log:
            if line.startswith("fleet bench: sizes") and "; load " in line:
                first = [float(v) for v in line.split("; load ")[1].split(";")[0].split("/")]
            match = re.search(r"\((\d+) s elapsed(?:, load ([0-9.]+))?\)", line)
            if match:
                last_elapsed = float(match.group(1))
                if match.group(2):
                    loads.append(float(match.group(2)))
            if not line.startswith("{"):
                continue
            item = json.loads(line)
            if "load" in item:
                load, elapsed = item["load"], item["elapsed"]
            else:
                results.setdefault(item["strategy"], {}).setdefault(item["size"], {})[item["method"]] = item["result"]
    stopped = None
    if elapsed is None:  # stopped before its end
        stopped = last_elapsed
        load = (first, None) if loads else None
    text = render(results, load=load, elapsed=elapsed, loads=loads, stopped=stopped)
    write_section("fleet", text)
    print(text)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--render":
        rerender(sys.argv[2])
    else:
        main()
