"""Safe unpacking: hostile zip and tar archives are refused before anything is written."""

from __future__ import annotations

import gzip
import io
import os
import re
import socket
import stat
import struct
import tarfile
import zipfile

import pytest

from bundle_fixtures import small_filesystem

from ansible_collections.appspec.deploy.plugins.module_utils._archive import (
    DEFAULT_MAX_UNPACKED_SIZE, MAX_PATH_DEPTH, ArchiveError, detect_bundle_type, plan_archive, remove_tree, unpack_archive,
    walk_tree)
from ansible_collections.appspec.deploy.plugins.module_utils._errors import DeployError

APPSPEC = b"version: 0.0\nos: linux\n"


# --- archive builders ---------------------------------------------------------------------------
# Each entry: (name, kind, payload) with kind in file|dir|symlink|hardlink|chr|blk|fifo;
# payload = bytes for files, link target for links, a mode int for dirs (optional).


def make_tar(path, entries, compress=False):
    with tarfile.open(path, "w:gz" if compress else "w", format=tarfile.GNU_FORMAT) as archive:
        for name, kind, payload in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 1700000000
            info.mode = 0o644
            data = None
            if kind == "file":
                data = payload
                info.size = len(payload)
                if isinstance(payload, tuple):  # (bytes, mode)
                    data, info.mode = payload
                    info.size = len(data)
            elif kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, payload or 0o755
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, payload
            elif kind == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, payload
            elif kind == "chr":
                info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
            elif kind == "blk":
                info.type = tarfile.BLKTYPE
            elif kind == "fifo":
                info.type = tarfile.FIFOTYPE
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return str(path)


def make_zip(path, entries, compression=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, kind, payload in entries:
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 2, 3, 4, 6))
            info.create_system = 3
            info.compress_type = compression
            data = b""
            if kind == "file":
                data, mode = payload if isinstance(payload, tuple) else (payload, 0o644)
                info.external_attr = (stat.S_IFREG | mode) << 16
            elif kind == "dir":
                info.filename = name.rstrip("/") + "/"
                info.external_attr = (stat.S_IFDIR | (payload or 0o755)) << 16 | 0x10
            elif kind == "symlink":
                data = payload.encode()
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
            elif kind == "chr":
                info.external_attr = (stat.S_IFCHR | 0o644) << 16
            elif kind == "blk":
                info.external_attr = (stat.S_IFBLK | 0o644) << 16
            elif kind == "fifo":
                info.external_attr = (stat.S_IFIFO | 0o644) << 16
            else:
                raise ValueError(kind)
            archive.writestr(info, data)
    return str(path)


def build(tmp_path, fmt, entries):
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    path = src / ("bundle." + fmt)
    if fmt == "zip":
        return make_zip(path, entries)
    return make_tar(path, entries, compress=(fmt == "tgz"))


def assert_nothing_left(tmp_path):
    """The target's parent holds nothing: no target, no temp dir; nothing escaped either."""
    dest_parent = tmp_path / "deploy"
    assert sorted(os.listdir(dest_parent)) == [], os.listdir(dest_parent)
    assert not (tmp_path / "evil").exists()
    assert not (tmp_path / "outside").exists()


# --- hostile archives ----------------------------------------------------------------------------

BASE = [("appspec.yml", "file", APPSPEC)]

