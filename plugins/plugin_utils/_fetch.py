# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller-only fetches: S3 (or any S3-compatible store, with boto3) and git (the git command).

Hosts never fetch these: ``plugin_utils._revision`` fetches them once into the controller's cache and
the bundle action plugin uploads the archive, with the ``BUNDLE_*`` variables recorded here. The
streaming, hashing and :class:`~module_utils._sources.Fetched` result are shared with the fetches
hosts do themselves (``module_utils._sources``). With ``appspec_revision_download=host`` an S3
revision reaches the hosts through a presigned URL (:func:`presign_s3`) they fetch as plain HTTP(S).

boto3 is imported only when an S3 revision is fetched.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import typing as t

from ansible_collections.appspec.deploy.plugins.module_utils._sources import (
    DEFAULT_TIMEOUT,
    Fetched,
    SourceError,
    _stream_to_temp,
    local_path,
    sha256_file,
)

_COMMIT = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
# Hosts fetch a presigned URL when their DownloadBundle runs, which in a large fleet deployed one
# batch at a time can be many hours after the plan: a day covers that, well within SigV4's 7 days.
PRESIGNED_URL_EXPIRY = 24 * 3600


# --------------------------------------------------------------------------------------------
# S3


def parse_s3_url(url: str) -> t.Tuple[str, str]:
    match = re.match(r"^s3://([^/]+)/(.+)$", url)
    if not match:
        raise SourceError("S3 revision %r must look like s3://bucket/key" % url)
    return match.group(1), match.group(2)


def _s3_client(endpoint_url: t.Optional[str], region: t.Optional[str], signature_version: t.Optional[str] = None) -> t.Any:
    try:
        import boto3  # pylint: disable=import-outside-toplevel
        from botocore.config import Config  # pylint: disable=import-outside-toplevel
    except ImportError:
        raise SourceError("the S3 revision source needs the Python library boto3 on the controller "
                          "(pip install boto3)")
    kwargs = {}  # type: t.Dict[str, t.Any]
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
    if region:
        kwargs["region_name"] = region
    if signature_version:
        kwargs["config"] = Config(signature_version=signature_version)
    return boto3.client("s3", **kwargs)


def _s3_error(err: Exception, bucket: str, key: str) -> SourceError:
    code = getattr(err, "response", {}).get("Error", {}).get("Code") if hasattr(err, "response") else None
    return SourceError("cannot fetch s3://%s/%s: %s" % (bucket, key, err), error_code=code)


def _s3_request(url: str, version_id: t.Optional[str], endpoint_url: t.Optional[str], region: t.Optional[str],
                signature_version: t.Optional[str] = None) -> t.Tuple[t.Any, str, str, t.Dict[str, str]]:
    """(client, bucket, key, the object's request arguments) for ``s3://bucket/key``."""
    bucket, key = parse_s3_url(url)
    kwargs = {"Bucket": bucket, "Key": key}
    if version_id:
        kwargs["VersionId"] = version_id
    return _s3_client(endpoint_url, region, signature_version), bucket, key, kwargs


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


def presign_s3(url: str, *, version_id: t.Optional[str] = None, endpoint_url: t.Optional[str] = None,
               region: t.Optional[str] = None) -> str:
    """A GET URL of the object that plain HTTP(S) can fetch for PRESIGNED_URL_EXPIRY: hosts need no boto3 nor credentials.

    Signed locally with the controller's credentials (no request is made) for ``region`` (else boto3's
    configured one), which must be the bucket's; it stops working earlier when those are temporary
    credentials (an instance role, STS) that expire first.
    """
    # SigV4: boto3 would presign with SigV2 in us-east-1, which newer regions and SSE-KMS objects refuse.
    client, bucket, key, kwargs = _s3_request(url, version_id, endpoint_url, region, signature_version="s3v4")
    try:
        return client.generate_presigned_url("get_object", Params=kwargs, ExpiresIn=PRESIGNED_URL_EXPIRY)
    except Exception as err:  # e.g. botocore's NoCredentialsError
        raise _s3_error(err, bucket, key)


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
        raise SourceError("the git revision source needs the git command on the controller")
    except subprocess.TimeoutExpired:
        raise SourceError("git %s timed out after %d s" % (args[0], timeout))
    if proc.returncode != 0:
        raise SourceError("git %s failed: %s" % (" ".join(args[:1]), proc.stderr.decode("utf-8", "replace").strip()),
                          rc=proc.returncode)
    return proc.stdout.decode("utf-8", "replace")


def _git_remote(url: str) -> str:
    """The repository as git takes it: ``FILE://`` spelled ``file://`` (git knows no other case)."""
    if not url.lower().startswith("file://"):
        return url
    local_path(url)  # refuses a file URL of another host, as for a local revision
    return "file://" + url[len("file://"):]


def resolve_git_ref(url: str, ref: t.Optional[str]) -> t.Optional[str]:
    """The commit a ref names on the remote (``git ls-remote``), or None when it cannot be told that way."""
    if ref and _COMMIT.fullmatch(ref):
        return ref
    wanted = ref or "HEAD"
    out = _git(["ls-remote", "--", _git_remote(url), wanted, wanted + "^{}"])
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
    remote = _git_remote(url)
    work = tempfile.mkdtemp(prefix=".git-", dir=dest_dir)
    try:
        _git(["init", "-q", work])
        wanted = ref or "HEAD"
        try:
            _git(["fetch", "-q", "--depth", "1", "--", remote, wanted], cwd=work)
            commit = _git(["rev-parse", "FETCH_HEAD^{commit}"], cwd=work).strip()
        except SourceError:
            if not ref:
                raise
            # A commit the server will not serve shallowly: fetch everything and look it up.
            _git(["fetch", "-q", "--", remote, "+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"], cwd=work)
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
