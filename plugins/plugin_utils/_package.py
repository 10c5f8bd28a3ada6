# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The build stage of a pipeline: a revision directory checked, packed reproducibly, checksummed, published.

- :func:`check_revision` lists EVERY problem of a directory at once: an invalid AppSpec (each error of
  the parser), hook scripts missing from the revision, ``files`` sources that do not exist.
- :func:`build_archive` packs it as zip or tar.gz so that the same tree always gives the same bytes:
  sorted entries, one fixed timestamp (``SOURCE_DATE_EPOCH``, else 1980-01-01), owner 0:0 without
  names, modes 0644/0755 (only the exec bit is kept) for files and 0755 for directories, a gzip header
  with mtime 0 and no file name. The archive is then checked as hosts check one (``_revision``).
- :func:`publish` copies it (with ``<archive>.sha256``) to a directory, PUTs it to an HTTP(S) URL, or
  uploads it to S3 (boto3, imported only then, through ``_fetch``'s client).
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import stat
import tarfile
import tempfile
import time
import typing as t
import urllib.error
import zipfile

import yaml

from ansible.module_utils.urls import open_url

from ansible_collections.appspec.deploy.plugins.module_utils import _archive
from ansible_collections.appspec.deploy.plugins.module_utils._errors import DeployError
from ansible_collections.appspec.deploy.plugins.module_utils._sources import _redact, sha256_file
from ansible_collections.appspec.deploy.plugins.module_utils._spec import ParsedAppSpec
from ansible_collections.appspec.deploy.plugins.plugin_utils._appspec import MAX_APPSPEC_BYTES, AppSpecError, find_appspec, load_appspec
from ansible_collections.appspec.deploy.plugins.plugin_utils._fetch import _s3_client, parse_s3_url
from ansible_collections.appspec.deploy.plugins.plugin_utils._revision import _walk, appspec_from_archive, missing_paths

FORMATS = ("tar.gz", "zip")
# zip cannot store a time before 1980: the fixed time of every entry unless SOURCE_DATE_EPOCH says otherwise.
DEFAULT_EPOCH = 315532800  # 1980-01-01T00:00:00Z
_TIMEOUT = 300


class PackageError(DeployError):
    """A revision that cannot be packaged, or an archive that cannot be published. ``problems`` lists each."""

    def __init__(self, message: str, problems: t.Optional[t.List[str]] = None, **details: t.Any) -> None:
        self.problems = list(problems or [])
        super().__init__(message, problems=self.problems, **details)


class Built(t.NamedTuple):
    path: str
    sha256: str
    size: int
    format: str
    entries: int


def archive_format(dest: str, wanted: t.Optional[str] = None) -> str:
    """``wanted`` (tar.gz or zip), else the one ``dest`` ends with (.zip, .tar.gz, .tgz)."""
    if wanted:
        if wanted not in FORMATS:
            raise PackageError("format must be one of %s, not %r" % (", ".join(FORMATS), wanted))
        return wanted
    lower = dest.lower()
    if lower.endswith(".zip"):
        return "zip"
    if lower.endswith((".tar.gz", ".tgz")):
        return "tar.gz"
    raise PackageError("cannot tell the archive format of %s: name it *.zip, *.tar.gz or *.tgz, or set the format" % dest)


def source_date_epoch(environ: t.Optional[t.Mapping[str, str]] = None) -> int:
    """The timestamp of every entry: ``SOURCE_DATE_EPOCH`` (reproducible-builds.org), never before 1980."""
    value = (environ if environ is not None else os.environ).get("SOURCE_DATE_EPOCH", "").strip()
    if not value:
        return DEFAULT_EPOCH
    if not value.isdigit():
        raise PackageError("SOURCE_DATE_EPOCH must be a whole number of seconds, not %r" % value)
    return max(int(value), DEFAULT_EPOCH)


# --- checks ------------------------------------------------------------------------------------


def _directory_kind(root: str) -> t.Callable[[str, bool], t.Optional[str]]:
    """What the revision directory ``root`` holds at a relative path, as ``_revision.missing_paths`` asks it."""
    def kind(relative: str, follow: bool) -> t.Optional[str]:
        path = os.path.join(root, relative)
        if not follow and os.path.islink(path):
            return _archive.SYMLINK
        return _archive.FILE if os.path.isfile(path) else _archive.DIR if os.path.isdir(path) else None
    return kind


def check_revision(directory: str, appspec_filename: t.Optional[str] = None) -> ParsedAppSpec:
    """The parsed AppSpec of a revision directory, or a :class:`PackageError` listing every problem found."""
    root = os.path.abspath(directory)
    if not os.path.isdir(root):
        raise PackageError("the revision directory %s does not exist" % root, [root + " does not exist"])
    problems = []  # type: t.List[str]
    parsed = None  # type: t.Optional[ParsedAppSpec]
    source = appspec_filename or "appspec.yml"
    try:
        source = os.path.relpath(find_appspec(root, appspec_filename), root)
        parsed = load_appspec(root, appspec_filename=appspec_filename)
    except AppSpecError as err:
        for error in err.errors:
            where = " ".join(part for part in (
                "line %d col %d" % (error["line"], error["column"] or 0) if error.get("line") is not None else "",
                error.get("path") or "") if part)
            problems.append("%s: %s%s" % (os.path.basename(err.source), where + ": " if where else "", error["message"]))
        # The paths of an invalid AppSpec are checked too, as far as its YAML can be read: every problem at once.
        problems.extend(missing_paths(_lenient(os.path.join(root, source)), source, _directory_kind(root)))
    except DeployError as err:
        problems.append(str(err))
    if parsed is not None:
        if not parsed.deployable:
            problems.append("%s: an AppSpec for %s, not for EC2/on-premises hosts" % (source, parsed.compute_platform))
        else:
            problems.extend(missing_paths(parsed.appspec, source, _directory_kind(root)))
    if problems or parsed is None:
        raise PackageError("the revision %s cannot be packaged, %d problem%s: %s" % (
            root, len(problems), "" if len(problems) == 1 else "s", "; ".join(problems)), problems)
    return parsed


def _lenient(path: str) -> t.Dict[str, t.Any]:
    """The ``files`` sources and hook locations of an AppSpec the parser refused, where its YAML holds them."""
    try:
        with open(path, "rb") as handle:
            data = yaml.safe_load(handle.read(MAX_APPSPEC_BYTES))
    except (OSError, yaml.YAMLError):
        return {}
    if not isinstance(data, dict):
        return {}
    files = [item for item in data.get("files") or [] if isinstance(item, dict) and isinstance(item.get("source"), str)] \
        if isinstance(data.get("files"), list) else []
    hooks = {}
    if isinstance(data.get("hooks"), dict):
        for event, scripts in data["hooks"].items():
            if isinstance(scripts, list):
                hooks[str(event)] = [script if isinstance(script, dict) and isinstance(script.get("location"), str) else None
                                     for script in scripts]
    return {"files": files, "hooks": hooks}


# --- reproducible archives -----------------------------------------------------------------------


def _entries(root: str) -> t.Iterator[t.Tuple[str, str, os.stat_result]]:
    """Every entry, sorted by its path in the archive (a directory comes before what it holds)."""
    for rel, full in sorted(_walk(root), key=lambda item: item[0].replace(os.sep, "/")):
        st = os.lstat(full)
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode) or stat.S_ISLNK(st.st_mode)):
            raise PackageError("cannot pack %s: only files, directories and symlinks go into a revision" % full,
                               [full + " is neither a file, a directory nor a symlink"])
        yield rel.replace(os.sep, "/"), full, st