HOSTILE = {
    # id: (entries, expected message fragment, formats)
    "absolute": (BASE + [("/tmp/evil", "file", b"x")], "absolute path", ("tar", "tgz", "zip")),
    "dotdot": (BASE + [("../evil", "file", b"x")], "'..' path component", ("tar", "tgz", "zip")),
    "dotdot-inner": (BASE + [("app/../../evil", "file", b"x")], "'..' path component", ("tar", "tgz", "zip")),
    "symlink-escape": (BASE + [("link", "symlink", "../outside")], "points outside the archive", ("tar", "tgz", "zip")),
    "symlink-absolute": (BASE + [("link", "symlink", "/etc/passwd")], "points outside the archive", ("tar", "tgz", "zip")),
    "symlink-chain-escape": (BASE + [("a", "symlink", "b/x"), ("b", "symlink", "..")], "points outside the archive", ("tar", "tgz", "zip")),
    "symlink-deep-escape": (BASE + [("d/e/link", "symlink", "../../../outside")], "points outside the archive", ("tar", "tgz", "zip")),
    "symlink-loop": (BASE + [("a", "symlink", "b/x"), ("b", "symlink", "a/x")], "points outside the archive", ("tar", "tgz", "zip")),
    "write-through-symlink": (
        BASE + [("sub", "dir", None), ("link", "symlink", "sub"), ("link/evil", "file", b"x")],
        "written through the symlink",
        ("tar", "tgz", "zip"),
    ),
    "write-through-escaping-symlink": (BASE + [("link", "symlink", ".."), ("link/evil", "file", b"x")], "written through the symlink", ("tar", "tgz", "zip")),
    "symlink-replaces-dir": (BASE + [("sub/f", "file", b"x"), ("sub", "symlink", "..")], "would replace a directory", ("tar", "tgz", "zip")),
    "duplicate": (BASE + [("f", "file", b"1"), ("f", "symlink", "appspec.yml")], "appears twice", ("tar", "tgz", "zip")),
    "hardlink-escape": (BASE + [("h", "hardlink", "../../etc/passwd")], "'..' path component", ("tar", "tgz")),
    "hardlink-absolute": (BASE + [("h", "hardlink", "/etc/passwd")], "absolute path", ("tar", "tgz")),
    "hardlink-to-nothing": (BASE + [("h", "hardlink", "missing")], "hardlink 'h' points outside the archive", ("tar", "tgz")),
    "hardlink-via-symlink": (BASE + [("s", "symlink", "appspec.yml"), ("h", "hardlink", "s")], "not at one of its files", ("tar", "tgz")),
    "char-device": (BASE + [("dev", "chr", None)], "is a device file", ("tar", "tgz", "zip")),
    "block-device": (BASE + [("dev", "blk", None)], "is a device file", ("tar", "tgz", "zip")),
    "fifo": (BASE + [("pipe", "fifo", None)], "is a fifo", ("tar", "tgz", "zip")),
}

CASES = [pytest.param(name, fmt, id="%s-%s" % (name, fmt)) for name, (_entries, _message, fmts) in HOSTILE.items() for fmt in fmts]


@pytest.mark.filterwarnings("ignore:Duplicate name")
@pytest.mark.parametrize("case, fmt", CASES)
def test_hostile_archive_is_refused_and_leaves_nothing(tmp_path, case, fmt):
    entries, message = HOSTILE[case][:2]
    archive = build(tmp_path, fmt, entries)
    (tmp_path / "deploy").mkdir()
    target = tmp_path / "deploy" / "deployment-archive"
    with pytest.raises(ArchiveError, match=message.replace("(", r"\(").replace(")", r"\)")):
        unpack_archive(archive, str(target))
    assert_nothing_left(tmp_path)


@pytest.mark.parametrize("fmt", ["tar", "tgz", "zip"])
def test_size_bomb_over_limit_is_refused(tmp_path, fmt):
    zeros = b"\0" * (3 * 1024 * 1024)
    archive = build(tmp_path, fmt, BASE + [("a", "file", zeros), ("b", "file", zeros)])
    assert os.path.getsize(archive) < 1024 * 1024 or fmt == "tar"
    (tmp_path / "deploy").mkdir()
    with pytest.raises(ArchiveError, match=r"more than the limit of 5242880 bytes \(max_unpacked_size\)"):
        unpack_archive(archive, str(tmp_path / "deploy" / "deployment-archive"), max_size=5 * 1024 * 1024)
    assert_nothing_left(tmp_path)


@pytest.mark.parametrize("fmt", ["tar", "tgz", "zip"])
def test_more_than_free_space_is_refused(tmp_path, fmt):
    archive = build(tmp_path, fmt, BASE + [("a", "file", b"x" * 100000)])
    (tmp_path / "deploy").mkdir()
    with pytest.raises(ArchiveError, match="only 50000 bytes are free"):
        unpack_archive(archive, str(tmp_path / "deploy" / "deployment-archive"), free_space=lambda _path: 50000)
    assert_nothing_left(tmp_path)


