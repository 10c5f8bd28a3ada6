"""Drive the host faults of the `host_faults` scenario from the controller (issue 14, faults 3 and 5).

    hostfaults.py make               make the scenario's revisions (disk-*, bomb, hook-*)
    hostfaults.py FAULT INVENTORY    run one fault: disk, bomb, hooks

Every deployment is a real `ansible-playbook` of playbooks/deploy.yml with the ansible.posix.json callback, so
each module result can be read (and measured) as the controller received it. Its rc, peak memory (the whole
process tree's largest RSS, from wait4) and the results of the lifecycle tasks are kept. A snapshot reads each host
through `podman exec`: `current`, the release root (hidden entries too), the deployment dirs and their log sizes,
records, locks, free space, what the application answers, and every process. Each fault writes
<ephemeral>/host_faults/<fault>.json for the testinfra verifier (tests/test_host_faults.py). Only ever aimed at
the scenario's own containers.
"""
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

EPHEMERAL = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
PROJECT = Path(__file__).resolve().parents[3]
OUT = EPHEMERAL / "host_faults"
REVISIONS = EPHEMERAL / "revisions"
HOSTS = ["web1", "web2", "web3"]
PREFIX = "host_faults-"
ROOT = "/opt/codedeploy-agent/deployment-root"
WEBAPP = "/opt/appspec-example"
PLAYBOOK_BIN = str(Path(sys.executable).parent / "ansible-playbook")
MIB = 1024 * 1024

sys.path.insert(0, str(PROJECT / ".cache" / "collections"))  # scripts/bootstrap.sh links the checkout there
from ansible_collections.appspec.deploy.plugins.module_utils._layout import deployment_group_id  # noqa: E402  pylint: disable=wrong-import-position

WEBAPP_GID = deployment_group_id("webapp", "default")

# Runs on each host (python3 -). Standard library only.
SNAPSHOT = r'''
import hashlib, json, os, sys, urllib.request
ROOT, WEBAPP, GID = sys.argv[1:4]

def read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return None

def size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return None

def tree(path):
    if not os.path.lexists(path):
        return None
    digest, count, used = hashlib.sha256(), 0, 0
    for top, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(dirs + files):
            full = os.path.join(top, name)
            st = os.lstat(full)
            digest.update(("%s\0%o\0%d\0" % (os.path.relpath(full, path), st.st_mode, st.st_size)).encode())
            if os.path.islink(full):
                digest.update(os.readlink(full).encode())
            used += st.st_blocks * 512
            count += 1
    return {"sha256": digest.hexdigest(), "entries": count, "used": used}

def free(path):
    st = os.statvfs(path)
    return {"free": st.f_bavail * st.f_frsize, "size": st.f_blocks * st.f_frsize}

link = os.path.join(WEBAPP, "current")
webapp = {"link": os.readlink(link) if os.path.islink(link) else None,
          "entries": sorted(os.listdir(WEBAPP)) if os.path.isdir(WEBAPP) else [],
          "releases": sorted(os.listdir(os.path.join(WEBAPP, "releases"))) if os.path.isdir(os.path.join(WEBAPP, "releases")) else []}
if webapp["link"]:
    target = os.path.realpath(link)
    webapp.update(target=target, unfinished=os.path.exists(os.path.join(target, ".appspec-unfinished")),
                  version=(read(os.path.join(target, "VERSION")) or "").strip() or None)
unfinished = []
for name in webapp["releases"]:
    if os.path.exists(os.path.join(WEBAPP, "releases", name, ".appspec-unfinished")):
        unfinished.append(name)
webapp["unfinished_releases"] = unfinished
log = read(os.path.join(WEBAPP, ".appspec-releases.json"))
webapp["release_log"] = json.loads(log) if log else None
try:
    serving = urllib.request.urlopen("http://127.0.0.1:8080/", timeout=5).read().decode()
except OSError as err:
    serving = "ERROR %s" % err
group = os.path.join(ROOT, GID)
deployments = {}
if os.path.isdir(group):
    for name in sorted(os.listdir(group)):
        path = os.path.join(group, name)
        deployments[name] = {"entries": sorted(os.listdir(path)) if os.path.isdir(path) else None,
                             "scripts_log": size(os.path.join(path, "logs", "scripts.log")),
                             "tree": tree(path)}
instructions = os.path.join(ROOT, "deployment-instructions")
locks = os.path.join(ROOT, "locks")
processes = []
for pid in os.listdir("/proc"):
    if pid.isdigit():
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as handle:
                argv = handle.read().split(b"\0")
        except OSError:
            continue
        if argv and argv[0]:
            processes.append({"pid": int(pid), "cmdline": " ".join(a.decode("utf-8", "replace") for a in argv if a)})
print(json.dumps({
    "webapp": webapp,
    "serving": serving,
    "deployments": deployments,
    "records": {n: read(os.path.join(instructions, n)) for n in sorted(os.listdir(instructions))} if os.path.isdir(instructions) else {},
    "locks": {n: read(os.path.join(locks, n)) for n in sorted(os.listdir(locks))} if os.path.isdir(locks) else {},
    "deployments_log": size(os.path.join(ROOT, "deployment-logs", "codedeploy-agent-deployments.log")),
    "release_root_tree": tree(WEBAPP),
    "deployment_root_tree": tree(ROOT),
    "space": {"release_root": free(WEBAPP) if os.path.isdir(WEBAPP) else None, "deployment_root": free(ROOT)},
    "processes": processes,
}, sort_keys=True))
'''


