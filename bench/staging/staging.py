"""Benchmark: stage revisions with appspec.deploy.bundle vs a plain copy + ``tar -x`` to the same host.

The host is a podman container from the test-host image (scripts/test-hosts-image.sh), reached with
the containers.podman.podman connection. Revisions are uncompressed tars of 1 MiB random files plus an
appspec.yml (about 10 MB, 200 MB and, with BENCH_STAGING_1G=1, 1 GB).

Measured, per size:
- plain: copy the tar into the container (``cp`` into its ``podman mount`` point, the fastest plain copy
  there is; ``podman cp`` is shown too) + ``podman exec tar -xf``;
- bundle: the bundle task's own duration (from the ansible.posix.json callback), warm controller cache
  (the usual case: one transfer + one module run), and once with a cold cache (probe + transfer + run);
- unchanged: the same revision staged again for a new deployment id (and for the same one): time and
  bytes transferred.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "bench"))

from report import write_section  # noqa: E402

IMAGE = os.environ.get("BENCH_STAGING_IMAGE", "localhost/appspec-deploy-host:latest")
CONTAINER = "appspec-bench-staging"
WORK = os.environ.get("BENCH_STAGING_WORK", "/var/tmp/appspec-bench-staging")
REMOTE = "/var/lib/appspec-bench"
SIZES = [("10 MB", 10), ("200 MB", 200)] + ([("1 GB", 1024)] if os.environ.get("BENCH_STAGING_1G") == "1" else [])
REPEAT = {10: 5, 200: 3, 1024: 2}
LABEL_MIB = {"10 MB": 10, "200 MB": 200, "1 GB": 1024}


def sh(*cmd, check=True, capture=True):
    proc = subprocess.run(list(cmd), check=False, stdout=subprocess.PIPE if capture else None,
                          stderr=subprocess.PIPE if capture else None)
    if check and proc.returncode != 0:
        raise SystemExit("command failed: %s\n%s" % (" ".join(cmd), (proc.stderr or b"").decode()))
    return (proc.stdout or b"").decode()


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
    sh("tar", "-C", src, "-cf", path + ".tmp", ".")
    os.replace(path + ".tmp", path)
    shutil.rmtree(src)
    return path


def start_container():
    if sh("podman", "image", "exists", IMAGE, check=False) == "" and subprocess.call(
            ["podman", "image", "exists", IMAGE]) != 0:
        sh(os.path.join(REPO, "scripts", "test-hosts-image.sh"), capture=False)
    sh("podman", "rm", "-f", CONTAINER, check=False)
    sh("podman", "run", "-d", "--name", CONTAINER, IMAGE, "sleep", "infinity")
    sh("podman", "exec", CONTAINER, "mkdir", "-p", REMOTE)
    return sh("podman", "mount", CONTAINER).strip()


def plain_copy_and_untar(revision, mount, use_podman_cp=False):
    sh("podman", "exec", CONTAINER, "sh", "-c", "rm -rf %s/plain && mkdir -p %s/plain/out" % (REMOTE, REMOTE))
    started = time.monotonic()
    if use_podman_cp:
        sh("podman", "cp", revision, "%s:%s/plain/rev.tar" % (CONTAINER, REMOTE))
    else:
        shutil.copyfile(revision, mount + REMOTE + "/plain/rev.tar")
    sh("podman", "exec", CONTAINER, "tar", "-xf", REMOTE + "/plain/rev.tar", "-C", REMOTE + "/plain/out")
    return time.monotonic() - started


PLAYBOOK = """
- hosts: bench
  gather_facts: false
  tasks:
    - name: Connect
      ansible.builtin.ping:
    - name: Stage
      appspec.deploy.bundle:
        revision: "{{ revision }}"
        deployment_id: "{{ deployment_id }}"
        deployment_group_id: bench-group
        root_dir: "{{ root_dir }}"
        max_revisions: 3
"""


BASELINE_PLAYBOOK = """
- hosts: bench
  gather_facts: false
  tasks:
    - name: Connect
      ansible.builtin.ping:
    - name: Clean
      ansible.builtin.file:
        path: "{{ dest }}"
        state: absent
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