def test_zip_entry_larger_than_declared_is_refused(tmp_path):
    """A zip whose data is longer than its header says (a lying bomb) fails the CRC/size check."""
    path = make_zip(tmp_path / "b.zip", BASE + [("big", "file", b"A" * 1000)], compression=zipfile.ZIP_STORED)
    data = bytearray(open(path, "rb").read())
    # Shrink the declared size of "big" (the last entry) in its local header and the central directory.
    raw = bytes(data)
    archive = zipfile.ZipFile(path)
    info = archive.getinfo("big")
    archive.close()
    local = info.header_offset
    data[local + 22 : local + 26] = (10).to_bytes(4, "little")
    cdir = raw.rfind(b"PK\x01\x02")
    data[cdir + 24 : cdir + 28] = (10).to_bytes(4, "little")
    open(path, "wb").write(bytes(data))
    (tmp_path / "deploy").mkdir()
    with pytest.raises(ArchiveError, match="cannot read zip archive"):
        unpack_archive(path, str(tmp_path / "deploy" / "deployment-archive"))
    assert os.listdir(tmp_path / "deploy") == []


def test_too_many_entries_is_refused(tmp_path):
    archive = build(tmp_path, "tar", BASE + [("f%d" % i, "file", b"") for i in range(20)])
    with pytest.raises(ArchiveError, match="more than 10 entries"):
        plan_archive(archive, max_entries=10)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty file"),
        (b"just some text that is not an archive" * 20, "unknown content"),
        (b"BZh91AY&SY" + b"\0" * 600, "bzip2 data"),
    ],
)
def test_unknown_content_is_refused(tmp_path, content, message):
    path = tmp_path / "bundle.tar"
    path.write_bytes(content)
    with pytest.raises(ArchiveError, match=message):
        detect_bundle_type(str(path))


