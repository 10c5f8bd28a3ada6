"""Benchmark: zero downtime under load (issue 14, "Fleet benchmark", item 9).

Five test-host containers (systemd, sshd; bench/sshhosts.py) reached over real SSH as root with the
project's ansible.cfg: ``lb`` runs haproxy (from the test-host image, started as the rolling Molecule
scenario starts it), ``web1``..``web3`` sit behind it, ``single`` is served directly (no load balancer).
The load is extensions/molecule/shared/loadgen.py, the load generator of the Molecule scenarios, run as
it is with a fixed number of keep-alive clients (``BENCH_ZD_THREADS``); this script only wraps
``http.client.HTTPConnection`` around it to time each request (``--load``), and checks its per-request
records against loadgen's own totals.

Measured in one run, each with a window of steady load before it:

1. a rolling deployment of a new revision to web1..web3 with ``playbooks/deploy.yml``
   (``CodeDeployDefault.OneAtATime``, each host drained and re-enabled in haproxy through the collection's
   traffic control), load sent to haproxy, which forwards to the example application (port 8080);
2. on ``single``, served directly: a release-mode ``playbooks/deploy.yml`` deployment, then ``N``
   switches of ``current`` by the collection (``appspec.deploy.release`` with ``state=current`` in a loop
   task, alternating between two releases);
3. on the same host, in the same load run: ``N`` naive switches ``rm -rf current; ln -s releases/<id>
   current`` (a ``shell`` loop task of the same shape, same releases). The switches of 2 and 3 run in four
   loops of ``N/2``: collection, naive, naive, collection.

What serves in 2 and 3: the example application reads its files from ``realpath(__file__)`` (the release it
was started from), not through ``current`` on each request, so a missing ``current`` would not show there.
A user's static files served through ``current`` would: nginx on ``single`` serves
``/opt/appspec-example/current`` (each request opens the file by that path, no open_file_cache), and the load
asks for ``/version.txt``, a file each revision carries (``appspec-example version=<v>``). The naive switch
leaves a moment with no ``current``: a request then gets a 404, which loadgen counts as failed.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "bench"))

WORK = os.environ.get("BENCH_ZD_WORK", "/var/tmp/appspec-bench-zero-downtime")
THREADS = int(os.environ.get("BENCH_ZD_THREADS", "8"))
SWITCHES = int(os.environ.get("BENCH_ZD_SWITCHES", "40"))
BEFORE = float(os.environ.get("BENCH_ZD_BEFORE", "10"))  # seconds of load measured before each change
PREFIX = "appspec-bench-zd"
RELEASE_ROOT = "/opt/appspec-example"
WEB = ["web1", "web2", "web3"]
LOADGEN = os.path.join(REPO, "extensions", "molecule", "shared", "loadgen.py")

HAPROXY_CFG = """global
    stats socket /run/haproxy/admin.sock mode 660 level admin
    stats timeout 30s
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    retries 3
    option redispatch
frontend web
    bind *:80
    default_backend app
backend app
    balance roundrobin
    option httpchk GET /health
    default-server inter 300ms fall 2 rise 2
%s
"""
# Debian's haproxy.service sandboxing fails in these containers (226/NAMESPACE): run haproxy as a daemon,
# as extensions/molecule/rolling/prepare.yml does.
HAPROXY_START = ("set -e; mkdir -p /run/haproxy; haproxy -c -q -f /etc/haproxy/haproxy.cfg; "
                 "haproxy -D -f /etc/haproxy/haproxy.cfg -p /run/haproxy.pid")
NGINX_CFG = """server {
    listen 80 default_server;
    root %s/current;
    access_log off;
    location / { try_files $uri =404; }
}
""" % RELEASE_ROOT

# The switch loops of parts 2 and 3: the same play, the same loop, only the switch differs.
SWITCH_PLAY = """---
- name: Switch current back and forth under load
  hosts: single
  gather_facts: false
  tasks:
    - name: Switch by the collection (a temporary link renamed over current)
      appspec.deploy.release:
        release_root: "{{ zd_root }}"
        deployment_id: "{{ item }}"
        state: current
      loop: "{{ zd_ids }}"
      when: zd_method == 'collection'

    - name: Switch the naive way (rm -rf current; ln -s)
      ansible.builtin.shell:
        cmd: rm -rf current; ln -s releases/{{ item }} current
        chdir: "{{ zd_root }}"
      loop: "{{ zd_ids }}"
      changed_when: true
      when: zd_method == 'naive'
