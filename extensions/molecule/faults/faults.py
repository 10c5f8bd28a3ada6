"""Drive the fleet faults of the `faults` scenario from the controller (issue 14, faults 1, 2, 4, 6, 7).

    faults.py make                   make the scenario's own revisions (other-v1, webapp-slow, hostile/*)
    faults.py FAULT INVENTORY        run one fault: baseline, hostile, host_stopped, controller_killed,
                                     concurrent, other_untouched, permissions_reach

Every deployment runs as a real `ansible-playbook` process (in the background where the fault needs it), and
its output and rc are kept. A snapshot reads each host through `podman exec`: its `current` link and the
release it resolves to, the records under deployment-instructions/, the lock files, checksums of whole
trees, and haproxy's view of the servers. Each fault writes <ephemeral>/faults/<fault>.json for the
testinfra verifier (tests/test_faults.py). Only ever aimed at the scenario's own containers.
"""
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

EPHEMERAL = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
PROJECT = Path(__file__).resolve().parents[3]
OUT = EPHEMERAL / "faults"
REVISIONS = EPHEMERAL / "revisions"
HOSTS = ["web1", "web2", "web3", "web4"]
PREFIX = "faults-"
ROOT = "/opt/codedeploy-agent/deployment-root"
WEBAPP = "/opt/appspec-example"
OTHER = "/opt/other"
PLAYBOOK_BIN = str(Path(sys.executable).parent / "ansible-playbook")
ANSIBLE_BIN = str(Path(sys.executable).parent / "ansible")
LB = {"type": "haproxy", "host": "lb", "backend": "app", "drain_timeout": 5}
DEPLOYMENT_ID = re.compile(r"Deployment (d-[0-9A-Z]{9}) of ")

sys.path.insert(0, str(PROJECT / ".cache" / "collections"))  # scripts/bootstrap.sh links the checkout there
from ansible_collections.appspec.deploy.plugins.module_utils._layout import deployment_group_id  # noqa: E402  pylint: disable=wrong-import-position

WEBAPP_GID = deployment_group_id("webapp", "default")
OTHER_GID = deployment_group_id("other", "default")

# Runs on each host (python3 -), reads everything a fault may have changed. Standard library only.
SNAPSHOT = r'''
import hashlib, json, os, sys
ROOT, WEBAPP, OTHER, WEBAPP_GID, OTHER_GID = sys.argv[1:6]

def tree(path, skip=()):
    if not os.path.lexists(path):
        return None
    digest, count = hashlib.sha256(), 0
    for top, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(dirs + files):
            full = os.path.join(top, name)
            rel = os.path.relpath(full, path)
            if rel.split(os.sep)[0] in skip:
                continue
            st = os.lstat(full)
            digest.update(("%s\0%o\0%d:%d\0" % (rel, st.st_mode, st.st_uid, st.st_gid)).encode())
            if os.path.islink(full):
                digest.update(os.readlink(full).encode())
            elif os.path.isfile(full):
                with open(full, "rb") as handle:
                    digest.update(handle.read())
            count += 1
    return {"sha256": digest.hexdigest(), "entries": count}

def read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return None

def release(root):
    link = os.path.join(root, "current")
    releases = os.path.join(root, "releases")
    out = {"link": os.readlink(link) if os.path.islink(link) else None,
           "releases": sorted(os.listdir(releases)) if os.path.isdir(releases) else []}
    if out["link"] is not None:
        target = os.path.realpath(link)
        out.update(target=target, is_dir=os.path.isdir(target),
                   unfinished=os.path.exists(os.path.join(target, ".appspec-unfinished")),
                   version=(read(os.path.join(target, "VERSION")) or "").strip() or None,
                   files=sorted(os.listdir(target)) if os.path.isdir(target) else [])
    log = read(os.path.join(root, ".appspec-releases.json"))
    out["release_log"] = json.loads(log) if log else None
    return out

instructions = os.path.join(ROOT, "deployment-instructions")
locks = os.path.join(ROOT, "locks")
records = {name: read(os.path.join(instructions, name)) for name in sorted(os.listdir(instructions))} if os.path.isdir(instructions) else {}
lockfiles = {}
if os.path.isdir(locks):
    for name in sorted(os.listdir(locks)):
        text = read(os.path.join(locks, name))
        try:
            lockfiles[name] = json.loads(text)
        except (TypeError, ValueError):
            lockfiles[name] = text
print(json.dumps({
    "running": True,
    "webapp": release(WEBAPP),
    "other": release(OTHER),
    "records": records,
    "locks": lockfiles,
    "deployments": sorted(os.listdir(os.path.join(ROOT, WEBAPP_GID))) if os.path.isdir(os.path.join(ROOT, WEBAPP_GID)) else [],
    "trees": {
        "webapp_release_root": tree(WEBAPP),
        "webapp_deployment_root": tree(os.path.join(ROOT, WEBAPP_GID)),
        "deployment_instructions": tree(instructions),
        "markers": tree("/var/lib/appspec-example/markers"),
        "other_release_root": tree(OTHER),
        "other_deployment_root": tree(os.path.join(ROOT, OTHER_GID)),
        "other_records": {name: hashlib.sha256((records[name] or "").encode()).hexdigest()
                          for name in records if name.startswith(OTHER_GID)},
        "deployment_logs": tree(os.path.join(ROOT, "deployment-logs")),
    },
}, sort_keys=True))
'''