def test_corrupt_gzip_is_a_clear_error(tmp_path):
    archive = build(tmp_path, "tgz", BASE + [("a", "file", os.urandom(200000))])
    data = open(archive, "rb").read()
    open(archive, "wb").write(data[: len(data) // 2])
    (tmp_path / "deploy").mkdir()
    with pytest.raises(ArchiveError, match="cannot read tgz archive"):
        unpack_archive(archive, str(tmp_path / "deploy" / "x"))
    assert os.listdir(tmp_path / "deploy") == []


# --- good archives -------------------------------------------------------------------------------

GOOD = [
    ("appspec.yml", "file", APPSPEC),
    ("bin", "dir", 0o750),
    ("bin/run.sh", "file", (b"#!/bin/sh\necho hi\n", 0o755)),
    ("bin/suid", "file", (b"x", 0o4755)),
    ("bin/sgid", "file", (b"x", 0o2755)),
    ("conf/app.ini", "file", b"[a]\n"),
    ("conf/current.ini", "symlink", "app.ini"),
    ("shared", "symlink", "conf"),
    ("up", "symlink", "conf/../bin/run.sh"),
]


@pytest.mark.parametrize("fmt", ["tar", "tgz", "zip"])
@pytest.mark.parametrize("allow_setuid", [False, True])
def test_good_archive_is_unpacked_with_modes_and_links(tmp_path, fmt, allow_setuid):
    archive = build(tmp_path, fmt, GOOD)
    target = tmp_path / "deploy" / "deployment-archive"
    result = unpack_archive(archive, str(target), allow_setuid=allow_setuid)
    assert result.bundle_type == fmt
    assert result.symlinks == 3 and result.hoisted is None
    assert (target / "appspec.yml").read_bytes() == APPSPEC
    assert stat.S_IMODE(os.stat(target / "bin/run.sh").st_mode) == 0o755
    assert stat.S_IMODE(os.stat(target / "bin").st_mode) == 0o750
    assert stat.S_IMODE(os.stat(target / "conf").st_mode) == 0o755  # implicit parent
    suid = stat.S_IMODE(os.stat(target / "bin/suid").st_mode)
    sgid = stat.S_IMODE(os.stat(target / "bin/sgid").st_mode)
    assert (suid, sgid) == ((0o4755, 0o2755) if allow_setuid else (0o755, 0o755))
    assert os.readlink(target / "conf/current.ini") == "app.ini"
    assert (target / "shared" / "app.ini").read_bytes() == b"[a]\n"
    assert (target / "up").read_bytes().startswith(b"#!/bin/sh")
    assert sorted(os.listdir(tmp_path / "deploy")) == ["deployment-archive"]


def test_tar_hardlink_inside_is_kept(tmp_path):
    archive = build(tmp_path, "tar", BASE + [("a", "file", b"data"), ("b", "hardlink", "a")])
    target = tmp_path / "out"
    unpack_archive(archive, str(target))
    assert os.stat(target / "a").st_ino == os.stat(target / "b").st_ino


@pytest.mark.parametrize("fmt", ["tar", "tgz", "zip"])
def test_single_top_folder_with_appspec_is_hoisted(tmp_path, fmt):
    archive = build(
        tmp_path,
        fmt,
        [("webapp-1.2/appspec.yml", "file", APPSPEC), ("webapp-1.2/app/main.py", "file", b"print(1)\n"), ("webapp-1.2/app/link", "symlink", "../appspec.yml")],
    )
    target = tmp_path / "deploy" / "deployment-archive"
    result = unpack_archive(archive, str(target))
    assert result.hoisted == "webapp-1.2"
    assert (target / "appspec.yml").read_bytes() == APPSPEC
    assert (target / "app/link").read_bytes() == APPSPEC
    assert sorted(os.listdir(tmp_path / "deploy")) == ["deployment-archive"]


def test_single_top_folder_without_appspec_is_not_hoisted(tmp_path):
    archive = build(tmp_path, "tar", [("data/readme.txt", "file", b"x")])
    result = unpack_archive(archive, str(tmp_path / "out"))
    assert result.hoisted is None and (tmp_path / "out/data/readme.txt").exists()


@pytest.mark.parametrize("fmt", ["tar", "zip"])
def test_symlink_leaving_the_hoisted_folder_is_refused(tmp_path, fmt):
    """Inside the archive it is fine, but once the folder is lifted it would point at the deployment dir."""
    archive = build(tmp_path, fmt, [("top/appspec.yml", "file", APPSPEC), ("top/logs", "symlink", "../logs")])
    (tmp_path / "deploy").mkdir()
    with pytest.raises(ArchiveError, match="outside the folder 'top'"):
        unpack_archive(archive, str(tmp_path / "deploy" / "deployment-archive"))
    assert_nothing_left(tmp_path)


def test_type_is_recognised_by_content_not_name(tmp_path):
    tar_named_zip = make_tar(tmp_path / "bundle.zip", BASE)
    zip_named_tar = make_zip(tmp_path / "bundle.tar", BASE)
    tgz_named_tar = make_tar(tmp_path / "x.tar", BASE, compress=True)
    assert [detect_bundle_type(p) for p in (tar_named_zip, zip_named_tar, tgz_named_tar)] == ["tar", "zip", "tgz"]
    unpack_archive(tar_named_zip, str(tmp_path / "o1"))
    unpack_archive(zip_named_tar, str(tmp_path / "o2"))
    assert (tmp_path / "o1/appspec.yml").exists() and (tmp_path / "o2/appspec.yml").exists()


def test_existing_target_is_replaced_and_kept_on_failure(tmp_path):
    target = tmp_path / "deploy" / "deployment-archive"
    unpack_archive(build(tmp_path, "tar", BASE + [("old", "file", b"1")]), str(target))
    bad = make_tar(tmp_path / "bad.tar", BASE + [("../evil", "file", b"x")])
    with pytest.raises(ArchiveError):
        unpack_archive(bad, str(target))
    assert (target / "old").exists()

    def reject(_content):
        raise ArchiveError("no thanks")

    new = make_tar(tmp_path / "new.tar", BASE + [("new", "file", b"2")])
    with pytest.raises(ArchiveError, match="no thanks"):
        unpack_archive(new, str(target), check=reject)
    assert (target / "old").exists() and not (target / "new").exists()
    unpack_archive(new, str(target))
    assert (target / "new").exists() and not (target / "old").exists()
    assert sorted(os.listdir(tmp_path / "deploy")) == ["deployment-archive"]


def test_old_v7_and_pax_tar_formats_are_read(tmp_path):
    for fmt in (tarfile.USTAR_FORMAT, tarfile.PAX_FORMAT):
        path = tmp_path / ("f%d.tar" % fmt)
        with tarfile.open(path, "w", format=fmt) as archive:
            info = tarfile.TarInfo("appspec.yml")
            info.size = len(APPSPEC)
            archive.addfile(info, io.BytesIO(APPSPEC))
        assert detect_bundle_type(str(path)) == "tar"
        unpack_archive(str(path), str(tmp_path / ("out%d" % fmt)))


# --- damaged archives, deep trees, control characters (issue 14) ---------------------------------

CONTENT = BASE + [("a", "file", os.urandom(50000))] + [("later/f%d" % i, "file", b"x" * 700) for i in range(5)]


def _expect_refused(tmp_path, archive, message):
    (tmp_path / "deploy").mkdir(exist_ok=True)
    with pytest.raises(ArchiveError, match=message):
        unpack_archive(archive, str(tmp_path / "deploy" / "x"))
    assert_nothing_left(tmp_path)


def test_gzip_crc_error_is_refused(tmp_path):
    raw = tmp_path / "raw.tar"
    make_tar(raw, CONTENT)
    archive = tmp_path / "bundle.tgz"
    # Stored (level 0) deflate: a flipped byte in the data still inflates and only the CRC tells.
    with gzip.GzipFile(str(archive), "wb", compresslevel=0) as out:
        out.write(raw.read_bytes())
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    archive.write_bytes(bytes(data))
    with pytest.raises(ArchiveError, match="CRC check failed"):
        plan_archive(str(archive))
    _expect_refused(tmp_path, str(archive), "CRC check failed")


def _damage_header(data: bytes, name: str) -> bytes:
    at = data.index(name.encode())
    damaged = bytearray(data)
    damaged[at + 100] ^= 0x01  # a byte of the mode field: only the checksum notices
    return bytes(damaged)


@pytest.mark.parametrize("fmt", ["tar", "tgz"])
def test_tar_with_a_bad_header_checksum_is_refused(tmp_path, fmt):
    raw = tmp_path / "raw.tar"
    make_tar(raw, CONTENT)
    data = _damage_header(raw.read_bytes(), "later/f2")
    archive = tmp_path / ("bundle." + fmt)
    archive.write_bytes(gzip.compress(data) if fmt == "tgz" else data)
    with pytest.raises(ArchiveError, match="damaged header"):
        plan_archive(str(archive))
    _expect_refused(tmp_path, str(archive), "damaged header")


@pytest.mark.parametrize("fmt", ["tar", "tgz"])
def test_data_after_the_end_of_the_tar_is_refused(tmp_path, fmt):
    raw = tmp_path / "raw.tar"
    make_tar(raw, BASE)
    data = raw.read_bytes() + raw.read_bytes()  # a second archive after the end-of-archive blocks
    archive = tmp_path / ("bundle." + fmt)
    archive.write_bytes(gzip.compress(data) if fmt == "tgz" else data)
    _expect_refused(tmp_path, str(archive), "data after the end")


def test_truncated_tar_header_is_refused(tmp_path):
    raw = tmp_path / "raw.tar"
    make_tar(raw, BASE + [("b", "file", b"y" * 10)])
    data = raw.read_bytes()
    archive = tmp_path / "bundle.tar"
    archive.write_bytes(data[: data.index(b"b\x00") + 200])
    _expect_refused(tmp_path, str(archive), "truncated")


def _deep(levels: int) -> str:
    return "/".join(["d"] * levels)


@pytest.mark.parametrize("fmt", ["tar", "tgz", "zip"])
def test_too_deep_entry_is_refused_before_writing(tmp_path, fmt):
    deep = _deep(1200)
    archive = build(tmp_path, fmt, BASE + [(deep, "dir", None), (deep + "/f", "file", b"x")])
    _expect_refused(tmp_path, archive, r"archive entry 'd/d/d.*' is 1200 directories deep, more than the limit of 128")


@pytest.mark.parametrize("fmt", ["tar", "zip"])
def test_entry_at_the_depth_limit_is_unpacked(tmp_path, fmt):
    deep = _deep(MAX_PATH_DEPTH - 1) + "/f"
    archive = build(tmp_path, fmt, BASE + [(deep, "file", b"x")])
    unpack_archive(archive, str(tmp_path / "deploy" / "x"))
    assert (tmp_path / "deploy" / "x" / deep).read_bytes() == b"x"


def test_remove_tree_handles_a_deep_read_only_tree(tmp_path):
    top = tmp_path / "top"
    here = make_deep_tree(str(top), 1200)
    open(os.path.join(here, "f"), "w").close()
    os.symlink("/", os.path.join(here, "root-link"))
    os.chmod(here, 0o500)
    remove_tree(str(top))
    assert not top.exists()


def test_walk_tree_matches_os_walk_without_recursion(tmp_path):
    shallow = tmp_path / "shallow"
    for rel in ("a/b/c", "a/e", "f"):
        (shallow / rel).mkdir(parents=True)
    (shallow / "a" / "file").write_text("x")
    (shallow / "link").symlink_to("a")
    assert list(walk_tree(str(shallow))) == list(os.walk(str(shallow)))
    deep = str(tmp_path / "deep")
    make_deep_tree(deep, 1200)
    try:
        assert sum(1 for dummy in walk_tree(deep)) == 1201
    finally:
        remove_tree(deep)  # pytest's own clean-up of tmp_path would recurse on it


def make_deep_tree(top: str, levels: int) -> str:
    """``top/d/d/.../d`` with ``levels`` levels below ``top``; returns the deepest dir."""
    here = top
    os.mkdir(here)
    for dummy in range(levels):
        here = os.path.join(here, "d")
        os.mkdir(here)
    return here


@pytest.mark.parametrize("name", ["a\nb", "evil\r", "x\x1by", "del\x7f", "dir\n/f", "tab\there"])
@pytest.mark.parametrize("fmt", ["tar", "tgz", "zip"])
def test_control_characters_in_names_are_refused(tmp_path, name, fmt):
    archive = build(tmp_path, fmt, BASE + [("ok", "file", b"1"), (name, "file", b"x")])
    _expect_refused(tmp_path, archive, re.escape("archive entry %r has a control character in its name" % name))


def test_control_character_in_a_hardlink_target_is_refused(tmp_path):
    archive = build(tmp_path, "tar", BASE + [("h", "hardlink", "appspec.yml\n")])
    _expect_refused(tmp_path, archive, "control character")


# --- size bombs: a few KB declaring many GB, refused by the headers alone (issue 14) -------------------


def declared_bomb(path, fmt, sizes):
    """An archive whose entries DECLARE ``sizes`` bytes but hold a few bytes each: cheap to build, huge to
    unpack. tar/tgz: one GNU header (base-256 size) followed by 512 bytes; zip: stored entries whose
    central-directory sizes are rewritten."""
    path = str(path)
    if fmt == "zip":
        with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
            archive.writestr("appspec.yml", APPSPEC)
            for index in range(len(sizes)):
                archive.writestr("zeros-%d" % index, b"\0" * 16)
        data = bytearray(open(path, "rb").read())
        at = data.find(b"PK\x01\x02")
        entry = -1
        while at >= 0:
            if entry >= 0:
                struct.pack_into("<I", data, at + 24, sizes[entry])  # uncompressed size, central directory
            entry += 1
            at = data.find(b"PK\x01\x02", at + 4)
        open(path, "wb").write(bytes(data))
        return path
    raw = io.BytesIO()
    head = tarfile.TarInfo("appspec.yml")
    head.size = len(APPSPEC)
    raw.write(head.tobuf(tarfile.GNU_FORMAT) + APPSPEC + b"\0" * (512 - len(APPSPEC)))
    for index, size in enumerate(sizes):
        info = tarfile.TarInfo("zeros-%d" % index)
        info.size = size
        raw.write(info.tobuf(tarfile.GNU_FORMAT) + b"\0" * 512)  # the data stops here: nobody reads that far
    payload = raw.getvalue()
    with open(path, "wb") as handle:
        handle.write(gzip.compress(payload) if fmt == "tgz" else payload)
    return path


@pytest.mark.parametrize("fmt, sizes", [
    ("tar", [20 * 1024 ** 3]),
    ("tgz", [20 * 1024 ** 3]),
    ("zip", [0xF0000000] * 3),  # 3 x 3.75 GiB
])
def test_a_bomb_declaring_many_gigabytes_is_refused_by_its_headers(tmp_path, fmt, sizes):
    bomb = declared_bomb(tmp_path / ("bomb." + fmt), fmt, sizes)
    assert os.path.getsize(bomb) < 8192 and sum(sizes) > DEFAULT_MAX_UNPACKED_SIZE
    (tmp_path / "deploy").mkdir()
    with pytest.raises(ArchiveError, match=r"more than the limit of %d bytes \(max_unpacked_size\), by the sizes its entries "
                                           r"declare .*refused before anything was unpacked" % DEFAULT_MAX_UNPACKED_SIZE):
        unpack_archive(bomb, str(tmp_path / "deploy" / "deployment-archive"), max_size=DEFAULT_MAX_UNPACKED_SIZE)
    assert_nothing_left(tmp_path)
    # Without a limit (max_unpacked_size 0), the free space refuses it, still before a byte is written.
    with pytest.raises(ArchiveError, match="on host %s, the archive needs about [0-9]+ bytes unpacked .by the sizes it declares. "
                                           "but only 1000000 bytes are free in %s: refused before anything was written"
                                           % (re.escape(socket.gethostname()), re.escape(str(tmp_path / "deploy")))):
        unpack_archive(bomb, str(tmp_path / "deploy" / "deployment-archive"), free_space=lambda _path: 1000000)
    assert_nothing_left(tmp_path)


def test_a_file_system_out_of_inodes_mid_unpack_is_named_and_leaves_nothing(tmp_path):
    # The bytes fit (the check passes) but the file system runs out of file entries half way.
    archive = build(tmp_path, "tar", BASE + [("f%03d" % i, "file", b"x") for i in range(60)])
    with small_filesystem(tmp_path / "deploy", "2m", inodes=30):
        with pytest.raises(DeployError) as err:
            unpack_archive(archive, str(tmp_path / "deploy" / "deployment-archive"))
        message = str(err.value)
        assert message.startswith("on host %s, unpacking the revision could not write in %s: no free inodes (file entries) "
                                  "left on the file system (ENOSPC)" % (socket.gethostname(), tmp_path / "deploy" / "deployment-archive"))
        assert "what was half-made there was removed" in message and "Errno" not in message
        assert err.value.details["errno"] == "ENOSPC"
        assert_nothing_left(tmp_path)


def test_a_disk_that_fills_mid_unpack_is_named_with_the_bytes(tmp_path):
    archive = build(tmp_path, "tar", BASE + [("big", "file", b"x" * (3 * 1024 * 1024))])
    with small_filesystem(tmp_path / "deploy", "2m"):
        with pytest.raises(DeployError, match=r"could not write in .*: no space left on the file system \(ENOSPC\): about "
                                              r"[0-9]+ bytes needed, [0-9]+ bytes free now; what was half-made there was removed"):
            # the free space is taken by someone else between the check and the writes
            unpack_archive(archive, str(tmp_path / "deploy" / "deployment-archive"), free_space=lambda _path: 1 << 40)
        assert_nothing_left(tmp_path)


def test_a_file_name_too_long_for_the_file_system_is_named(tmp_path):
    name = "n" * 300  # fine in a tar, too long for ext4/tmpfs (255 bytes)
    archive = build(tmp_path, "tar", BASE + [(name, "file", b"x")])
    (tmp_path / "deploy").mkdir()
    with pytest.raises(DeployError, match=r"a file name is too long for the file system \(ENAMETOOLONG: 300 bytes in 'n+'; "
                                          r"names hold at most 255 bytes"):
        unpack_archive(archive, str(tmp_path / "deploy" / "deployment-archive"))
    assert_nothing_left(tmp_path)