def _mode(st: os.stat_result) -> int:
    if stat.S_ISDIR(st.st_mode):
        return 0o755
    if stat.S_ISLNK(st.st_mode):
        return 0o777
    return 0o755 if st.st_mode & 0o111 else 0o644


def _write_tar_gz(root: str, handle: t.BinaryIO, epoch: int) -> int:
    count = 0
    # No file name and mtime 0 in the gzip header: the bytes depend on the content alone.
    with gzip.GzipFile(filename="", mode="wb", fileobj=handle, compresslevel=9, mtime=0) as compressed:
        with tarfile.open(fileobj=compressed, mode="w", format=tarfile.GNU_FORMAT) as archive:
            for rel, full, st in _entries(root):
                info = tarfile.TarInfo(rel)
                info.mtime, info.mode = epoch, _mode(st)
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                if stat.S_ISDIR(st.st_mode):
                    info.type = tarfile.DIRTYPE
                    archive.addfile(info)
                elif stat.S_ISLNK(st.st_mode):
                    info.type, info.linkname = tarfile.SYMTYPE, os.readlink(full)
                    archive.addfile(info)
                else:  # a hardlinked file is stored as a file of its own: the bytes must not depend on inodes
                    info.size = st.st_size
                    with open(full, "rb") as data:
                        archive.addfile(info, data)
                count += 1
    return count