def podman(*args, check=True, timeout=120, stdin=None):
    return subprocess.run(["podman", *args], input=stdin, capture_output=True, text=True, check=check, timeout=timeout)


def snapshot(hosts=None):
    state = {}
    for name in hosts or HOSTS:
        result = podman("exec", "-i", PREFIX + name, "python3", "-", ROOT, WEBAPP, WEBAPP_GID, timeout=120, stdin=SNAPSHOT)
        state[name] = json.loads(result.stdout)
    return state


def _lifecycle_results(report):
    """The results of the lifecycle's module runs (lifecycle_event), per host, as the controller got them."""
    found = []
    for play in report.get("plays", []):
        for task in play.get("tasks", []):
            for host, result in task.get("hosts", {}).items():
                if result.get("action") in ("appspec.deploy.lifecycle_event", "lifecycle_event") or "events" in result:
                    found.append({"task": task["task"]["name"], "host": host, "bytes": len(json.dumps(result)),
                                  "failed": bool(result.get("failed")), "msg": result.get("msg"),
                                  "rc": result.get("rc"), "module_stderr": (result.get("module_stderr") or "")[-2000:],
                                  "module_stdout": (result.get("module_stdout") or "")[-2000:],
                                  "events": result.get("events"), "failed_event": result.get("failed_event"),
                                  "host_name": result.get("host"), "path": result.get("path"),
                                  "needed_bytes": result.get("needed_bytes"), "free_bytes": result.get("free_bytes")})
    return found


def _messages(report):
    """Every `msg` of every task result (the verdict, the revision's refusal, the per-host lines)."""
    out = []
    for play in report.get("plays", []):
        for task in play.get("tasks", []):
            for host, result in task.get("hosts", {}).items():
                msg = result.get("msg")
                if msg:
                    out.append({"task": task["task"]["name"], "host": host, "failed": bool(result.get("failed")),
                                "msg": msg if isinstance(msg, str) else json.dumps(msg)})
    return out


def deploy(name, inventory, revision, hosts, **more):
    """One ansible-playbook of deploy.yml; its record (rc, seconds, peak RSS of its process tree, results)."""
    extra = {"appspec_hosts": hosts, "appspec_revision": str(revision), "appspec_application_name": "webapp",
             "appspec_release_root": WEBAPP, "appspec_deployment_config": "CodeDeployDefault.AllAtOnce"}
    extra.update(more)
    argv = [PLAYBOOK_BIN, "--inventory", inventory, str(PROJECT / "playbooks" / "deploy.yml"), "--extra-vars", json.dumps(extra)]
    env = dict(os.environ, PYTHONUNBUFFERED="1", ANSIBLE_FORCE_COLOR="0", NO_COLOR="1",
               ANSIBLE_STDOUT_CALLBACK="ansible.posix.json")
    log = OUT / (name + ".out")
    started = time.time()
    with open(log, "wb") as handle:
        process = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, env=env)
        dummy, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = round(time.time() - started, 1)
    text = log.read_text(encoding="utf-8", errors="replace")
    try:
        report = json.loads(text[text.index("{"):])
    except ValueError:
        raise RuntimeError("%s: no JSON report from ansible-playbook (rc %s):\n%s" % (name, process.returncode, text[-3000:])) from None
    print("%s: rc %s in %ss" % (name, process.returncode, seconds))
    messages = _messages(report)
    ids = [match for message in messages for match in re.findall(r"Deployment (d-[0-9A-Z]{9}) ", message["msg"])]
    return {"name": name, "deployment_id": ids[0] if ids else None, "rc": process.returncode, "seconds": seconds, "max_rss_kib": usage.ru_maxrss,
            "output_bytes": len(text.encode()), "output_tail": text[-4000:], "lifecycle": _lifecycle_results(report),
            "messages": messages, "stats": report.get("stats")}


def save(fault, data):
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / (fault + ".json")
    path.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
    print("%s: written %s" % (fault, path))


# ---------------------------------------------------------------------------------------------- faults

def fault_disk(inventory):
    """3. web1's release root and web2's deployment root are 8 MB tmpfs: a revision too big by its size (refused
    before writing), one whose many small files fill the file system while written (ENOSPC half way), then one
    that fits."""
    data = {"before": snapshot(["web1", "web2"])}
    for case in ("big", "many"):
        run = deploy("disk-" + case, inventory, REVISIONS / ("disk-" + case), "web1:web2")
        data[case] = {"run": run, "after": snapshot(["web1", "web2"])}
    data["fits"] = {"run": deploy("disk-fits", inventory, REVISIONS / "webapp-v2", "web1:web2")}
    data["fits"]["after"] = snapshot(["web1", "web2"])
    save("disk", data)


