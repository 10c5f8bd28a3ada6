"""Shared test material: revisions as hosts keep them, archives, and real servers on loopback.

- :func:`server_appspec`, :func:`parsed_appspec`, :func:`write_revision`: a revision as the bundle step
  leaves it on a host (``deployment-archive/`` plus the controller-parsed ``appspec.json`` beside it);
- :func:`make_archive`: a zip, tar or tar.gz revision from a dict of files;
- fixtures: HTTP (http.server), S3 (moto server, controller side only), git repositories.

Everything at module level is standard library (plus pytest): host-side tests import this file under
the oldest host Python, without PyYAML or boto3. YAML text is parsed only when a test hands some to
:func:`parsed_appspec`, with the controller's parser.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import io
import os
import socket
import subprocess
import tarfile
import textwrap
import threading
import typing as t
import zipfile

import pytest

from ansible_collections.appspec.deploy.plugins.module_utils._spec import (
    ParsedAppSpec,
    deployment_dir_of,
    write_appspec_json,
)

DEFAULT_SCRIPT_TIMEOUT = 3600  # the parser's default for a hook script without timeout


# --- revisions as the bundle step leaves them on a host -------------------------------------------


def hook_entry(entry: t.Union[str, t.Dict[str, t.Any]]) -> t.Dict[str, t.Any]:
    """A normalized hook script (as the parser returns it) from a location or a partial dict."""
    given = {"location": entry} if isinstance(entry, str) else dict(entry)
    if given.get("timeout") is None:
        given["timeout"] = DEFAULT_SCRIPT_TIMEOUT
    return {"location": given["location"], "timeout": given["timeout"], "runas": given.get("runas"),
            "sudo": bool(given.get("sudo", False))}


def server_appspec(hooks: t.Optional[t.Dict[str, t.List[t.Any]]] = None,
                   files: t.Optional[t.List[t.Dict[str, str]]] = None,
                   permissions: t.Optional[t.List[t.Dict[str, t.Any]]] = None,
                   file_exists_behavior: t.Optional[str] = None, source: str = "appspec.yml") -> ParsedAppSpec:
    """The normalized EC2/on-premises AppSpec the controller's parser returns, built without YAML.

    ``hooks``: {event: [location or {location, timeout, runas, sudo}]}. test__appspec.py checks that the
    parser gives exactly this for the equivalent YAML, so host-side tests cannot drift from it.
    """
    return ParsedAppSpec(
        appspec={"version": "0.0", "os": "linux", "files": list(files or []), "permissions": list(permissions or []),
                 "hooks": {event: [hook_entry(e) for e in entries] for event, entries in (hooks or {}).items()},
                 "file_exists_behavior": file_exists_behavior},
        compute_platform="server", source=source)


def lambda_appspec() -> ParsedAppSpec:
    """A valid AWS Lambda AppSpec as the parser normalizes it: valid, but not deployable to hosts."""
    return ParsedAppSpec(
        appspec={"version": "0.0", "resources": [{"name": "fn", "type": "AWS::Lambda::Function",
                                                  "properties": {"Name": "f", "Alias": "live", "CurrentVersion": "1",
                                                                 "TargetVersion": "2"}}],
                 "hooks": {}},
        compute_platform="lambda", deployable=False,
        not_deployable_reason="this AppSpec is for AWS Lambda deployments, which the CodeDeploy service runs; "
                              "appspec.deploy deploys EC2/on-premises revisions to Linux hosts only")


def parsed_appspec(appspec: t.Union[str, t.Dict[str, t.Any], ParsedAppSpec]) -> ParsedAppSpec:
    """A ParsedAppSpec from itself, its ``as_dict()``, or YAML text (the controller's parser: needs PyYAML)."""
    if isinstance(appspec, ParsedAppSpec):
        return appspec
    if isinstance(appspec, dict):
        return ParsedAppSpec.from_dict(appspec)
    from ansible_collections.appspec.deploy.plugins.plugin_utils._appspec import parse_appspec  # pylint: disable=import-outside-toplevel

    return parse_appspec(textwrap.dedent(appspec).lstrip(), "appspec.yml")


def write_files(directory: str, files: t.Dict[str, t.Any]) -> str:
    """``files``: {relative path: text (dedented; ``*.sh`` made executable)}."""
    os.makedirs(directory, exist_ok=True)
    for path, body in files.items():
        full = os.path.join(directory, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as handle:
            handle.write(textwrap.dedent(body).lstrip())
        if path.endswith(".sh"):
            os.chmod(full, 0o755)
    return directory


def write_revision(archive_dir: str, files: t.Dict[str, t.Any],
                   appspec: t.Union[None, str, t.Dict[str, t.Any], ParsedAppSpec] = None, *,
                   appspec_json: bool = True) -> str:
    """What the bundle step leaves on a host: ``files`` in ``archive_dir`` (``.../deployment-archive``) and
    the parsed AppSpec as ``appspec.json`` beside it. YAML text ``appspec`` is also written as
    ``appspec.yml`` in the revision, as its author made it; ``appspec_json=False`` leaves the JSON out,
    as a revision the CodeDeploy agent deployed has none.
    """
    write_files(archive_dir, files)
    if appspec is None:
        return archive_dir
    if isinstance(appspec, str):
        with open(os.path.join(archive_dir, "appspec.yml"), "w") as handle:
            handle.write(textwrap.dedent(appspec).lstrip())
    if appspec_json:
        write_appspec_json(deployment_dir_of(archive_dir), parsed_appspec(appspec))
    return archive_dir


def make_archive(path: t.Any, files: t.Dict[str, t.Any], top: t.Optional[str] = None) -> t.Tuple[str, str]:
    """A revision archive (zip for ``*.zip``, gzip'ed tar for ``*gz``, else tar); returns (path, sha256).

    ``files``: {name: bytes or text, or (bytes or text, mode)}; ``top``: a folder holding everything.
    """
    path = str(path)
    entries = []
    for name, value in files.items():
        data, mode = value if isinstance(value, tuple) else (value, 0o644)
        entries.append(("%s/%s" % (top, name) if top else name, data.encode() if isinstance(data, str) else data, mode))
    if path.endswith(".zip"):
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data, mode in entries:
                info = zipfile.ZipInfo(name, (2024, 1, 1, 0, 0, 0))
                info.create_system, info.external_attr = 3, (0o100000 | mode) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, data)
    else:
        with tarfile.open(path, "w:gz" if path.endswith("gz") else "w") as archive:
            for name, data, mode in entries:
                info = tarfile.TarInfo(name)
                info.size, info.mode = len(data), mode
                archive.addfile(info, io.BytesIO(data))
    with open(path, "rb") as handle:
        return path, hashlib.sha256(handle.read()).hexdigest()


# --- ansible-playbook on localhost (controller-side tests of action plugins) -----------------------

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_playbook(tmp_path: t.Any, playbook: str, extra_vars: t.Optional[t.Dict[str, t.Any]] = None,
                 env: t.Optional[t.Dict[str, str]] = None) -> t.List[t.Dict[str, t.Any]]:
    """Run ``playbook`` (one play on localhost) with the checkout as the collection; each task's result."""
    import json  # pylint: disable=import-outside-toplevel
    import sys  # pylint: disable=import-outside-toplevel

    (tmp_path / "pb.yml").write_text(playbook)
    environ = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"),
                   APPSPEC_DEPLOY_CACHE_DIR=str(tmp_path / "cache"), ANSIBLE_LOCAL_TEMP=str(tmp_path / "ltmp"),
                   **(env or {}))
    proc = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", os.path.join(REPO, "inventory", "localhost.yml"),
         str(tmp_path / "pb.yml"), "-e", json.dumps(extra_vars or {})],
        cwd=REPO, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    try:
        # raw_decode: aggregate callbacks enabled in ansible.cfg (deployment_summary) may print after the JSON.
        data = json.JSONDecoder().raw_decode(proc.stdout.decode().lstrip())[0]
    except ValueError:
        raise AssertionError("ansible-playbook printed no JSON:\n%s\n%s" % (proc.stdout.decode()[-3000:], proc.stderr.decode()[-3000:]))
    return [task["hosts"]["localhost"] for task in data["plays"][0]["tasks"]]


# --- servers on loopback --------------------------------------------------------------------------


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


@contextlib.contextmanager
def small_filesystem(path: t.Any, size: str = "2m", inodes: t.Optional[int] = None) -> t.Iterator[str]:
    """A real small file system (a tmpfs of ``size``, and ``inodes``) mounted at ``path`` for a full-disk test; root
    only (skips otherwise), unmounted afterwards."""
    os.makedirs(str(path), exist_ok=True)
    options = "size=%s" % size + (",nr_inodes=%d" % inodes if inodes else "")
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                                           check=False).returncode != 0:
        pytest.skip("mounting a small tmpfs needs root")
    try:
        yield str(path)
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)