"""


# =========================================================================================== load generator
def run_load(argv):
    """``--load URL STOPFILE RESULT THREADS MAX_SECONDS TIMINGS``: run loadgen.py's main() with each request timed.

    Every attempt loadgen makes goes through ``http.client.HTTPConnection``; the subclass below notes its start,
    end and outcome, and merges a retried attempt into its request the way loadgen does (a GET retried once on a
    new connection when a reused keep-alive connection was closed before any response), so that each record is
    one of loadgen's requests: (start, end, ok, HTTP status or exception name).
    """
    url, stopfile, result, threads, max_seconds, timings = argv
    sys.path.insert(0, os.path.dirname(LOADGEN))
    import loadgen  # pylint: disable=import-outside-toplevel,import-error

    records = []
    local = threading.local()
    closed_idle = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)

    def done(conn, ok, code, err=None):
        now = time.time()
        start = getattr(local, "pending", None) or local.started
        if err is not None and conn.answered and isinstance(err, closed_idle) and local.pending is None:
            local.pending = local.started  # loadgen retries this one on a new connection
            return
        local.pending = None
        records.append((start, now, ok, code))

    class Response(http.client.HTTPResponse):
        def read(self, amt=None):
            try:
                body = super().read(amt)
            except (OSError, http.client.HTTPException) as err:
                done(local.conn, False, type(err).__name__, err)
                raise
            local.conn.answered = True
            done(local.conn, self.status == 200 and b"version=" in body, self.status)
            return body

    class Timed(http.client.HTTPConnection):
        response_class = Response

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.answered = False

        def request(self, *args, **kwargs):  # pylint: disable=arguments-differ
            local.started, local.conn = time.time(), self
            if not hasattr(local, "pending"):
                local.pending = None
            try:
                super().request(*args, **kwargs)
            except (OSError, http.client.HTTPException) as err:
                done(self, False, type(err).__name__, err)
                raise

        def getresponse(self):
            try:
                return super().getresponse()
            except (OSError, http.client.HTTPException) as err:
                done(self, False, type(err).__name__, err)
                raise

    http.client.HTTPConnection = Timed
    sys.argv = [LOADGEN, url, stopfile, result, threads, max_seconds]
    code = loadgen.main()
    with open(timings, "w") as handle:
        json.dump([[round(s, 4), round(e, 4), ok, c] for s, e, ok, c in records], handle, separators=(",", ":"))
    return code


class Load:
    """loadgen.py (timed) against ``url`` from start() to stop(); then ``records`` and loadgen's ``result``."""

    def __init__(self, name, url):
        self.name, self.url = name, url
        self.stopfile = os.path.join(WORK, name + ".stop")
        self.resultfile = os.path.join(WORK, name + ".json")
        self.timingfile = os.path.join(WORK, name + "-requests.json")
        self.proc = None
        self.records = []
        self.result = {}

    def start(self):
        for path in (self.stopfile, self.resultfile, self.timingfile):
            if os.path.exists(path):
                os.unlink(path)
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--load", self.url, self.stopfile,
                                      self.resultfile, str(THREADS), "900", self.timingfile])
        self.started = time.time()

    def stop(self):
        with open(self.stopfile, "w"):
            pass
        self.proc.wait(timeout=120)
        with open(self.resultfile) as handle:
            self.result = json.load(handle)
        with open(self.timingfile) as handle:
            self.records = json.load(handle)
        # The timed records must be loadgen's own requests, one for one.
        failed = sum(1 for record in self.records if not record[2])
        if len(self.records) != self.result["total"] or failed != self.result["failed"]:
            raise SystemExit("%s: %d timed requests (%d failed), loadgen counted %d (%d failed)" % (
                self.name, len(self.records), failed, self.result["total"], self.result["failed"]))

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def percentile(values, fraction):
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(round(fraction * (len(values) - 1))))]


def window(records, spans):
    """Numbers of the requests that started in one of ``spans`` [(start, end)]."""
    inside = [record for record in records if any(start <= record[0] < end for start, end in spans)]
    latencies = sorted((record[1] - record[0]) * 1000.0 for record in inside)
    failures = {}
    for record in inside:
        if not record[2]:
            failures[str(record[3])] = failures.get(str(record[3]), 0) + 1
    seconds = sum(end - start for start, end in spans)
    return {
        "seconds": round(seconds, 2), "requests": len(inside), "rps": len(inside) / seconds if seconds > 0 else 0.0,
        "failed": sum(failures.values()), "failures": failures,
        "p50": percentile(latencies, 0.50), "p95": percentile(latencies, 0.95), "p99": percentile(latencies, 0.99),
        "max": latencies[-1] if latencies else float("nan"),
    }


