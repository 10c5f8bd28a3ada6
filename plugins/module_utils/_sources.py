# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where a revision comes from: a local file, an HTTP(S) URL, S3 (or any S3-compatible store), git.

Every fetch streams into a temp file in the directory it is given, hashing as it goes; a failure
(or a sha256 mismatch) removes the temp file, so nothing is left half-written. Each fetch returns
a :class:`Fetched` with the file, its size and sha256, the bytes it moved, an ``identity`` (what
identifies the revision at its source: S3 bucket/key/version/etag, git commit) and the ``BUNDLE_*``
variables the CodeDeploy agent gives hooks for that source.

boto3 is imported only when an S3 revision is fetched.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import threading
import typing as t
import urllib.error
import urllib.parse
import urllib.request

from ansible_collections.appspec.deploy.plugins.module_utils._errors import DeployError

SOURCE_TYPES = ("local", "url", "s3", "git")
DEFAULT_TIMEOUT = 300
_CHUNK = 1024 * 1024
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_COMMIT = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
_GIT_URL = re.compile(r"^(git://|git\+[a-z]+://|ssh://|[A-Za-z0-9._-]+@[A-Za-z0-9._-]+:)|\.git/?$")


class SourceError(DeployError):
    """A revision that cannot be fetched or does not match its checksum."""