def podman(*args, check=True, timeout=120, stdin=None):
    return subprocess.run(["podman", *args], input=stdin, capture_output=True, text=True, check=check, timeout=timeout)


def snapshot(hosts=None):
    """Every host's state (or {"running": False} for a stopped one)."""
    state = {}
    for name in hosts or HOSTS:
        result = podman("exec", "-i", PREFIX + name, "python3", "-", ROOT, WEBAPP, OTHER, WEBAPP_GID, OTHER_GID,
                        check=False, timeout=60, stdin=SNAPSHOT) if _running(name) else None
        if result is None or result.returncode != 0:
            state[name] = {"running": False, "error": result.stderr if result else "stopped"}
        else:
            state[name] = json.loads(result.stdout)
    return state


def _running(name):
    result = podman("inspect", "--format", "{{.State.Running}}", PREFIX + name, check=False)
    return result.stdout.strip() == "true"


def haproxy_servers():
    result = podman("exec", PREFIX + "lb", "sh", "-c", "echo 'show servers state app' | socat stdio /run/haproxy/admin.sock",
                    check=False)
    servers = {}
    for line in result.stdout.splitlines():
        fields = line.split()
        if len(fields) > 7 and fields[3] in HOSTS:
            servers[fields[3]] = {"operational": int(fields[5]), "admin": int(fields[6])}
    return servers


