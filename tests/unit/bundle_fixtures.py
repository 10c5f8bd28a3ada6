"""Real servers on loopback for the bundle tests: HTTP (http.server), S3 (moto server), git repos."""

from __future__ import annotations

import functools
import http.server
import os
import socket
import subprocess
import threading

import pytest


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Handler(http.server.SimpleHTTPRequestHandler):
    required_headers = {}  # type: dict
    seen = []  # type: list

    def do_GET(self):  # noqa: N802 (http.server API)
        self.seen.append(dict(self.headers))
        for name, value in self.required_headers.items():
            if self.headers.get(name) != value:
                self.send_error(403, "missing %s" % name)
                return
        super().do_GET()

    def log_message(self, *_args):
        pass


@pytest.fixture
def http_server(tmp_path):
    """Serves tmp_path/www on 127.0.0.1; yields an object with .url(name), .root, .require(), .seen."""
    root = tmp_path / "www"
    root.mkdir()

    class Handler(_Handler):
        required_headers = {}
        seen = []

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    class Info:
        pass

    info = Info()
    info.root = root
    info.url = lambda name: "http://127.0.0.1:%d/%s" % (server.server_address[1], name)
    info.require = Handler.required_headers.update
    info.seen = Handler.seen
    yield info
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def moto_endpoint():
    """A real S3-compatible HTTP endpoint (moto) on loopback, for the whole session."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield "http://127.0.0.1:%d" % port
    server.stop()


@pytest.fixture
def s3(moto_endpoint, monkeypatch):
    """A boto3 client on the moto server, with dummy credentials in the environment."""
    import boto3

    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    client.endpoint = moto_endpoint
    return client


def git(cwd, *args):
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@example.com", GIT_CONFIG_NOSYSTEM="1", HOME=str(cwd))
    out = subprocess.run(["git"] + list(args), cwd=str(cwd), env=env, check=True, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    return out.stdout.decode().strip()


@pytest.fixture
def git_repo(tmp_path):
    """A repository with two commits on main, an annotated tag v1 on the first, and a branch."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "appspec.yml").write_text("version: 0.0\nos: linux\n")
    (repo / "version.txt").write_text("1\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "one")
    first = git(repo, "rev-parse", "HEAD")
    git(repo, "tag", "-a", "v1", "-m", "v1")
    (repo / "version.txt").write_text("2\n")
    git(repo, "commit", "-q", "-am", "two")
    second = git(repo, "rev-parse", "HEAD")
    git(repo, "branch", "old", first)

    class Repo:
        pass

    info = Repo()
    info.path, info.first, info.second = str(repo), first, second
    return info