def _write_zip(root: str, handle: t.BinaryIO, epoch: int) -> int:
    date_time = time.gmtime(epoch)[:6]
    count = 0
    with zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED) as archive:
        for rel, full, st in _entries(root):
            name = rel + "/" if stat.S_ISDIR(st.st_mode) else rel
            info = zipfile.ZipInfo(name, date_time)
            info.create_system = 3  # unix: external_attr holds the mode
            info.external_attr = (stat.S_IFMT(st.st_mode) | _mode(st)) << 16
            if stat.S_ISDIR(st.st_mode):
                info.compress_type = zipfile.ZIP_STORED
                archive.writestr(info, b"")
            elif stat.S_ISLNK(st.st_mode):  # Info-ZIP's convention: the link target is the entry's data
                info.compress_type = zipfile.ZIP_STORED
                archive.writestr(info, os.readlink(full).encode("utf-8", "surrogateescape"))
            else:
                info.compress_type = zipfile.ZIP_DEFLATED
                with open(full, "rb") as data, archive.open(info, "w") as entry:
                    shutil.copyfileobj(data, entry, 1024 * 1024)
            count += 1
    return count


def build_archive(directory: str, dest_dir: str, fmt: str, *, epoch: t.Optional[int] = None,
                  appspec_filename: t.Optional[str] = None) -> Built:
    """Pack ``directory`` into a new temp file in ``dest_dir`` (the caller moves or removes it).

    The result is checked as a host checks a revision before writing anything, and its AppSpec read
    back from it: what is built here deploys.
    """
    root = os.path.abspath(directory)
    os.makedirs(dest_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".package-", suffix="." + fmt, dir=dest_dir)
    try:
        with os.fdopen(fd, "wb") as handle:
            writer = _write_zip if fmt == "zip" else _write_tar_gz
            count = writer(root, t.cast(t.BinaryIO, handle), source_date_epoch() if epoch is None else epoch)
        appspec_from_archive(tmp, appspec_filename, shown=root).check_deployable(root, PackageError)
        os.chmod(tmp, 0o644)
    except BaseException:
        os.unlink(tmp)
        raise
    return Built(tmp, sha256_file(tmp), os.path.getsize(tmp), fmt, count)


def sha256_line(sha256: str, name: str) -> str:
    """The ``<archive>.sha256`` content, as ``sha256sum`` writes it (``sha256sum -c`` checks it)."""
    return "%s  %s\n" % (sha256, name)


def install(built: Built, dest: str) -> bool:
    """Move the built archive to ``dest`` and write ``dest.sha256``; False (and nothing moved) when both hold it already."""
    line = sha256_line(built.sha256, os.path.basename(dest))
    if os.path.isfile(dest) and sha256_file(dest) == built.sha256 and _read(dest + ".sha256") == line:
        os.unlink(built.path)
        return False
    os.replace(built.path, dest)
    write_text(dest + ".sha256", line)
    return True


def _read(path: str) -> t.Optional[str]:
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return None


def write_text(path: str, text: str) -> None:
    """Write ``path`` atomically (a temp file in the same directory, then rename)."""
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=os.path.dirname(os.path.abspath(path)))
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# --- publishing ----------------------------------------------------------------------------------