class Run:
    """One ansible-playbook (or ansible) process, its output in <ephemeral>/faults/<name>.log."""

    def __init__(self, name, inventory, playbook=None, extra=None, module=None):
        self.name = name
        self.log = OUT / (name + ".log")
        if module:
            argv = [ANSIBLE_BIN, "webservers", "--inventory", inventory, "-m", module[0], "-a", module[1]]
        else:
            argv = [PLAYBOOK_BIN, "--inventory", inventory, str(PROJECT / "playbooks" / playbook), "--extra-vars", json.dumps(extra)]
        self.argv = argv
        self.started = time.time()
        env = dict(os.environ, PYTHONUNBUFFERED="1", ANSIBLE_FORCE_COLOR="0", NO_COLOR="1")
        with open(self.log, "w", encoding="utf-8") as handle:
            # A session of its own: SIGKILL of the group is the controller dying with its workers.
            self.process = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self.killed_at = None

    def output(self):
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_for(self, pattern, occurrence=1, timeout=300):
        """Wait until the output holds `pattern` `occurrence` times; fail if the run ends first."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if len(re.findall(pattern, self.output())) >= occurrence:
                return time.time() - self.started
            if self.process.poll() is not None:
                tail = self.output()[-3000:]
                raise RuntimeError("%s ended (rc %s) before %r appeared:\n%s" % (self.name, self.process.returncode, pattern, tail))
            time.sleep(0.1)
        raise RuntimeError("%s: %r did not appear in %ss" % (self.name, pattern, timeout))

    def kill(self):
        self.killed_at = round(time.time() - self.started, 1)
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def wait(self, timeout=900):
        self.process.wait(timeout=timeout)
        return self.record()

    def record(self):
        text = self.output()
        ids = DEPLOYMENT_ID.findall(text)
        return {"name": self.name, "argv": self.argv[:4], "rc": self.process.returncode, "killed_at": self.killed_at,
                "seconds": round(time.time() - self.started, 1), "deployment_id": ids[0] if ids else None, "output": text}


def deploy(name, inventory, revision, config="CodeDeployDefault.AllAtOnce", lb=True, hosts="webservers", **more):
    extra = {"appspec_hosts": hosts, "appspec_revision": str(REVISIONS / revision), "appspec_application_name": "webapp",
             "appspec_release_root": WEBAPP, "appspec_deployment_config": config}
    if lb:
        extra["appspec_load_balancer"] = LB
    extra.update(more)
    return Run(name, inventory, "deploy.yml", extra)


def save(fault, data):
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / (fault + ".json")
    path.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
    print("%s: written %s" % (fault, path))


def wait_running(name):
    for dummy in range(60):
        result = podman("exec", PREFIX + name, "systemctl", "is-system-running", "--wait", check=False)
        if result.stdout.strip() == "running":
            return
        time.sleep(1)
    raise RuntimeError("%s did not come back" % name)


# ---------------------------------------------------------------------------------------------- faults

def fault_baseline(inventory):
    """The state before any fault (fault 7 compares `other` against it at the very end)."""
    del inventory
    save("baseline", {"snapshot": snapshot()})


def fault_hostile(inventory):
    """6. Hostile revisions through playbooks/deploy.yml: refused before any host is changed (web1 read before
    and after each run)."""
    runs = {}
    for case in sorted(path.name for path in (REVISIONS / "hostile").iterdir()):
        path = REVISIONS / "hostile" / case
        revision = path / "bundle.tgz" if (path / "bundle.tgz").exists() else path
        before = snapshot(["web1"])["web1"]
        run = Run("hostile-" + case, inventory, "deploy.yml", {
            "appspec_hosts": "webservers", "appspec_revision": str(revision), "appspec_application_name": "webapp",
            "appspec_release_root": WEBAPP, "appspec_deployment_config": "CodeDeployDefault.AllAtOnce"}).wait(timeout=600)
        runs[case] = dict(run, before=before, after=snapshot(["web1"])["web1"])
    save("hostile", {"runs": runs})


def fault_host_stopped(inventory):
    """1. web3 stopped a few seconds into a OneAtATime deployment behind haproxy; started; the re-run."""
    before = snapshot()
    run = deploy("stopped-deploy", inventory, "webapp-v2", config="CodeDeployDefault.OneAtATime")
    run.wait_for(r"TASK \[[^\]]*BeforeBlockTraffic")  # web1's batch has begun
    time.sleep(3)
    stop_started = round(time.time() - run.started, 1)
    stopped = podman("stop", "--time", "2", PREFIX + "web3", check=False)
    first = run.wait()
    during = snapshot()
    servers_during = haproxy_servers()
    podman("start", PREFIX + "web3")
    wait_running("web3")
    # The restarted container has a new address; haproxy resolved `web3` once at its start (no resolvers here),
    # so tell it, as an operator (or DNS resolvers in haproxy.cfg) would. Its admin state is left as it was.
    address = podman("inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", PREFIX + "web3").stdout.strip()
    podman("exec", PREFIX + "lb", "sh", "-c", "echo 'set server app/web3 addr %s' | socat stdio /run/haproxy/admin.sock" % address)
    rerun = deploy("stopped-rerun", inventory, "webapp-v2").wait()  # AllAtOnce: the fault is over, save time
    save("host_stopped", {"before": before, "stop_started": stop_started, "stop_rc": stopped.returncode, "first": first,
                          "during": during, "servers_during": servers_during, "rerun": rerun, "after": snapshot(),
                          "servers_after": haproxy_servers()})


def _break_lock(inventory, name):
    return Run(name, inventory, module=("appspec.deploy.release",
                                        "state=unlocked force=true application_name=webapp deployment_group_name=default")).wait()


def fault_controller_killed(inventory):
    """2. SIGKILL of ansible-playbook (and its workers) at two points of a OneAtATime deployment behind haproxy."""
    data = {"before": snapshot()}
    # Point A: web1 (first batch) in the middle of its ApplicationStop..ValidateService module run, drained, locked.
    run = deploy("killed-a", inventory, "webapp-v3", config="CodeDeployDefault.OneAtATime")
    run.wait_for(r"TASK \[[^\]]*ApplicationStop to ValidateService")
    time.sleep(1.5)
    run.kill()
    time.sleep(3)  # what the hosts were doing ends on its own (or not): look after it had the time to
    data["a"] = {"run": run.record(), "after_kill": snapshot(), "servers": haproxy_servers()}
    data["a"]["refused"] = deploy("killed-a-refused", inventory, "webapp-v3", hosts="web1").wait()
    data["a"]["break"] = _break_lock(inventory, "killed-a-break")
    data["a"]["rerun"] = deploy("killed-a-rerun", inventory, "webapp-v3").wait()
    data["a"]["after"] = snapshot()
    data["a"]["servers_after"] = haproxy_servers()
    # Point B: web2 (second batch) switched and about to be put back in haproxy; web1 done, web3 and web4 not started.
    run = deploy("killed-b", inventory, "webapp-v2", config="CodeDeployDefault.OneAtATime")
    run.wait_for(r"TASK \[appspec\.deploy\.lifecycle : BeforeAllowTraffic\]", occurrence=2)
    run.kill()
    time.sleep(3)
    data["b"] = {"run": run.record(), "after_kill": snapshot(), "servers": haproxy_servers()}
    data["b"]["break"] = _break_lock(inventory, "killed-b-break")
    data["b"]["rerun"] = deploy("killed-b-rerun", inventory, "webapp-v2").wait()
    data["b"]["after"] = snapshot()
    data["b"]["servers_after"] = haproxy_servers()
    save("controller_killed", data)


def fault_concurrent(inventory):
    """4. Two deployments at once: A (a slow revision) on every host, B on web2 and web3 while A holds them."""
    before = snapshot()
    first = deploy("concurrent-a", inventory, "webapp-slow", lb=False)
    deadline = time.time() + 180
    while time.time() < deadline:
        held = [name for name in ("web2", "web3")
                if podman("exec", PREFIX + name, "test", "-e", "%s/locks/%s.lock" % (ROOT, WEBAPP_GID), check=False).returncode == 0]
        if len(held) == 2:
            break
        if first.process.poll() is not None:
            raise RuntimeError("concurrent-a ended early:\n" + first.output()[-3000:])
        time.sleep(0.2)
    during = snapshot()
    second = deploy("concurrent-b", inventory, "webapp-v3", lb=False, hosts="web2:web3").wait()
    save("concurrent", {"before": before, "during": during, "b": second, "a": first.wait(), "after": snapshot()})


def fault_other_untouched(inventory):
    """7. webapp rolled back, failed, redeployed once more; then `other` is compared with the baseline."""
    runs = {}
    runs["rollback"] = Run("other-rollback", inventory, "rollback.yml", {
        "appspec_hosts": "webservers", "appspec_application_name": "webapp", "appspec_release_root": WEBAPP,
        "appspec_deployment_config": "CodeDeployDefault.AllAtOnce"}).wait()
    podman("exec", PREFIX + "web2", "sh", "-c", "echo fail > /etc/appspec-fail-validate")
    runs["failing"] = deploy("other-failing", inventory, "webapp-v2-failing", lb=False).wait()
    podman("exec", PREFIX + "web2", "rm", "-f", "/etc/appspec-fail-validate")
    runs["redeploy"] = deploy("other-redeploy", inventory, "webapp-v3", lb=False).wait()
    save("other_untouched", {"runs": runs, "after": snapshot()})


def fault_permissions_reach(inventory):
    """6c. Permissions objects outside the installed files (/etc mode 777) and above them (the release root, owner
    nobody) in a revision that otherwise works: permissions touch only what the deployment installs."""
    argv = ["python3", "-c", "import json, os, sys; print(json.dumps({p: [oct(os.stat(p).st_mode), os.stat(p).st_uid] "
            "for p in sys.argv[1:]}))", "/", "/etc", "/etc/passwd", "/etc/ssh", "/opt", WEBAPP, WEBAPP + "/releases"]
    before = {name: json.loads(podman("exec", PREFIX + name, *argv).stdout) for name in HOSTS}
    run = deploy("permissions-reach", inventory, "webapp-permissions", lb=False).wait()
    after = {name: json.loads(podman("exec", PREFIX + name, *argv).stdout) for name in HOSTS}
    installed = podman("exec", PREFIX + "web1", "stat", "-c", "%U %a", WEBAPP + "/current/VERSION").stdout.split()
    save("permissions_reach", {"run": run, "before": before, "after": after, "installed_version_file": installed,
                               "snapshot": snapshot()})


# ---------------------------------------------------------------------------------------------- revisions

APPSPEC_HEAD = "version: 0.0\nos: linux\n"


def _write(path, text, mode=0o644):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)


def _plain(directory, files_source="app", hook=None):
    """A revision: app/VERSION and scripts/ok.sh, its AppSpec installing `files_source` into current."""
    _write(directory / "app" / "VERSION", "6.6.6\n")
    _write(directory / "scripts" / "ok.sh", "#!/bin/sh\nexit 0\n", 0o755)
    text = APPSPEC_HEAD + "files:\n  - source: %s\n    destination: %s/current\n" % (files_source, WEBAPP)
    if hook:
        text += "hooks:\n  BeforeInstall:\n    - location: %s\n      timeout: 30\n" % hook
    _write(directory / "appspec.yml", text)


def _tar(directory, members):
    """bundle.tgz with a good AppSpec and app/VERSION, then the given hostile members (name, kind, target)."""
    directory.mkdir(parents=True, exist_ok=True)
    staging = directory / "staging"
    _plain(staging)
    with tarfile.open(directory / "bundle.tgz", "w:gz") as archive:
        for rel in ("appspec.yml", "app", "app/VERSION", "scripts", "scripts/ok.sh"):
            archive.add(str(staging / rel), arcname=rel, recursive=False)
        for name, kind, target in members:
            info = tarfile.TarInfo(name)
            info.mtime = int(time.time())
            if kind == "file":
                data = b"escaped\n"
                info.size = len(data)
                info.mode = 0o644
                archive.addfile(info, io.BytesIO(data))
            else:
                info.type = tarfile.SYMTYPE
                info.linkname = target
                archive.addfile(info)
    shutil.rmtree(staging)


def make():
    """The scenario's own revisions (shared/revisions.yml makes the webapp variants)."""
    other = REVISIONS / "other-v1"
    _write(other / "app" / "VERSION", "other-1\n")
    _write(other / "app" / "data.txt", "belongs to other\n")
    _write(other / "appspec.yml", APPSPEC_HEAD + "files:\n  - source: app\n    destination: %s/current\n" % OTHER)

    slow = REVISIONS / "webapp-slow"
    slow.mkdir(parents=True, exist_ok=True)
    if not (slow / "app").exists():
        subprocess.run(["cp", "-a", str(PROJECT / "examples" / "webapp") + "/.", str(slow)], check=True)
    _write(slow / "app" / "VERSION", "2.0.0\n")
    _write(slow / "scripts" / "slow.sh", "#!/bin/sh\n# Holds the host lock long enough for a second deployment to meet it.\nsleep 25\n", 0o755)
    text = (PROJECT / "examples" / "webapp" / "appspec.yml").read_text(encoding="utf-8")
    text = text.replace("  BeforeInstall:\n", "  BeforeInstall:\n    - location: scripts/slow.sh\n      timeout: 60\n", 1)
    _write(slow / "appspec.yml", text)

    reach = REVISIONS / "webapp-permissions"
    reach.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-a", str(PROJECT / "examples" / "webapp") + "/.", str(reach)], check=True)
    _write(reach / "app" / "VERSION", "4.0.0\n")
    text = (PROJECT / "examples" / "webapp" / "appspec.yml").read_text(encoding="utf-8")
    # The example's own permissions replaced: /etc (outside), and the release root above `current` (all installed files).
    head, rest = text.split("permissions:\n", 1)
    text = head + ("permissions:\n  - object: /etc\n    mode: 777\n  - object: %s\n    owner: nobody\n    type:\n      - file\n"
                   % WEBAPP) + rest[rest.index("hooks:\n"):]
    _write(reach / "appspec.yml", text)

    hostile = REVISIONS / "hostile"
    _plain(hostile / "files-source-dotdot", files_source="../x")
    _plain(hostile / "files-source-absolute", files_source="/etc")
    _plain(hostile / "files-source-symlink-out", files_source="app-out")
    link = hostile / "files-source-symlink-out" / "app-out"
    if not link.is_symlink():
        link.symlink_to("/etc")
    _plain(hostile / "hook-location-dotdot", hook="../x.sh")
    _plain(hostile / "hook-location-absolute", hook="/bin/true")
    _plain(hostile / "hook-location-symlink-out", hook="scripts/out.sh")
    link = hostile / "hook-location-symlink-out" / "scripts" / "out.sh"
    if not link.is_symlink():
        link.symlink_to("/bin/true")
    bomb = hostile / "yaml-alias-bomb"
    _plain(bomb)
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 10):
        lines.append("a%d: &a%d [%s]" % (level, level, ", ".join(["*a%d" % (level - 1)] * 9)))
    _write(bomb / "appspec.yml", APPSPEC_HEAD + "\n".join(lines) + "\nfiles:\n  - source: app\n    destination: %s/current\n"
           "hooks:\n  BeforeInstall: *a9\n" % WEBAPP)
    huge = hostile / "appspec-100mb"
    _plain(huge)
    with open(huge / "appspec.yml", "a", encoding="utf-8") as handle:
        line = "# " + "x" * 1021 + "\n"
        for dummy in range(100 * 1024):
            handle.write(line)
    _tar(hostile / "tar-member-dotdot", [("../escaped.txt", "file", None)])
    _tar(hostile / "tar-member-absolute", [("/tmp/escaped.txt", "file", None)])
    _tar(hostile / "tar-member-through-symlink", [("app/out", "symlink", "/tmp"), ("app/out/escaped.txt", "file", None)])


FAULTS = {name[len("fault_"):]: function for name, function in globals().items() if name.startswith("fault_")}

if __name__ == "__main__":
    if sys.argv[1:] == ["make"]:
        make()
    else:
        OUT.mkdir(parents=True, exist_ok=True)
        FAULTS[sys.argv[1]](sys.argv[2])
