# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The watch after deploying and the preflight (issue 12, items 4 and 5): real ansible-playbook runs on this machine.

The watch test deploys a small real web server (a revision written here): v1 is healthy; v2 answers /health with 200
until a file exists (the test makes it once the watch has seen two good rounds), then with 500. The watch of v2
must see only passing rounds before that, catch the degradation, roll the deployment back to v1 and record why
in the revision history.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import subprocess
import sys
import textwrap
import threading
import time
import typing as t
import urllib.error
import urllib.request

import pytest

from bundle_fixtures import REPO, free_port, write_files
from lb_fixtures import HAProxyInstance

APPSPEC = """
version: 0.0
os: linux
files:
  - source: app
    destination: {destination}
hooks:
  ApplicationStop:
    - location: scripts/stop.sh
  ApplicationStart:
    - location: scripts/start.sh
  ValidateService:
    - location: scripts/validate.sh
"""

SERVER = '''
import http.server, os, sys, time
here = os.path.dirname(os.path.abspath(__file__))
read = lambda name: open(os.path.join(here, name)).read().strip()
port, degrade, log = int(read("PORT")), read("DEGRADE"), read("LOG")

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        failing = self.path == "/health" and os.path.exists(degrade)
        body = (read("VERSION") + "\\n").encode()
        self.send_response(500 if failing else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        with open(log, "a") as handle:
            handle.write("%.3f %s %s %d\\n" % (time.time(), read("VERSION"), self.path, 500 if failing else 200))

    def log_message(self, *args):
        pass

http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()
'''

START = """#!/bin/sh
set -eu
cd /
setsid {python} {destination}/server.py >>{tmp}/server.out 2>&1 < /dev/null &
echo $! > {tmp}/server.pid
"""

STOP = """#!/bin/sh
if [ -f {tmp}/server.pid ]; then
    kill "$(cat {tmp}/server.pid)" 2>/dev/null || true
    for i in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$(cat {tmp}/server.pid)" 2>/dev/null || break; sleep 0.2; done
    rm -f {tmp}/server.pid
fi
"""

VALIDATE = """#!/bin/sh
for i in $(seq 50); do
    {python} -c 'import urllib.request; urllib.request.urlopen("http://127.0.0.1:{port}/health", timeout=1)' 2>/dev/null && exit 0
    sleep 0.1
done
exit 1
"""


class Site:
    def __init__(self, tmp_path: t.Any) -> None:
        self.tmp = tmp_path
        self.root_dir = tmp_path / "deployment-root"
        self.history = tmp_path / "history"
        self.inventory = tmp_path / "inventory.yml"
        self.inventory.write_text(textwrap.dedent("""
            all:
              hosts:
                h1: {ansible_connection: local, ansible_python_interpreter: %s}
                h2: {ansible_connection: local, ansible_python_interpreter: %s}
        """ % (sys.executable, sys.executable)))

    def run(self, playbook: str, *args: str, when: t.Optional[t.Tuple[str, t.Callable[[], None]]] = None,
            **extra_vars: t.Any) -> t.Tuple[int, str]:
        """Run a playbook; ``when`` (pattern, action): call action once, as soon as a line of output matches."""
        extra = dict(dict(appspec_root_dir=str(self.root_dir), appspec_history_dir=str(self.history)), **extra_vars)
        env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_LOCAL_TEMP=str(self.tmp / "ltmp"),
                   APPSPEC_DEPLOY_CACHE_DIR=str(self.tmp / "cache"), APPSPEC_DEPLOY_SUMMARY_FILE=str(self.tmp / "report.json"),
                   ANSIBLE_NOCOLOR="1", PYTHONUNBUFFERED="1")
        proc = subprocess.Popen(
            [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", str(self.inventory),
             os.path.join(REPO, "playbooks", playbook), "-e", json.dumps(extra)] + list(args),
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        lines = []
        for raw in proc.stdout:
            line = raw.decode(errors="replace")
            lines.append(line)
            if when and re.search(when[0], line):
                when[1]()
                when = None
        return proc.wait(), "".join(lines)


@pytest.fixture
def site(tmp_path):
    return Site(tmp_path)


def web_revision(site: Site, version: str, port: int) -> str:
    destination = site.tmp / "app"
    path = site.tmp / "revisions" / version
    values = dict(python=sys.executable, destination=destination, tmp=site.tmp, port=port)
    write_files(str(path), {
        "appspec.yml": APPSPEC.format(destination=destination),
        "app/server.py": SERVER,
        "app/VERSION": version + "\n",
        "app/PORT": "%d\n" % port,
        "app/DEGRADE": "%s\n" % (site.tmp / ("degrade-" + version)),
        "app/LOG": "%s\n" % (site.tmp / "requests.log"),
        "scripts/start.sh": START.format(**values),
        "scripts/stop.sh": STOP.format(**values),
        "scripts/validate.sh": VALIDATE.format(**values),
    })
    return str(path)


def get(port: int, path: str) -> t.Tuple[int, str]:
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=2) as response:
            return response.status, response.read().decode().strip()
    except urllib.error.HTTPError as err:
        return err.code, ""