def _playbook(name, extra):
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"),
               APPSPEC_DEPLOY_CACHE_DIR=os.path.join(WORK, "cache"))
    proc = subprocess.run(
        [os.path.join(REPO, ".venv", "bin", "ansible-playbook"), "-i", os.path.join(WORK, "inventory.yml"),
         os.path.join(WORK, name), "-e", json.dumps(extra)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    try:
        return json.loads(proc.stdout.decode())
    except ValueError:
        raise SystemExit("ansible-playbook output is not JSON:\n%s\n%s" % (proc.stdout.decode()[-3000:],
                                                                           proc.stderr.decode()[-3000:]))


def _task_seconds(task):
    return _ts(task["task"]["duration"]["end"]) - _ts(task["task"]["duration"]["start"])


def run_ansible_baseline(revision):
    """copy + command tar -x, the plain Ansible way; seconds of the two tasks."""
    data = _playbook("baseline.yml", {"revision": revision, "dest": REMOTE + "/plain-ansible"})
    tasks = data["plays"][0]["tasks"]
    for task in tasks:
        if task["hosts"]["bench"].get("failed"):
            raise SystemExit("baseline failed: %s" % task["hosts"]["bench"].get("msg"))
    return _task_seconds(tasks[3]) + _task_seconds(tasks[4]), _task_seconds(tasks[0])


def run_bundle(revision, deployment_id, root_dir=REMOTE + "/root"):
    data = _playbook("playbook.yml", {"revision": revision, "deployment_id": deployment_id, "root_dir": root_dir})
    task = data["plays"][0]["tasks"][1]
    result = task["hosts"]["bench"]
    if result.get("failed"):
        raise SystemExit("bundle failed: %s" % result.get("msg"))
    return _task_seconds(task), result


def _ts(text):
    import datetime
    return datetime.datetime.strptime(text.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


def render(rows):
    """The markdown section for docs/benchmarks.md."""
    lines = [
        "All times are the best of n interleaved runs (%s). " % ", ".join(
            "%d for %s" % (REPEAT[LABEL_MIB[row["label"]]], row["label"]) for row in rows) +
        "Stage a revision (uncompressed tar of 1 MiB random files + appspec.yml) into a podman container "
        "(test-host image, `containers.podman.podman` connection: no pipelining, so every module run costs "
        "several `podman exec`s; the **ping** column is the cost of one trivial task). The machine (2 cores) "
        "was shared with other jobs, so expect noise.",
        "",
        "- **plain**: copy the file into the container's mount point + `podman exec tar -xf` (no Ansible at all); "
        "`podman cp` + `tar -xf` for reference.",
        "- **Ansible copy + tar**: the `ansible.builtin.copy` and `ansible.builtin.command: tar -xf` tasks.",
        "- **bundle**: the `appspec.deploy.bundle` task, warm controller cache (the usual case: one transfer + one "
        "module run, which checks the sha256 on the host while it unpacks, checks every entry, unpacks into a temp "
        "dir + rename, parses the AppSpec and applies retention).",
        "- **cold cache**: a controller that has never seen the host (AWX): the module is asked first (0 bytes), "
        "then the file goes over and the module runs again.",
        "- **bundle − ping, / plain**: the bundle task minus the cost of a trivial task (Ansible's fixed per-task "
        "cost over this connection: AnsiballZ transfer, `podman exec`s), against plain: the work itself.",
        "",
        "| revision | bytes | plain copy + tar -x | podman cp + tar -x | Ansible copy + tar | bundle | "
        "bundle / plain | bundle − ping, / plain | bundle / Ansible copy + tar | bundle, cold cache | ping | "
        "bytes transferred |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append("| %s | %d | %.2f s | %.2f s | %.2f s | %.2f s | **%.2fx** | %.2fx | **%.2fx** | %.2f s | %.2f s | %d |" % (
            row["label"], row["size"], row["plain"], row["podman_cp"], row["ansible_plain"], row["staged"],
            row["staged"] / row["plain"], max(row["staged"] - row["ping"], 0) / row["plain"],
            row["staged"] / row["ansible_plain"], row["cold"], row["ping"], row["transferred"]))
    lines += ["", "Re-staging an unchanged revision (same sha256 already staged for the group on the host; one "
              "module run, nothing transferred; a new deployment id gets a hard-linked copy):", "",
              "| revision | new deployment id: time | bytes | changed | same deployment id: time | bytes |",
              "|---|---:|---:|---|---:|---:|"]
    for row in rows:
        lines.append("| %s | %.2f s | %d | %s | %.2f s | %d |" % (
            row["label"], row["again_new"], row["again_new_bytes"], str(row["again_new_changed"]).lower(),
            row["again_same"], row["again_same_bytes"]))
    if not any(row["label"] == "1 GB" for row in rows):
        lines += ["", "(1 GB case skipped: run with `BENCH_STAGING_1G=1`.)"]
    return "\n".join(lines)


def main():
    os.makedirs(WORK, exist_ok=True)
    shutil.rmtree(os.path.join(WORK, "cache"), ignore_errors=True)
    with open(os.path.join(WORK, "playbook.yml"), "w") as handle:
        handle.write(PLAYBOOK)
    with open(os.path.join(WORK, "baseline.yml"), "w") as handle:
        handle.write(BASELINE_PLAYBOOK)
    with open(os.path.join(WORK, "inventory.yml"), "w") as handle:
        handle.write("all:\n  hosts:\n    bench:\n      ansible_connection: containers.podman.podman\n"
                     "      ansible_host: %s\n      ansible_python_interpreter: /usr/bin/python3\n" % CONTAINER)
    print("staging bench: preparing revisions and the container", flush=True)
    revisions = {size[1]: make_revision(size[1]) for size in SIZES}
    tiny = make_revision(1)
    mount = start_container()
    rows = []
    counter = [0]

    def next_id():
        counter[0] += 1
        return "d-BENCH%04d" % counter[0]

    try:
        run_bundle(tiny, next_id())  # the controller now knows the host: the warm-cache path from here on
        for label, mib in SIZES:
            rev = revisions[mib]
            size = os.path.getsize(rev)
            # Interleaved, so that load from other jobs on the machine hits every method alike.
            plains, cps, ansibles, pings, times, colds, transferred = [], [], [], [], [], [], 0
            root = ""
            for attempt in range(REPEAT[mib]):
                plains.append(plain_copy_and_untar(rev, mount))
                sh("podman", "exec", CONTAINER, "rm", "-rf", REMOTE + "/plain")
                # A fresh root each time, so the revision is new to the host (warm controller cache).
                if root:
                    sh("podman", "exec", CONTAINER, "rm", "-rf", root)
                root = "%s/root-%d-%d" % (REMOTE, mib, attempt)
                seconds, result = run_bundle(rev, next_id(), root_dir=root)
                assert result["changed"] and not result["reused"], result
                times.append(seconds)
                transferred = result["bytes_transferred"]
                seconds, ping = run_ansible_baseline(rev)
                ansibles.append(seconds)
                pings.append(ping)
                sh("podman", "exec", CONTAINER, "rm", "-rf", REMOTE + "/plain-ansible")
                cps.append(plain_copy_and_untar(rev, mount, use_podman_cp=True))
                sh("podman", "exec", CONTAINER, "rm", "-rf", REMOTE + "/plain")
                # Cold controller cache: the module is asked first, then the file goes over.
                shutil.rmtree(os.path.join(WORK, "cache", "hosts"), ignore_errors=True)
                cold_root = "%s/root-%d-cold" % (REMOTE, mib)
                colds.append(run_bundle(rev, next_id(), root_dir=cold_root)[0])
                sh("podman", "exec", CONTAINER, "rm", "-rf", cold_root)
            plain, podman_cp, ansible_plain, ping = min(plains), min(cps), min(ansibles), min(pings)
            staged, cold = min(times), min(colds)
            news, sames = [], []
            for _attempt in range(max(2, REPEAT[mib])):
                seconds, res_new = run_bundle(rev, next_id(), root_dir=root)
                news.append(seconds)
                last_id = "d-BENCH%04d" % counter[0]
                seconds, res_same = run_bundle(rev, last_id, root_dir=root)
                sames.append(seconds)
                assert res_new["reused"] and res_same["reused"], (res_new, res_same)
            again_new, again_same = min(news), min(sames)
            sh("podman", "exec", CONTAINER, "sh", "-c", "rm -rf %s/root-*" % REMOTE)
            rows.append(dict(label=label, size=size, plain=plain, podman_cp=podman_cp, staged=staged,
                             ansible_plain=ansible_plain, ping=ping,
                             transferred=transferred, cold=cold, again_new=again_new,
                             again_new_bytes=res_new["bytes_transferred"], again_new_changed=res_new["changed"],
                             again_same=again_same, again_same_bytes=res_same["bytes_transferred"]))
            print(json.dumps(rows[-1]), flush=True)
    finally:
        sh("podman", "umount", CONTAINER, check=False)
        sh("podman", "rm", "-f", CONTAINER, check=False)

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
