# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where a revision comes from, and the fetches a host does itself: a local file, an HTTP(S) URL.

:func:`classify` tells every kind apart (``local``, ``url``, ``s3``, ``git``). Hosts fetch only local
files and ``http(s)://`` URLs, with the standard library; S3 and git revisions are fetched by the
controller (``plugins/plugin_utils/_fetch.py``, which builds on the helpers here).

Every fetch streams into a temp file in the directory it is given, hashing as it goes; a failure
(or a sha256 mismatch) removes the temp file, so nothing is left half-written. Each fetch returns
a :class:`Fetched` with the file, its size and sha256, the bytes it moved, an ``identity`` (what
identifies the revision at its source: URL, S3 bucket/key/version/etag, git commit) and the
``BUNDLE_*`` variables the CodeDeploy agent gives hooks for that source.
"""

from __future__ import annotations

import hashlib
import os
import re
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
        return "git" if _is_git_repository(local_path(revision)) else "local"
    return "local"


def _is_git_repository(path: str) -> bool:
    """A work tree (``.git`` inside) or a bare repository (``HEAD`` and ``objects/``)."""
    return os.path.exists(os.path.join(path, ".git")) or (
        os.path.isfile(os.path.join(path, "HEAD")) and os.path.isdir(os.path.join(path, "objects")))


def local_path(revision: str) -> str:
    """The path of a local revision: ``file:///srv/app.tgz`` (or ``file://localhost/...``) is ``/srv/app.tgz``."""
    if not revision.lower().startswith("file://"):
        return revision
    parts = urllib.parse.urlsplit(revision)
    if parts.netloc not in ("", "localhost"):
        raise SourceError("file URL %r names another host (%s): give a path on this machine" % (revision, parts.netloc))
    return urllib.parse.unquote(parts.path)


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


# Query parameters of presigned URLs (S3 SigV4 and SigV2) that are credentials: shown and recorded masked.
_SECRET_QUERY = frozenset(("x-amz-signature", "x-amz-security-token", "x-amz-credential", "signature", "awsaccesskeyid"))


def _redact(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    netloc, query = parts.netloc, parts.query
    if parts.password is not None:
        netloc = "%s:********@%s" % (parts.username, parts.hostname + (":%d" % parts.port if parts.port else ""))
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    if any(name.lower() in _SECRET_QUERY for name, _value in pairs):
        query = urllib.parse.urlencode([(name, "********" if name.lower() in _SECRET_QUERY else value)
                                        for name, value in pairs], safe="*")
    if (netloc, query) == (parts.netloc, parts.query):
        return url
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
