# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Real load balancers for the tests: a haproxy or an nginx in a temp directory, with small HTTP backends.

Standard library only (the module_utils tests also run under the hosts' Python 3.8 with pytest alone).
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import typing as t
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Backend:
    """An HTTP server on a loopback port answering its own name; ``/slow?s=N`` answers after N seconds."""

    def __init__(self, name: str, port: t.Optional[int] = None) -> None:
        self.name = name
        self.port = port or free_port()
        self.slow_started = []  # type: t.List[float]  # time.monotonic() when each slow request arrived
        backend = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                query = parse_qs(urlparse(self.path).query)
                if self.path.startswith("/slow"):
                    backend.slow_started.append(time.monotonic())
                    time.sleep(float(query.get("s", ["1"])[0]))
                body = backend.name.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: t.Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def get(port: int, path: str = "/", timeout: float = 10) -> t.Tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


class Request(threading.Thread):
    """One request in the background (a slow one that a drain must wait for)."""

    def __init__(self, port: int, path: str) -> None:
        super().__init__(daemon=True)
        self.port, self.path = port, path
        self.result = None  # type: t.Optional[t.Tuple[int, str]]
        self.error = None  # type: t.Optional[BaseException]
        self.start()

    def run(self) -> None:
        try:
            self.result = get(self.port, self.path)
        except BaseException as err:  # pylint: disable=broad-except
            self.error = err


def wait_for(predicate: t.Callable[[], bool], what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out waiting for " + what)
        time.sleep(0.05)


def _port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def need(binary: str) -> str:
    path = shutil.which(binary) or next((p for p in ("/usr/sbin/" + binary, "/sbin/" + binary) if os.path.exists(p)), None)
    if not path:
        pytest.skip("%s is not installed (scripts/bootstrap.sh --hosts installs it)" % binary)
    return path


class HAProxyInstance:
    """A foreground haproxy with one frontend and backend ``app``; ``servers`` are config lines after ``server``."""

    def __init__(self, servers: t.Sequence[str]) -> None:
        binary = need("haproxy")
        # A unix socket path must be short (108 bytes): not under pytest's long tmp_path.
        self.dir = tempfile.mkdtemp(prefix="lb-haproxy-", dir="/tmp")
        self.socket = os.path.join(self.dir, "admin.sock")
        self.port = free_port()
        config = [
            "global",
            "    nbthread 1",
            "    stats socket %s mode 600 level admin" % self.socket,
            "defaults",
            "    mode http",
            "    timeout connect 1s",
            "    timeout client 30s",
            "    timeout server 30s",
            "frontend fe",
            "    bind 127.0.0.1:%d" % self.port,
            "    default_backend app",
            "backend app",
            "    balance roundrobin",
        ] + ["    server " + line for line in servers]
        self.config = os.path.join(self.dir, "haproxy.cfg")
        with open(self.config, "w") as handle:
            handle.write("\n".join(config) + "\n")
        self.log = open(os.path.join(self.dir, "haproxy.log"), "w")
        self.proc = subprocess.Popen([binary, "-db", "-f", self.config], stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(lambda: os.path.exists(self.socket) and _port_open(self.port) or self.proc.poll() is not None, "haproxy")
        if self.proc.poll() is not None:
            raise RuntimeError("haproxy did not start: " + open(self.log.name).read())

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class NginxInstance:
    """A foreground nginx (master + one worker) under a temp prefix, proxying to upstream ``app`` in upstream.conf."""

    def __init__(self, prefix: str, upstream_text: str) -> None:
        binary = need("nginx")
        if os.geteuid() != 0:
            pytest.skip("the nginx tests run nginx as root (its master must be able to reload)")
        self.prefix = prefix
        os.makedirs(os.path.join(prefix, "tmp"), exist_ok=True)
        self.port = free_port()
        self.upstream_file = os.path.join(prefix, "upstream.conf")
        with open(self.upstream_file, "w") as handle:
            handle.write(upstream_text)
        self.conf = os.path.join(prefix, "nginx.conf")
        temp = os.path.join(prefix, "tmp")
        with open(self.conf, "w") as handle:
            handle.write(
                "daemon off;\nmaster_process on;\nworker_processes 1;\npid %s/nginx.pid;\nerror_log %s/error.log;\n"
                "events { worker_connections 64; }\n"
                "http {\n    access_log off;\n"
                "    client_body_temp_path %s/body;\n    proxy_temp_path %s/proxy;\n    fastcgi_temp_path %s/fastcgi;\n"
                "    uwsgi_temp_path %s/uwsgi;\n    scgi_temp_path %s/scgi;\n"
                "    include %s;\n"
                "    server {\n        listen 127.0.0.1:%d;\n        location / { proxy_pass http://app; proxy_read_timeout 30s; }\n    }\n"
                "}\n" % (prefix, prefix, temp, temp, temp, temp, temp, self.upstream_file, self.port)
            )
        base = "%s -p %s -c %s" % (binary, prefix, self.conf)
        self.test_command = base + " -t"
        self.reload_command = base + " -s reload"
        self.log = open(os.path.join(prefix, "nginx.out"), "w")
        self.proc = subprocess.Popen(base.split(), stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(lambda: _port_open(self.port) or self.proc.poll() is not None, "nginx")
        if self.proc.poll() is not None:
            raise RuntimeError("nginx did not start: " + open(self.log.name).read())

    def workers(self) -> t.List[int]:
        """The master's worker processes (pids), old ones shutting down included."""
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open("/proc/%s/stat" % entry) as handle:
                        ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                if ppid == self.proc.pid:
                    found.append(int(entry))
        return sorted(found)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGQUIT)  # graceful, waits for workers
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