def publish_kind(target: str) -> str:
    """``s3``, ``url`` or ``dir`` for a publish target."""
    lower = target.lower()
    if lower.startswith("s3://"):
        return "s3"
    if lower.startswith(("http://", "https://")):
        return "url"
    return "dir"


def published_location(target: str, name: str) -> str:
    """Where the archive ``name`` goes: a target ending with ``/`` (or a directory) gets the name appended."""
    kind = publish_kind(target)
    if kind == "dir":
        return os.path.join(os.path.abspath(os.path.expanduser(target)), name)
    if target.endswith("/"):
        return target + name
    if kind == "s3" and "/" not in target[len("s3://"):]:
        return target + "/" + name  # s3://bucket
    return target


def publish(archive: str, sha256: str, target: str, *, headers: t.Optional[t.Mapping[str, str]] = None,
            s3_endpoint_url: t.Optional[str] = None, s3_region: t.Optional[str] = None) -> t.Dict[str, t.Any]:
    """Publish ``archive`` and its ``.sha256`` to ``target``; returns ``location`` and, for S3, ``version_id``."""
    name = os.path.basename(archive)
    location = published_location(target, name)
    kind = publish_kind(target)
    line = sha256_line(sha256, os.path.basename(location))
    if kind == "dir":
        os.makedirs(os.path.dirname(location), exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=os.path.dirname(location))
        try:
            with os.fdopen(fd, "wb") as out, open(archive, "rb") as src:
                shutil.copyfileobj(src, out, 1024 * 1024)
            os.chmod(tmp, 0o644)
            os.replace(tmp, location)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        write_text(location + ".sha256", line)
        return {"location": location, "version_id": None}
    if kind == "url":
        _put(location, archive, None, headers)
        _put(location + ".sha256", None, line.encode("utf-8"), headers)
        return {"location": location, "version_id": None}
    bucket, key = parse_s3_url(location)
    client = _s3_client(s3_endpoint_url, s3_region)
    try:
        with open(archive, "rb") as body:
            response = client.put_object(Bucket=bucket, Key=key, Body=body, Metadata={"sha256": sha256})
        client.put_object(Bucket=bucket, Key=key + ".sha256", Body=line.encode("utf-8"))
    except Exception as err:  # botocore raises many types; all are reported the same way
        raise PackageError("cannot publish to %s: %s" % (location, err), [str(err)])
    return {"location": location, "version_id": response.get("VersionId")}


def _put(url: str, path: t.Optional[str], data: t.Optional[bytes], headers: t.Optional[t.Mapping[str, str]]) -> None:
    size = os.path.getsize(path) if path else len(data or b"")
    request_headers = dict(headers or {}, **{"Content-Length": str(size), "Content-Type": "application/octet-stream"})
    try:
        with (open(path, "rb") if path else io.BytesIO(data or b"")) as body:
            response = open_url(url, data=body, method="PUT", headers=request_headers, timeout=_TIMEOUT,
                                follow_redirects="none")
        response.close()
    except urllib.error.HTTPError as err:
        raise PackageError("cannot publish to %s: HTTP %d %s" % (_redact(url), err.code, err.reason), [str(err)])
    except (urllib.error.URLError, OSError) as err:
        raise PackageError("cannot publish to %s: %s" % (_redact(url), getattr(err, "reason", err)), [str(err)])


def deploy_variables(location: str, sha256: str, kind: str, *, version_id: t.Optional[str] = None,
                     s3_endpoint_url: t.Optional[str] = None) -> t.Dict[str, str]:
    """The variables of ``playbooks/deploy.yml`` (docs/variables.md) that deploy exactly this archive."""
    variables = {"appspec_revision": location, "appspec_revision_sha256": sha256}
    if kind == "s3":
        if version_id:
            variables["appspec_s3_version_id"] = version_id
        if s3_endpoint_url:
            variables["appspec_s3_endpoint_url"] = s3_endpoint_url
    return variables