# =========================================================================================== the bench
class Bench:
    def __init__(self, hosts):
        self.hosts = hosts
        names = hosts.names
        self.map = {"lb": names[0], "web1": names[1], "web2": names[2], "web3": names[3], "single": names[4]}
        self.version = 0
        self.inventory = self.write_inventory()

    def addr(self, host):
        return self.hosts.addresses[self.map[host]]

    def ssh(self, host, command):
        return self.hosts.ssh(self.map[host], command)

    def write_inventory(self):
        def host(name):
            return self.hosts.inventory_host(self.map[name], "root")
        inventory = {"all": {"children": {
            "loadbalancers": {"hosts": {"lb": host("lb")}},
            "web": {"hosts": {name: host(name) for name in WEB}},
            "single": {"hosts": {"single": host("single")}},
        }}}
        path = os.path.join(WORK, "inventory.yml")
        with open(path, "w") as handle:
            json.dump(inventory, handle, indent=1)  # JSON is YAML
        return path

    def new_revision(self):
        """examples/webapp with a new VERSION and a static file ``version.txt`` beside the application."""
        self.version += 1
        version = "zd-%d-%d" % (os.getpid(), self.version)
        src = os.path.join(WORK, "revisions", version)
        shutil.rmtree(src, ignore_errors=True)
        shutil.copytree(os.path.join(REPO, "examples", "webapp"), src, symlinks=True)
        with open(os.path.join(src, "app", "VERSION"), "w") as handle:
            handle.write(version + "\n")
        with open(os.path.join(src, "app", "version.txt"), "w") as handle:
            handle.write("appspec-example version=%s\n" % version)
        return version, src

    def playbook(self, book, extra, label):
        """Run ansible-playbook; (start, end) as wall-clock times, the JSON result and the phase records."""
        import timed_playbook  # pylint: disable=import-outside-toplevel
        started = time.time()
        data, records, dummy_wall, proc = timed_playbook.run(
            book, self.inventory, extra, WORK, APPSPEC_DEPLOY_CACHE_DIR=os.path.join(WORK, "cache"))
        ended = time.time()
        if proc.returncode != 0:
            log = os.path.join(WORK, "failed-%s.json" % label)
            with open(log, "w") as handle:
                handle.write(proc.stdout.decode(errors="replace"))
            raise SystemExit("%s: ansible-playbook failed (rc %d), output in %s" % (label, proc.returncode, log))
        return started, ended, data, records

    def deploy(self, group, src, config, load_balancer, label):
        extra = {"appspec_revision": src, "appspec_hosts": group, "appspec_application_name": "webapp",
                 "appspec_deployment_group_name": "zd-" + group, "appspec_release_root": RELEASE_ROOT,
                 "appspec_deployment_config": config}
        if load_balancer:
            extra["appspec_load_balancer"] = {"type": "haproxy", "host": "lb", "backend": "app", "drain_timeout": 30}
        return self.playbook(os.path.join(REPO, "playbooks", "deploy.yml"), extra, label)

    def switches(self, method, ids):
        book = os.path.join(WORK, "switch.yml")
        with open(book, "w") as handle:
            handle.write(SWITCH_PLAY)
        import timed_playbook  # pylint: disable=import-outside-toplevel
        dummy_start, dummy_end, data, records = self.playbook(
            book, {"zd_root": RELEASE_ROOT, "zd_ids": ids, "zd_method": method}, "switch-" + method)
        runs = [record["seconds"] for record in records
                if record["phase"] == "module" and record["task"].startswith("Switch")]
        for play in data["plays"]:
            for task in play["tasks"]:
                results = task["hosts"].get("single", {})
                if task["task"]["name"].startswith("Switch") and not results.get("skipped"):
                    done = len(results.get("results", []))
                    if done != len(ids):
                        raise SystemExit("%s: %d switches ran, not %d" % (method, done, len(ids)))
                    return (timed_playbook.timestamp(task["task"]["duration"]["start"]),
                            timed_playbook.timestamp(task["task"]["duration"]["end"])), runs
        raise SystemExit("%s: the switch task did not run" % method)

    def serves(self, host, port, path, version):
        body = self.ssh(host, "curl -fsS http://127.0.0.1:%d%s" % (port, path))
        if "version=%s" % version not in body.split():
            raise SystemExit("%s:%d%s serves %r, not version %s" % (host, port, path, body.strip(), version))