def records(site: Site) -> t.List[t.Dict[str, t.Any]]:
    folder = site.history / "web" / "deployments"
    return [json.loads((folder / name).read_text()) for name in sorted(os.listdir(str(folder)))]


def test_the_watch_rolls_back_a_deployment_whose_health_degrades(site):
    port = free_port()
    common = dict(appspec_application_name="web", appspec_deployment_config="CodeDeployDefault.AllAtOnce")
    try:
        rc, out = site.run("deploy.yml", "--limit", "h1", appspec_revision=web_revision(site, "v1", port), **common)
        assert rc == 0, out[-4000:]
        assert get(port, "/health") == (200, "v1")
        # v2 degrades once the watch (one round every 2 s) has seen two good rounds: the watch must roll it back.
        degraded = []

        def degrade():
            degraded.append(time.time())
            (site.tmp / "degrade-v2").write_text("")

        rc, out = site.run("deploy.yml", "--limit", "h1", appspec_revision=web_revision(site, "v2", port), **common,
                           when=(r"round 2/30: ok", degrade), appspec_watch_seconds=60, appspec_watch_interval=2,
                           appspec_watch_probes=[{"url": "http://127.0.0.1:%d/health" % port},
                                                 {"command": "test -f %s/app/server.py" % site.tmp}])
        assert rc != 0, out[-4000:]
        assert degraded, out[-4000:]
        rounds = re.findall(r"round (\d+)/30: (ok|FAILED)", out)
        assert rounds[-1][1] == "FAILED" and len(rounds) >= 3, out[-4000:]
        assert all(verdict == "ok" for dummy, verdict in rounds[:-1]), rounds
        assert "1 of 2 probes failed" in out
        assert re.search(r"The watch rolled deployment d-\w+ of web back: round \d+ of 30", " ".join(out.split()))
        # v1 is back and serving.
        assert get(port, "/health") == (200, "v1")
        assert (site.tmp / "app" / "VERSION").read_text() == "v1\n"
        # No failed request before the degradation: every request to v2 before the file existed passed.
        log = [line.split() for line in (site.tmp / "requests.log").read_text().splitlines()]
        v2 = [entry for entry in log if entry[1] == "v2"]
        before = [entry for entry in v2 if float(entry[0]) < degraded[0]]
        after = [entry for entry in v2 if float(entry[0]) >= degraded[0]]
        assert len(before) >= 3 and all(entry[3] == "200" for entry in before), v2
        assert after and all(entry[3] == "500" for entry in after if entry[2] == "/health"), v2
        # The history says why: the deployment is failed, its host no longer runs it, the watch's verdict and reason.
        last = records(site)[-1]
        assert last["watch"]["verdict"] == "failed" and "probes failed" in last["watch"]["reason"]
        assert last["watch"]["rounds"] == len(rounds)
        assert last["status"] == "failed"
        assert last["hosts"]["h1"]["running"] is False and last["hosts"]["h1"]["rollback"]["status"] == "succeeded"
        # The deployment before it is untouched.
        assert records(site)[-2]["status"] == "succeeded" and "watch" not in records(site)[-2]
    finally:
        pidfile = site.tmp / "server.pid"
        if pidfile.exists():
            subprocess.run(["kill", pidfile.read_text().strip()], check=False)


def test_a_watch_that_passes_records_it_and_changes_nothing(site):
    port = free_port()
    common = dict(appspec_application_name="web", appspec_deployment_config="CodeDeployDefault.AllAtOnce")
    try:
        rc, out = site.run("deploy.yml", "--limit", "h1", appspec_revision=web_revision(site, "v1", port), **common)
        assert rc == 0, out[-4000:]
        deployment_id = records(site)[-1]["deployment_id"]
        # watch.yml alone, on the deployment made before.
        rc, out = site.run("watch.yml", "--limit", "h1", appspec_deployment_id=deployment_id, appspec_watch_seconds=2,
                           appspec_watch_interval=1, appspec_watch_probes=[{"url": "http://127.0.0.1:%d/health" % port}],
                           **common)
        assert rc == 0, out[-4000:]
        assert re.findall(r"round (\d)/2: (ok|FAILED)", out) == [("1", "ok"), ("2", "ok")]
        last = records(site)[-1]
        assert last["deployment_id"] == deployment_id and last["status"] == "succeeded"
        assert last["watch"]["verdict"] == "passed" and last["watch"]["rounds"] == 2
        assert get(port, "/health") == (200, "v1")
    finally:
        pidfile = site.tmp / "server.pid"
        if pidfile.exists():
            subprocess.run(["kill", pidfile.read_text().strip()], check=False)


# --- preflight ------------------------------------------------------------------------------------

PREFLIGHT_APPSPEC = """
version: 0.0
os: linux
files:
  - source: app
    destination: {destination}
hooks:
  ApplicationStart:
    - location: scripts/start.sh
      runas: {user}
"""


