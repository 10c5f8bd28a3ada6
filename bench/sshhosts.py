"""SSH test hosts for benchmarks: podman containers from the test-host image, reached over real SSH.

Each container runs systemd (sshd, host keys made at first boot) like the Molecule hosts of
extensions/molecule/shared/create.yml. A key made for the run is authorized for ``root`` and for the
non-root ``deploy`` user (passwordless sudo). Every SSH connection, Ansible's and the plain ``ssh``/``scp``
baselines alike, goes through one ControlMaster socket per host and user (ControlPersist), so both sides
pay the same connection cost: none after the first command.

Traffic only goes to the containers' own addresses on the podman bridge.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NETWORK = "appspec-bench"
LABEL = "appspec-bench"


def sh(*cmd, check=True, stdin=None):
    proc = subprocess.run(list(cmd), check=False, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if check and proc.returncode != 0:
        raise SystemExit("command failed: %s\n%s" % (" ".join(cmd), proc.stderr.decode(errors="replace")))
    return proc.stdout.decode()


def image():
    """The test-host image (built by scripts/test-hosts-image.sh when its recipe changed)."""
    name = os.environ.get("BENCH_IMAGE")
    if name:
        return name
    return sh(os.path.join(REPO, "scripts", "test-hosts-image.sh")).strip().splitlines()[-1]


class Hosts:
    """``count`` containers named ``<prefix>-<n>``; use as a context manager (removed at exit)."""

    def __init__(self, prefix, count, work):
        self.prefix = prefix
        self.names = ["%s-%d" % (prefix, number) for number in range(1, count + 1)]
        self.work = work
        self.key = os.path.join(work, "ssh", "id_ed25519")
        self.control_dir = os.path.join(work, "cp")
        self.addresses = {}  # name -> IPv4 address

    # ---------------------------------------------------------------------------------------
    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(self, *exc):
        self.remove()

    def start(self):
        os.makedirs(os.path.dirname(self.key), mode=0o700, exist_ok=True)
        os.makedirs(self.control_dir, mode=0o700, exist_ok=True)
        if not os.path.exists(self.key):
            sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "appspec-bench", "-f", self.key)
        with open(self.key + ".pub", "rb") as handle:
            pub = handle.read()
        img = image()
        if subprocess.call(["podman", "network", "exists", NETWORK]) != 0:
            sh("podman", "network", "create", "--label", LABEL, NETWORK)
        for name in self.names:
            sh("podman", "rm", "-f", name, check=False)
            sh("podman", "run", "-d", "--name", name, "--hostname", name,
               "--network", NETWORK, "--label", LABEL, "--systemd=always", img, "/lib/systemd/systemd")
        for name in self.names:
            deadline = time.monotonic() + 90
            while True:
                state = sh("podman", "exec", name, "systemctl", "is-system-running", check=False).strip()
                if state in ("running", "degraded"):
                    break
                if time.monotonic() > deadline:
                    raise SystemExit("%s: systemd did not start (%s)" % (name, state))
                time.sleep(0.5)
            sh("podman", "exec", "-i", name, "sh", "-c",
               "cat > /root/.ssh/authorized_keys && cp /root/.ssh/authorized_keys ~deploy/.ssh/authorized_keys "
               "&& chown deploy: ~deploy/.ssh/authorized_keys", stdin=pub)
            info = json.loads(sh("podman", "inspect", name))[0]
            self.addresses[name] = info["NetworkSettings"]["Networks"][NETWORK]["IPAddress"]
        for name, address in self.addresses.items():
            deadline = time.monotonic() + 60
            while True:
                try:
                    with socket.create_connection((address, 22), timeout=2) as conn:
                        if conn.recv(64).startswith(b"SSH-"):
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("%s: sshd does not answer on %s:22" % (name, address))
                time.sleep(0.3)
            self.ssh(name, "true")  # opens the ControlMaster for root

    def remove(self):
        for name in self.names:
            for user in ("root", "deploy"):
                path = self.control_path(name, user)
                if os.path.exists(path):
                    subprocess.call(["ssh", "-o", "ControlPath=" + path, "-O", "exit", "x"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            sh("podman", "rm", "-f", "-t", "2", name, check=False)
        shutil.rmtree(self.control_dir, ignore_errors=True)
        # The network goes too, unless another benchmark's containers still use it (then rm fails).
        sh("podman", "network", "rm", NETWORK, check=False)

    # ---------------------------------------------------------------------------------------
    def control_path(self, name, user):
        return os.path.join(self.control_dir, "%s-%s" % (name, user))

    def ssh_options(self, name, user="root"):
        """The options Ansible's ssh connection uses (ansible.cfg ssh_args) plus the shared ControlPath."""
        return ["-i", self.key, "-o", "IdentitiesOnly=yes", "-o", "ControlMaster=auto", "-o", "ControlPersist=300s",
                "-o", "ControlPath=" + self.control_path(name, user), "-o", "StrictHostKeyChecking=no",
                "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "BatchMode=yes"]

    def ssh(self, name, command, user="root", stdin_path=None):
        """Run ``command`` over the host's multiplexed SSH connection; return stdout."""
        cmd = ["ssh"] + self.ssh_options(name, user) + ["%s@%s" % (user, self.addresses[name]), command]
        if stdin_path:
            with open(stdin_path, "rb") as handle:
                proc = subprocess.run(cmd, stdin=handle, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
        else:
            proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  check=False)
        if proc.returncode != 0:
            raise SystemExit("ssh %s %r failed: %s" % (name, command, proc.stderr.decode(errors="replace")))
        return proc.stdout.decode()

    def scp(self, name, local, remote, user="root"):
        cmd = ["scp", "-q"] + self.ssh_options(name, user) + [local, "%s@%s:%s" % (user, self.addresses[name], remote)]
        sh(*cmd)

    def inventory_host(self, name, user="root", become=False):
        """Inventory variables reaching the host over SSH, through the same ControlMaster socket."""
        data = {
            "ansible_host": self.addresses[name],
            "ansible_user": user,
            "ansible_ssh_private_key_file": self.key,
            "ansible_control_path": self.control_path(name, user),
            "ansible_python_interpreter": "/usr/bin/python3",
        }
        if become:
            data["ansible_become"] = True
        return data