def loadavg():
    return "%.1f" % os.getloadavg()[0]


def measure(load, before, windows):
    """Rows for ``windows`` [(key, spans, changes, load average)], with the ``before`` span's numbers."""
    base = window(load.records, [before])
    rows = []
    for key, spans, changes, load_average, *runs in windows:
        row = window(load.records, spans)
        if runs:
            row["module_runs"] = sorted(runs[0])
        row.update(key=key, changes=changes, before_rps=base["rps"], before_failed=base["failed"],
                   before_p50=base["p50"], before_p99=base["p99"], loadavg=load_average)
        rows.append(row)
    return rows


LABELS = {
    "rolling": "rolling `deploy.yml`, OneAtATime, 3 hosts behind haproxy (collection's traffic control)",
    "deploy": "release-mode `deploy.yml` to the single host, served directly",
    "collection": "`current` switched by `appspec.deploy.release` (`state: current`), in a loop",
    "naive": "`rm -rf current; ln -s releases/<id> current`, in a loop of the same shape",
}


def render(rows, meta, threads=THREADS, switches=SWITCHES):
    """``meta``: elapsed seconds and the machine's load average when the run started."""
    lines = [
        "## Zero downtime under load (`bench/zero_downtime/run.sh`)",
        "",
        "Five test-host containers (systemd, sshd) reached over real SSH with the project's `ansible.cfg`. The load "
        "is the Molecule scenarios' generator (`extensions/molecule/shared/loadgen.py`, run as it is with **%d "
        "keep-alive clients**, a fixed concurrency, as fast as they get answers; a `GET` answered 200 with `version=` "
        "in the body counts as served, anything else as failed; a request on a reused keep-alive connection closed "
        "by the server is retried once, as browsers do), each request timed by a wrapper around `http.client` whose "
        "records must match loadgen's own totals (they did). **Before** is %g s of the same load just before the "
        "first change of each part; **during** is the window of the change (the whole `ansible-playbook` run for a "
        "deployment, the loop tasks for the switches); latencies are of the requests started in the window." % (
            threads, BEFORE),
        "",
        "- **Rolling**: haproxy (runtime API, health checks every 300 ms, as in the `rolling` Molecule scenario) in "
        "front of web1..web3, which run the example application (`examples/webapp`, port 8080); the load goes to "
        "haproxy; the new revision is deployed with `CodeDeployDefault.OneAtATime` and "
        "`appspec_load_balancer: {type: haproxy, ...}`, each host drained before ApplicationStop and put back after "
        "ValidateService.",
        "- **Single host, no load balancer**: the example application reads its files through the release it was "
        "started from (`realpath(__file__)`), not through `current` on each request, so a naive switch could not "
        "hurt it and would look harmless for the wrong reason. What it hurts is whatever opens files **through "
        "`current` per request**, as a web server serving a release's static files does: nginx on the host serves "
        "`/opt/appspec-example/current` (no open_file_cache) and the load asks for `/version.txt`, a static file "
        "every revision carries. The release-mode deployment restarts the application on 8080 (its hooks), not "
        "nginx. Then, in the same load run, the host's `current` is switched %d times between two releases by each "
        "method, in Ansible loop tasks of the same shape (one task run per switch): %d by the collection, %d the "
        "naive way, %d the naive way, %d by the collection (so that a change in the machine's load from other jobs "
        "hits both alike). One naive switch leaves `current` missing for a few milliseconds, too short to be hit "
        "reliably, hence the loop; a request that finds no `current` gets a 404." % (
            switches, switches // 2, switches // 2, switches // 2, switches // 2),
        "",
        "| change | changes | window | req/s before | req/s during | during / before | failed before "
        "| failed during | failed / change | p50 | p95 | p99 | max | load avg |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append("| %s | %d | %.1f s | %.0f | %.0f | %.2f | %d | **%d** | %.2f | %.1f ms | %.1f ms | %.1f ms "
                     "| %.0f ms | %s |" % (
                         LABELS[row["key"]], row["changes"], row["seconds"], row["before_rps"], row["rps"],
                         row["rps"] / row["before_rps"] if row["before_rps"] else 0.0, row["before_failed"],
                         row["failed"], row["failed"] / row["changes"], row["p50"], row["p95"], row["p99"], row["max"],
                         row["loadavg"]))
    lines.append("")
    seen = set()
    for row in rows:
        base = (row["before_rps"], row["before_p50"], row["before_p99"])
        if base not in seen:
            seen.add(base)
            lines.append("- Before `%s`: p50 %.1f ms, p99 %.1f ms." % (row["key"], row["before_p50"], row["before_p99"]))
        if row["failures"]:
            lines.append("- `%s`: failed requests by answer: %s." % (
                row["key"], ", ".join("%s x%d" % (code, count) for code, count in sorted(row["failures"].items()))))
    by_key = {row["key"]: row for row in rows}
    if "naive" in by_key and "collection" in by_key:
        naive, atomic = by_key["naive"], by_key["collection"]
        lines.append(
            "- Pace of the loops: one switch's module run (timed inside Ansible, over SSH) took %.2f s by the "
            "collection and %.2f s the naive way (medians; max %.2f s and %.2f s). The failures per switch do not "
            "depend on the pace: every naive switch opens its own gap." % (
                percentile(atomic.get("module_runs", []), 0.5), percentile(naive.get("module_runs", []), 0.5),
                max(atomic.get("module_runs", [float("nan")])), max(naive.get("module_runs", [float("nan")]))))
        lines.append(
            "- Same host, same load, %d switches each: the naive switch failed **%d** requests (%.2f per switch, "
            "%.2f%% of the requests in its window), the collection's **%d**." % (
                naive["changes"], naive["failed"], naive["failed"] / naive["changes"],
                100.0 * naive["failed"] / naive["requests"] if naive["requests"] else 0.0, atomic["failed"]))
    lines.append(
        "- Rates: controller (`ansible-playbook`), load generator and every container share the machine's %d cores "
        "(with other jobs: load average %.1f when the run started; **load avg** in the table is the 1-minute load "
        "average at the end of each window), so a lower rate during a change is mostly `ansible-playbook` taking CPU "
        "from the load generator, not the hosts refusing requests: compare the ratios, and the failures, more than "
        "the requests per second." % (os.cpu_count() or 0, meta["loadavg"]))
    lines.append("- The whole benchmark (containers up, deployments, loads, clean-up) took %.0f s." % meta["elapsed"])
    return "\n".join(lines)


def main():
    from report import write_section  # pylint: disable=import-outside-toplevel
    from sshhosts import Hosts  # pylint: disable=import-outside-toplevel
    # A SIGTERM (timeout, CI cancel) unwinds like Ctrl-C, so that the containers are removed.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))
    os.makedirs(WORK, exist_ok=True)
    for sub in ("revisions", "cache"):
        shutil.rmtree(os.path.join(WORK, sub), ignore_errors=True)
    started = time.monotonic()
    start_loadavg = os.getloadavg()[0]
    print("zero-downtime bench: %d load clients, %d switches; starting 5 SSH hosts" % (THREADS, SWITCHES), flush=True)
    loads = []
    rows = []
    try:
        with Hosts(PREFIX, 5, WORK) as hosts:
            print("  hosts up in %.0f s" % (time.monotonic() - started), flush=True)
            bench = Bench(hosts)
            servers = "\n".join("    server %s %s:8080 check" % (name, bench.addr(name)) for name in WEB)
            bench.ssh("lb", "cat > /etc/haproxy/haproxy.cfg <<'EOF'\n%sEOF\n%s" % (HAPROXY_CFG % servers, HAPROXY_START))
            bench.ssh("single", "cat > /etc/nginx/sites-enabled/default <<'EOF'\n%sEOF\nnginx -t -q && nginx" % NGINX_CFG)

            # The fleet the changes start from (not measured): v1 everywhere, then v2 on the single host too,
            # so that it has two releases to switch between.
            v1, src1 = bench.new_revision()
            bench.deploy("web", src1, "CodeDeployDefault.AllAtOnce", True, "web-v1")
            bench.deploy("single", src1, "CodeDeployDefault.AllAtOnce", False, "single-v1")
            for name in WEB:
                bench.serves(name, 8080, "/", v1)
            bench.serves("single", 80, "/version.txt", v1)
            print("  v1 deployed (%.0f s elapsed)" % (time.monotonic() - started), flush=True)

            # 1. Rolling deployment behind haproxy.
            v2, src2 = bench.new_revision()
            load = Load("rolling", "http://%s:80/" % bench.addr("lb"))
            loads.append(load)
            load.start()
            time.sleep(1 + BEFORE)
            begin, end, dummy, dummy_records = bench.deploy("web", src2, "CodeDeployDefault.OneAtATime", True, "web-v2")
            rolling_loadavg = loadavg()
            time.sleep(2)
            load.stop()
            for name in WEB:
                bench.serves(name, 8080, "/", v2)
            rows += measure(load, (begin - BEFORE, begin), [("rolling", [(begin, end)], len(WEB), rolling_loadavg)])
            print("  rolling: %s (%.0f s elapsed)" % (json.dumps(load.result, sort_keys=True)[:300],
                                                      time.monotonic() - started), flush=True)

            # 2 and 3. The single host, served directly by nginx through current.
            load = Load("single", "http://%s:80/version.txt" % bench.addr("single"))
            loads.append(load)
            load.start()
            time.sleep(1 + BEFORE)
            windows = []
            begin, end, dummy, dummy_records = bench.deploy("single", src2, "CodeDeployDefault.AllAtOnce", False, "single-v2")
            windows.append(("deploy", [(begin, end)], 1, loadavg()))
            bench.serves("single", 80, "/version.txt", v2)
            current = bench.ssh("single", "readlink %s/current" % RELEASE_ROOT).strip().split("/")[-1]
            others = [name for name in bench.ssh("single", "ls %s/releases" % RELEASE_ROOT).split() if name != current]
            if len(others) != 1:
                raise SystemExit("single: releases %r beside the current %s, expected v1's only" % (others, current))
            pair = [others[0], current]  # v1's and v2's releases, v2 current
            # Half the switches of each method, then the other half in the reverse order (ABBA), so that a
            # change of the machine's load from other jobs hits both methods alike.
            ids = [pair[index % 2] for index in range(SWITCHES // 2)]  # v1, v2, v1, ... ends on v2
            spans = {"collection": [], "naive": []}
            averages = {"collection": [], "naive": []}
            module_runs = {"collection": [], "naive": []}
            for method in ("collection", "naive", "naive", "collection"):
                time.sleep(2)
                span, runs = bench.switches(method, ids)
                spans[method].append(span)
                module_runs[method] += runs
                averages[method].append(os.getloadavg()[0])
                target = bench.ssh("single", "readlink %s/current" % RELEASE_ROOT).strip()
                if target != "releases/%s" % ids[-1]:
                    raise SystemExit("%s: current is %r after the loop, not releases/%s" % (method, target, ids[-1]))
            for method in ("collection", "naive"):
                windows.append((method, spans[method], 2 * len(ids),
                                "/".join("%.1f" % value for value in averages[method]), module_runs[method]))
            time.sleep(2)
            load.stop()
            rows += measure(load, (windows[0][1][0][0] - BEFORE, windows[0][1][0][0]), windows)
            print("  single: %s (%.0f s elapsed)" % (json.dumps(load.result, sort_keys=True)[:300],
                                                     time.monotonic() - started), flush=True)
    finally:
        for load in loads:
            load.kill()
    elapsed = time.monotonic() - started
    for row in rows:
        print(json.dumps(row, sort_keys=True), flush=True)
    meta = {"elapsed": elapsed, "loadavg": start_loadavg}
    print(json.dumps({"meta": meta}), flush=True)
    text = render(rows, meta)
    write_section("zero_downtime", text)
    print(text)
    print("zero-downtime bench: %.0f s in all" % elapsed, flush=True)


if __name__ == "__main__":
    if len(sys.argv) == 8 and sys.argv[1] == "--load":
        sys.exit(run_load(sys.argv[2:]))
    elif len(sys.argv) == 3 and sys.argv[1] == "--render":
        # Re-render the section from the JSON lines a previous run printed.
        from report import write_section  # pylint: disable=import-outside-toplevel
        with open(sys.argv[2]) as log:
            ITEMS = [json.loads(line) for line in log if line.startswith("{")]
        ROWS = [item for item in ITEMS if "key" in item]
        META = [item["meta"] for item in ITEMS if "meta" in item][-1]
        write_section("zero_downtime", render(ROWS, META))
        print(render(ROWS, META))
    else:
        main()