def preflight_revision(site: Site, name: str, user: str, big: int) -> str:
    path = site.tmp / "revisions" / name
    write_files(str(path), {
        "appspec.yml": PREFLIGHT_APPSPEC.format(destination=site.tmp / "files", user=user),
        "scripts/start.sh": "#!/bin/sh\nid -un\n",
    })
    (path / "app").mkdir()
    (path / "app" / "big").write_bytes(os.urandom(big))  # random: the archive is as big as its content
    return str(path)


def tree(path: t.Any) -> t.List[str]:
    return sorted(os.path.relpath(os.path.join(folder, name), str(path))
                  for folder, dirs, files in os.walk(str(path)) for name in dirs + files)


def test_preflight_reports_every_problem_of_every_host_and_changes_nothing(site):
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    small = site.tmp / "small"
    small.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(small)], check=False).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        revision = preflight_revision(site, "bad", "no-such-user", 2 * 1024 * 1024)
        common = dict(appspec_application_name="pre", appspec_deployment_config="CodeDeployDefault.AllAtOnce",
                      appspec_revision=revision)
        rc, out = site.run("preflight.yml", **dict(common, appspec_root_dir=str(small / "deployment-root")))
        flat = " ".join(out.split())
        assert rc != 0, flat[-4000:]
        for host in ("h1", "h2"):  # every host checked, both problems of each in one message
            found = re.search(r"fatal: \[%s\]: FAILED! => .*? msg: 'preflight found 2 problems on this host: (.*?)' problems:" % host, flat)
            assert found, flat[-4000:]
            assert "not enough free disk on the file system of %s" % small in found.group(1)
            assert "user no-such-user does not exist (named by hooks.ApplicationStart[0].runas)" in found.group(1)
        assert tree(small) == [] and not (site.tmp / "files").exists()
        # The same inside deploy.yml: the deployment stops before any host is touched.
        rc, out = site.run("deploy.yml", **dict(common, appspec_root_dir=str(small / "deployment-root"), appspec_preflight=True))
        assert rc != 0 and "preflight found 2 problems" in out, out[-4000:]
        assert tree(small) == [] and not (site.tmp / "files").exists()
        assert not site.history.exists() or not tree(site.history)  # not even a record: nothing was deployed
    finally:
        subprocess.run(["umount", "-l", str(small)], check=False)
    # A host that has what the revision needs passes, and the deployment goes ahead.
    good = dict(appspec_application_name="pre", appspec_deployment_config="CodeDeployDefault.AllAtOnce",
                appspec_revision=preflight_revision(site, "good", "nobody", 1024))
    rc, out = site.run("preflight.yml", "--limit", "h1", **good)
    assert rc == 0 and "Preflight passed on h1; nothing was changed." in out, out[-4000:]
    assert not site.root_dir.exists()
    # (runas root: nobody may not enter pytest's tmp_path, which the preflight does not check.)
    good["appspec_revision"] = preflight_revision(site, "good-root", "root", 1024)
    rc, out = site.run("deploy.yml", "--limit", "h1", appspec_preflight=True, **good)
    assert rc == 0, out[-4000:]
    assert (site.tmp / "files" / "big").stat().st_size == 1024


def test_the_watch_reads_haproxy_error_counters(site):
    """With haproxy, the watch judges the errors haproxy counted for the deployment's servers in each round."""
    state = {"status": 200, "stop": False}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            self.send_response(state["status"])
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    backend = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    lb = HAProxyInstance(["h1 127.0.0.1:%d" % backend.server_address[1]])

    def traffic():
        while not state["stop"]:
            try:
                urllib.request.urlopen("http://127.0.0.1:%d/" % lb.port, timeout=2).read()
            except (OSError, urllib.error.HTTPError):
                pass
            time.sleep(0.02)

    load = threading.Thread(target=traffic, daemon=True)
    load.start()
    try:
        rc, out = site.run("watch.yml", "--limit", "h1", when=(r"round 2/10: ok", lambda: state.update(status=503)),
                           appspec_application_name="web", appspec_deployment_id="d-WATCHLB01", appspec_watch_seconds=20,
                           appspec_watch_interval=2,
                           appspec_load_balancer={"type": "haproxy", "socket": lb.socket, "backend": "app"})
        flat = " ".join(out.split())
        rounds = re.findall(r"round (\d+)/10: (ok|FAILED)", flat)
        assert rounds[:2] == [("1", "ok"), ("2", "ok")] and rounds[-1][1] == "FAILED", flat[-4000:]
        assert re.search(r"round 1/10: ok, 0/0 probes passed, haproxy \d+ responses, 0 errors", flat)
        assert re.search(r"haproxy: \d+ of \d+ responses failed \(error rate", flat)
        # Nothing was deployed here: the rollback has nothing to go back to, and the run fails.
        assert rc != 0 and "Nothing to go back to on: h1" in flat
        assert "deployment d-WATCHLB01 is not in the revision history" in flat
    finally:
        state["stop"] = True
        load.join(5)
        lb.stop()
        backend.shutdown()