def fault_bomb(inventory):
    """3. A tar.gz of a few MB declaring 20 GiB: refused on the controller before any host changes."""
    before = snapshot()
    run = deploy("bomb", inventory, REVISIONS / "bomb" / "bomb.tgz", "webservers")
    save("bomb", {"before": before, "run": run, "after": snapshot(),
                  "archive_bytes": (REVISIONS / "bomb" / "bomb.tgz").stat().st_size})


HOOKS = ["hang", "flood", "daemon", "stdin", "killparent"]


def fault_hooks(inventory):
    """5. One deployment per hostile hook (BeforeInstall, a short timeout) on web3."""
    data = {}
    for case in HOOKS:
        before = snapshot(["web3"])["web3"]
        run = deploy("hook-" + case, inventory, REVISIONS / ("hook-" + case), "web3")
        time.sleep(1)
        data[case] = {"before": before, "run": run, "after": snapshot(["web3"])["web3"]}
    save("hooks", data)


# ---------------------------------------------------------------------------------------------- revisions

def _variant(name, version):
    """A copy of the example revision (ApplicationStop..ValidateService hooks, app/VERSION)."""
    path = REVISIONS / name
    if path.exists():
        shutil.rmtree(path)
    shutil.copytree(PROJECT / "examples" / "webapp", path, symlinks=True)
    (path / "app" / "VERSION").write_text(version + "\n", encoding="utf-8")
    return path


HOOK_SCRIPTS = {
    # Never returns; children in its group, in a session of their own and double-forked with no environment.
    "hang": (3, "sleep 4201 &\nsetsid sleep 4202 &\n(setsid env -i sleep 4203 &)\necho hanging\nsleep 4200\n"),
    # Floods 1001-byte lines until the timeout kills it.
    "flood": (5, "line=$(printf '%01000d' 0)\nexec yes \"$line\"\n"),
    # A daemon that keeps the hook's stdout and stderr, then exit 0.
    "daemon": (5, "sleep 4300 &\necho \"daemon $! started\"\nexit 0\n"),
    # Reads stdin to its end (it must be at its end at once) and reports it.
    "stdin": (5, "got=$(cat | wc -c)\necho \"stdin gave $got bytes then its end\"\n"),
    # Kills the process that started it, then outlives its timeout.
    "killparent": (5, "echo \"killing my parent $PPID: $(tr '\\0' ' ' < /proc/$PPID/cmdline)\"\nkill -9 $PPID\nsleep 4400\n"),
}


def make():
    # Disk (8 MiB file systems): 12 MiB of zeros, and 4000 one-byte files (4000 bytes by their sizes, but a
    # 4 KiB page each on tmpfs: about 16 MiB written).
    big = _variant("disk-big", "8.0.0")
    with open(big / "app" / "big.bin", "wb") as handle:
        handle.truncate(0)
        for dummy in range(12):
            handle.write(b"\0" * MIB)
    many = _variant("disk-many", "8.1.0")
    (many / "app" / "many").mkdir()
    for index in range(4000):
        (many / "app" / "many" / ("f%04d" % index)).write_bytes(b"x")
    # The bomb: a good AppSpec, then a member declaring 20 GiB followed by 3 MiB of random data (the archive ends there).
    bomb_dir = REVISIONS / "bomb"
    bomb_dir.mkdir(parents=True, exist_ok=True)
    appspec = b"version: 0.0\nos: linux\nfiles:\n  - source: app\n    destination: /opt/appspec-example/current\n"
    info = tarfile.TarInfo("appspec.yml")
    info.size = len(appspec)
    raw = info.tobuf(format=tarfile.GNU_FORMAT) + appspec + b"\0" * (-len(appspec) % 512)
    info = tarfile.TarInfo("app/zeros")
    info.size = 20 * 1024 * MIB  # over 8 GiB: written in the header as base-256
    raw += info.tobuf(format=tarfile.GNU_FORMAT) + os.urandom(3 * MIB)
    (bomb_dir / "bomb.tgz").write_bytes(gzip.compress(raw))
    # Hooks: the hostile script first in BeforeInstall.
    for case, (timeout, body) in HOOK_SCRIPTS.items():
        path = _variant("hook-" + case, "7.0.0-" + case)
        script = path / "scripts" / "fault.sh"
        script.write_text("#!/bin/bash\n# hook fault: %s\n%s" % (case, body), encoding="utf-8")
        script.chmod(0o755)
        text = (path / "appspec.yml").read_text(encoding="utf-8")
        text = text.replace("  BeforeInstall:\n", "  BeforeInstall:\n    - location: scripts/fault.sh\n      timeout: %d\n" % timeout, 1)
        (path / "appspec.yml").write_text(text, encoding="utf-8")


FAULTS = {name[len("fault_"):]: function for name, function in globals().items() if name.startswith("fault_")}

if __name__ == "__main__":
    if sys.argv[1:] == ["make"]:
        make()
    else:
        OUT.mkdir(parents=True, exist_ok=True)
        FAULTS[sys.argv[1]](sys.argv[2])