class Fetched:
    def __init__(self, path: str, size: int, sha256: str, bytes_transferred: int,
                 identity: t.Optional[t.Dict[str, t.Any]] = None, env: t.Optional[t.Dict[str, str]] = None) -> None:
        self.path = path
        self.size = size
        self.sha256 = sha256
        self.bytes_transferred = bytes_transferred
        self.identity = identity or {}
        self.env = env or {}
        self._pending = None  # type: t.Optional[_BackgroundHash]

    def verify(self) -> None:
        """Wait for a checksum still being computed in the background; raise on a mismatch."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            _check_sha(pending.result(), self.sha256, pending.path)


class _BackgroundHash(threading.Thread):
    """sha256 of a file in a thread (hashlib and file reads release the GIL), so it overlaps the unpack."""

    def __init__(self, path: str) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.handle = open(path, "rb")  # opened now: the file may be removed before the thread runs
        self.digest = None  # type: t.Optional[str]
        self.error = None  # type: t.Optional[BaseException]
        self.start()

    def run(self) -> None:
        try:
            with self.handle:
                digest = hashlib.sha256()
                for chunk in iter(lambda: self.handle.read(_CHUNK), b""):
                    digest.update(chunk)
                self.digest = digest.hexdigest()
        except BaseException as err:  # reported by result()
            self.error = err

    def result(self) -> str:
        self.join()
        if self.error is not None or self.digest is None:
            raise SourceError("cannot read %s to check its sha256: %s" % (self.path, self.error))
        return self.digest


def classify(revision: str, revision_type: str = "auto") -> str:
    """``local``, ``url``, ``s3`` or ``git`` for a revision string."""
    if revision_type != "auto":
        if revision_type not in SOURCE_TYPES:
            raise SourceError("revision_type must be one of auto, %s, not %r" % (", ".join(SOURCE_TYPES), revision_type))
        return revision_type
    lowered = revision.lower()
    if lowered.startswith("s3://"):
        return "s3"
    if _GIT_URL.search(revision):
        return "git"
    if lowered.startswith("http://") or lowered.startswith("https://"):
        return "url"
    if lowered.startswith("file://"):
        return "git" if os.path.isdir(os.path.join(revision[7:], ".git")) else "local"
    return "local"


def normalize_sha256(value: t.Optional[str]) -> t.Optional[str]:
    """Accept ``abc...`` or ``sha256:abc...``; refuse anything that is not 64 hex digits."""
    if not value:
        return None
    text = value.strip().lower()
    if text.startswith("sha256:"):
        text = text[7:]
    if not _SHA256.match(text):
        raise SourceError("sha256 %r is not 64 hexadecimal digits" % value)
    return text


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while True:
            chunk = handle.read(_CHUNK)
            if not chunk:
                return digest.hexdigest()
            digest.update(chunk)


def _check_sha(actual: str, expected: t.Optional[str], what: str) -> None:
    if expected and actual != expected:
        raise SourceError("sha256 mismatch for %s: expected %s, got %s; nothing was staged" % (what, expected, actual),
                          expected_sha256=expected, actual_sha256=actual)


def _stream_to_temp(read: t.Callable[[int], bytes], dest_dir: str, expected: t.Optional[str], what: str,
                    max_bytes: t.Optional[int] = None) -> t.Tuple[str, int, str]:
    """Write ``read`` chunks to a temp file in ``dest_dir``; return (path, size, sha256)."""
    fd, tmp = tempfile.mkstemp(prefix=".download-", dir=dest_dir)
    digest = hashlib.sha256()
    size = 0
    try:
        with os.fdopen(fd, "wb") as out:
            while True:
                chunk = read(_CHUNK)
                if not chunk:
                    break
                size += len(chunk)
                if max_bytes is not None and size > max_bytes:
                    raise SourceError("%s is larger than %d bytes" % (what, max_bytes))
                digest.update(chunk)
                out.write(chunk)
        _check_sha(digest.hexdigest(), expected, what)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise
    return tmp, size, digest.hexdigest()


# --------------------------------------------------------------------------------------------
# Local files (on the host running this code)


def take_local(path: str, dest_dir: str, expected_sha256: t.Optional[str] = None, *, move: bool = False,
               known_sha256: t.Optional[str] = None) -> Fetched:
    """Bring a file on this host into ``dest_dir``: renamed when ``move`` (same file system), else copied.

    ``known_sha256`` skips hashing a file whose checksum the caller already verified.
    """
    if not os.path.isfile(path):
        raise SourceError("revision file %s does not exist on the host" % path, revision_missing=True)
    size = os.path.getsize(path)
    if move:
        fd, tmp = tempfile.mkstemp(prefix=".download-", dir=dest_dir)
        os.close(fd)
        try:
            os.rename(path, tmp)
        except OSError:
            os.unlink(tmp)  # another file system: copy instead
        else:
            if known_sha256:
                return Fetched(tmp, size, known_sha256, 0)
            if expected_sha256:
                # Checked in the background while the caller unpacks; it must call verify() before using it.
                fetched = Fetched(tmp, size, expected_sha256, 0)
                fetched._pending = _BackgroundHash(tmp)  # pylint: disable=protected-access
                return fetched
            return Fetched(tmp, size, sha256_file(tmp), 0)
    with open(path, "rb") as handle:
        tmp, size, digest = _stream_to_temp(handle.read, dest_dir, expected_sha256, path)
    if move:
        os.unlink(path)
    return Fetched(tmp, size, digest, 0)


# --------------------------------------------------------------------------------------------
# HTTP(S)


def fetch_url(url: str, dest_dir: str, *, headers: t.Optional[t.Dict[str, str]] = None,
              expected_sha256: t.Optional[str] = None, timeout: int = DEFAULT_TIMEOUT) -> Fetched:
    request = urllib.request.Request(url, headers=dict(headers or {}))
    shown = _redact(url)
    try:
        # A plain opener (proxies from the environment) keeps this file free of Ansible imports.
        with urllib.request.build_opener().open(request, timeout=timeout) as response:  # nosec - user-given URL
            tmp, size, digest = _stream_to_temp(response.read, dest_dir, expected_sha256, shown)
    except urllib.error.HTTPError as err:
        raise SourceError("cannot fetch %s: HTTP %s %s" % (shown, err.code, err.reason), status=err.code)
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", None) or err
        raise SourceError("cannot fetch %s: %s" % (shown, reason))
    return Fetched(tmp, size, digest, size, identity={"url": shown})


def _redact(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = "%s:********@%s" % (parts.username, parts.hostname + (":%d" % parts.port if parts.port else ""))
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


# --------------------------------------------------------------------------------------------
# S3


def parse_s3_url(url: str) -> t.Tuple[str, str]:
    match = re.match(r"^s3://([^/]+)/(.+)$", url)
    if not match:
        raise SourceError("S3 revision %r must look like s3://bucket/key" % url)
    return match.group(1), match.group(2)


def _s3_client(endpoint_url: t.Optional[str], region: t.Optional[str]) -> t.Any:
    try:
        import boto3  # pylint: disable=import-outside-toplevel
    except ImportError:
        raise SourceError("the S3 revision source needs the Python library boto3 on the host running the module "
                          "(pip install boto3)")
    kwargs = {}  # type: t.Dict[str, t.Any]
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
    if region:
        kwargs["region_name"] = region
    return boto3.client("s3", **kwargs)


def _s3_error(err: Exception, bucket: str, key: str) -> SourceError:
    code = getattr(err, "response", {}).get("Error", {}).get("Code") if hasattr(err, "response") else None
    return SourceError("cannot fetch s3://%s/%s: %s" % (bucket, key, err), error_code=code)


def _s3_request(url: str, version_id: t.Optional[str], endpoint_url: t.Optional[str],
                region: t.Optional[str]) -> t.Tuple[t.Any, str, str, t.Dict[str, str]]:
    """(client, bucket, key, the object's request arguments) for ``s3://bucket/key``."""
    bucket, key = parse_s3_url(url)
    kwargs = {"Bucket": bucket, "Key": key}
    if version_id:
        kwargs["VersionId"] = version_id
    return _s3_client(endpoint_url, region), bucket, key, kwargs


def s3_identity(url: str, *, version_id: t.Optional[str] = None, endpoint_url: t.Optional[str] = None,
                region: t.Optional[str] = None) -> t.Dict[str, t.Any]:
    """HEAD the object: bucket, key, version, etag and size, without downloading it."""
    client, bucket, key, kwargs = _s3_request(url, version_id, endpoint_url, region)
    try:
        head = client.head_object(**kwargs)
    except Exception as err:  # botocore raises many types; all are reported the same way
        raise _s3_error(err, bucket, key)
    return {"bucket": bucket, "key": key, "version": head.get("VersionId") or version_id,
            "etag": (head.get("ETag") or "").strip('"') or None, "size": head.get("ContentLength")}


def s3_env(identity: t.Dict[str, t.Any]) -> t.Dict[str, str]:
    """The agent's BUNDLE_* variables for S3; a missing version or etag leaves the variable out."""
    env = {"BUNDLE_BUCKET": identity["bucket"], "BUNDLE_KEY": identity["key"]}
    if identity.get("version"):
        env["BUNDLE_VERSION"] = identity["version"]
    if identity.get("etag"):
        env["BUNDLE_ETAG"] = identity["etag"]
    return env


def fetch_s3(url: str, dest_dir: str, *, version_id: t.Optional[str] = None, endpoint_url: t.Optional[str] = None,
             region: t.Optional[str] = None, expected_sha256: t.Optional[str] = None) -> Fetched:
    client, bucket, key, kwargs = _s3_request(url, version_id, endpoint_url, region)
    try:
        response = client.get_object(**kwargs)
        body = response["Body"]
        tmp, size, digest = _stream_to_temp(body.read, dest_dir, expected_sha256, "s3://%s/%s" % (bucket, key))
    except SourceError:
        raise
    except Exception as err:
        raise _s3_error(err, bucket, key)
    identity = {"bucket": bucket, "key": key, "version": response.get("VersionId") or version_id,
                "etag": (response.get("ETag") or "").strip('"') or None}
    return Fetched(tmp, size, digest, size, identity=identity, env=s3_env(identity))


# --------------------------------------------------------------------------------------------
# git


def _git(args: t.List[str], cwd: t.Optional[str] = None, timeout: int = DEFAULT_TIMEOUT) -> str:
    env = dict(os.environ, GIT_TERMINAL_PROMPT="0", GIT_ASKPASS="true", LC_ALL="C")
    try:
        proc = subprocess.run(["git"] + args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=timeout, check=False)
    except FileNotFoundError:
        raise SourceError("the git revision source needs the git command on the host running the module")
    except subprocess.TimeoutExpired:
        raise SourceError("git %s timed out after %d s" % (args[0], timeout))
    if proc.returncode != 0:
        raise SourceError("git %s failed: %s" % (" ".join(args[:1]), proc.stderr.decode("utf-8", "replace").strip()),
                          rc=proc.returncode)
    return proc.stdout.decode("utf-8", "replace")


def resolve_git_ref(url: str, ref: t.Optional[str]) -> t.Optional[str]:
    """The commit a ref names on the remote (``git ls-remote``), or None when it cannot be told that way."""
    if ref and _COMMIT.match(ref):
        return ref
    wanted = ref or "HEAD"
    out = _git(["ls-remote", "--", url, wanted, wanted + "^{}"])
    candidates = {}
    for line in out.splitlines():
        sha, _tab, name = line.partition("\t")
        candidates[name] = sha
    for name in (wanted, "refs/heads/%s" % wanted, "refs/tags/%s^{}" % wanted, "refs/tags/%s" % wanted):
        if name in candidates:
            return candidates[name]
    return None


def fetch_git(url: str, dest_dir: str, *, ref: t.Optional[str] = None) -> Fetched:
    """Fetch ``ref`` (branch, tag or commit; default the remote HEAD) and write it as a tar (``git archive``)."""
    work = tempfile.mkdtemp(prefix=".git-", dir=dest_dir)
    try:
        _git(["init", "-q", work])
        wanted = ref or "HEAD"
        try:
            _git(["fetch", "-q", "--depth", "1", "--", url, wanted], cwd=work)
            commit = _git(["rev-parse", "FETCH_HEAD^{commit}"], cwd=work).strip()
        except SourceError:
            if not ref:
                raise
            # A commit the server will not serve shallowly: fetch everything and look it up.
            _git(["fetch", "-q", "--", url, "+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"], cwd=work)
            try:
                commit = _git(["rev-parse", "--verify", "%s^{commit}" % ref], cwd=work).strip()
            except SourceError:
                raise SourceError("git ref %r was not found in %s" % (ref, url))
        fd, tmp = tempfile.mkstemp(prefix=".download-", dir=dest_dir)
        os.close(fd)
        try:
            _git(["archive", "--format=tar", "-o", tmp, commit], cwd=work)
        except BaseException:
            os.unlink(tmp)
            raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    size = os.path.getsize(tmp)
    return Fetched(tmp, size, sha256_file(tmp), size, identity={"repository": url, "commit": commit, "ref": ref},
                   env={"BUNDLE_COMMIT": commit})
