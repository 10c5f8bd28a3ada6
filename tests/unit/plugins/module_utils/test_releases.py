"""Release directories: hardlinks, shared paths, atomic current, log, prune, rollback, crashes."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import time

import pytest

from ansible_collections.appspec.deploy.plugins.module_utils import _releases
from ansible_collections.appspec.deploy.plugins.module_utils._archive import remove_tree
from ansible_collections.appspec.deploy.plugins.module_utils._errors import DeployError
from ansible_collections.appspec.deploy.plugins.module_utils._releases import RELEASE_LOG, UNFINISHED_MARKER, ReleaseRoot

COLLECTIONS = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", ".cache", "collections")


def revision(path, files):
    for rel, content in files.items():
        full = os.path.join(str(path), rel)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        if isinstance(content, tuple):
            os.symlink(content[1], full)
        else:
            with open(full, "w") as handle:
                handle.write(content)
    return str(path)


@pytest.fixture
def rr(tmp_path):
    return ReleaseRoot(str(tmp_path / "app"))


def deploy(rr, tmp_path, did, files, status="good", **kw):
    rev = revision(tmp_path / ("rev-" + did), files)
    made = rr.create_release(did, rev, **kw)
    rr.switch(did)
    if status:
        rr.mark(did, status)
    return made


def test_create_release_layout_and_log(rr, tmp_path):
    rev = revision(tmp_path / "r1", {"index.html": "v1", "lib/x.py": "x", "l": ("link", "index.html")})
    made = rr.create_release("d-1", rev, sha256="abc")
    path = rr.release_dir("d-1")
    assert made["changed"] and made["release_dir"] == path and made["copied"] == 2
    assert open(os.path.join(path, "index.html")).read() == "v1"
    assert os.readlink(os.path.join(path, "l")) == "index.html"
    assert not os.path.exists(os.path.join(path, UNFINISHED_MARKER))
    log = json.load(open(os.path.join(rr.root, RELEASE_LOG)))
    entry = log["releases"][0]
    assert entry["id"] == "d-1" and entry["sha256"] == "abc" and entry["status"] == "complete" and entry["finished_at"] >= entry["created"]
    assert rr.current_release() is None
    assert rr.create_release("d-1", rev, sha256="abc")["changed"] is False, "idempotent"
    with pytest.raises(DeployError, match="another revision"):
        rr.create_release("d-1", rev, sha256="def")


def test_check_mode_creates_nothing(rr, tmp_path):
    rev = revision(tmp_path / "r1", {"a": "1"})
    assert rr.create_release("d-1", rev, check_mode=True)["changed"]
    assert not os.path.exists(rr.root)


def test_unchanged_files_are_hardlinked_changed_ones_copied(rr, tmp_path):
    deploy(rr, tmp_path, "d-1", {"same": "s", "changed": "one", "samesize": "aaa"})
    made = deploy(rr, tmp_path, "d-2", {"same": "s", "changed": "two!", "samesize": "bbb", "new": "n"})
    one, two = rr.release_dir("d-1"), rr.release_dir("d-2")
    assert os.stat(os.path.join(two, "same")).st_ino == os.stat(os.path.join(one, "same")).st_ino
    for name in ("changed", "samesize"):
        assert os.stat(os.path.join(two, name)).st_ino != os.stat(os.path.join(one, name)).st_ino
    assert open(os.path.join(two, "samesize")).read() == "bbb", "same size, other bytes: copied"
    assert made["linked"] == 1 and made["copied"] == 3


def test_mode_change_prevents_linking_and_link_unchanged_off(rr, tmp_path):
    deploy(rr, tmp_path, "d-1", {"a": "x"})
    rev = revision(tmp_path / "r2", {"a": "x"})
    os.chmod(os.path.join(rev, "a"), 0o600)
    made = rr.create_release("d-2", rev)
    assert made["linked"] == 0 and stat.S_IMODE(os.stat(os.path.join(rr.release_dir("d-2"), "a")).st_mode) == 0o600
    assert rr.create_release("d-3", revision(tmp_path / "r3", {"a": "x"}), link_unchanged=False)["linked"] == 0


def test_files_under_current_only_and_permissions(rr, tmp_path):
    rev = revision(tmp_path / "r1", {"app/index.html": "v1", "app/bin/run.sh": "#!/bin/sh", "etc/conf": "c", "appspec.yml": "x"})
    spec = {
        "files": [
            {"source": "app", "destination": rr.current_link},
            {"source": "etc/conf", "destination": rr.current_link + "/config"},
            {"source": "etc", "destination": "/etc/myapp"},
        ],
        "permissions": [{"object": rr.current_link + "/bin", "pattern": "*.sh", "mode": "755", "type": ["file"]}, {"object": "/etc/myapp", "mode": "600"}],
    }
    made = rr.create_release("d-1", rev, spec)
    path = rr.release_dir("d-1")
    assert sorted(os.listdir(path)) == ["bin", "config", "index.html"]
    assert open(os.path.join(path, "config", "conf")).read() == "c"
    assert stat.S_IMODE(os.stat(os.path.join(path, "bin", "run.sh")).st_mode) == 0o755
    assert made["files_outside_release"] == ["/etc/myapp"]
    rr.switch("d-1")
    # The second release links run.sh although its source mode differs: the rule gives the same final mode.
    made = rr.create_release("d-2", revision(tmp_path / "r2", {"app/index.html": "v2", "app/bin/run.sh": "#!/bin/sh", "etc/conf": "c"}), spec)
    assert made["linked"] == 2 and made["copied"] == 1


def test_a_permission_above_current_applies_to_the_installed_files(rr, tmp_path):
    """``/opt/app`` over files installed at ``/opt/app/current``: the agent applies it to every file it matches."""
    rev = revision(tmp_path / "r1", {"app/index.html": "v1", "app/bin/run.sh": "#!/bin/sh"})
    spec = {"files": [{"source": "app", "destination": rr.current_link}],
            "permissions": [{"object": rr.root, "mode": "640", "type": ["file"]},
                            {"object": os.path.dirname(rr.root), "pattern": "index.html", "mode": "600"}]}  # direct only
    rr.create_release("d-1", rev, spec)
    path = rr.release_dir("d-1")
    assert [stat.S_IMODE(os.stat(os.path.join(path, name)).st_mode) for name in ("index.html", "bin/run.sh")] == [0o640, 0o640]
    assert stat.S_IMODE(os.stat(os.path.join(path, "bin")).st_mode) != 0o640  # type: file only


def test_shared_paths(rr, tmp_path):
    deploy(rr, tmp_path, "d-1", {"log/seed.txt": "seed", "index": "1"}, shared_paths=["log", "tmp/cache"])
    one = rr.release_dir("d-1")
    assert os.path.islink(os.path.join(one, "log")) and os.readlink(os.path.join(one, "log")) == "../../shared/log"
    assert open(os.path.join(rr.current_link, "log", "seed.txt")).read() == "seed", "seeded from the first release"
    assert os.path.isdir(os.path.join(rr.shared_dir, "tmp", "cache"))
    with open(os.path.join(rr.current_link, "log", "app.log"), "w") as handle:
        handle.write("written by the app")
    deploy(rr, tmp_path, "d-2", {"log/seed.txt": "other", "index": "2"}, shared_paths=["log", "tmp/cache"])
    assert open(os.path.join(rr.current_link, "log", "app.log")).read() == "written by the app"
    assert open(os.path.join(rr.current_link, "log", "seed.txt")).read() == "seed", "shared content is not overwritten"
    with pytest.raises(DeployError, match="relative path"):
        rr.create_release("d-3", revision(tmp_path / "r3", {"a": "1"}), shared_paths=["../escape"])


def test_switch_is_a_relative_link_and_reports_previous(rr, tmp_path):
    deploy(rr, tmp_path, "d-1", {"a": "1"})
    rr.create_release("d-2", revision(tmp_path / "r2", {"a": "2"}))
    result = rr.switch("d-2")
    assert result == {"changed": True, "current": rr.release_dir("d-2"), "previous": "d-1", "previous_dir": rr.release_dir("d-1")}
    assert os.readlink(rr.current_link) == "releases/d-2"
    assert rr.switch("d-2")["changed"] is False
    assert rr.switch("d-1", check_mode=True)["changed"] and rr.current_release() == "d-2"
    assert not [n for n in os.listdir(rr.root) if n.startswith(".current")]


def test_current_that_is_a_real_directory_is_an_error_not_deleted(rr, tmp_path):
    rr.create_release("d-1", revision(tmp_path / "r1", {"a": "1"}))
    os.makedirs(os.path.join(rr.current_link, "precious"))
    with pytest.raises(DeployError, match="real directory"):
        rr.switch("d-1")
    with pytest.raises(DeployError, match="real directory"):
        rr.create_release("d-2", revision(tmp_path / "r2", {"a": "2"}))
    assert os.path.isdir(os.path.join(rr.current_link, "precious"))


def test_unfinished_release_cannot_be_switched_and_is_rebuilt(rr, tmp_path):
    rev = revision(tmp_path / "r1", {"a": "1"})
    os.makedirs(os.path.join(rr.release_dir("d-1"), "junk"))
    open(os.path.join(rr.release_dir("d-1"), UNFINISHED_MARKER), "w").close()
    with pytest.raises(DeployError, match="unfinished"):
        rr.switch("d-1")
    made = rr.create_release("d-1", rev)
    assert made["changed"] and made["rebuilt"]
    assert sorted(os.listdir(rr.release_dir("d-1"))) == ["a"]


def test_mark_and_status(rr, tmp_path):
    deploy(rr, tmp_path, "d-1", {"a": "1"}, status=None)
    assert rr.mark("d-1", "good")["changed"] and not rr.mark("d-1", "good")["changed"]
    assert rr.mark("d-1", "bad", check_mode=True)["changed"] and rr.releases()[0]["status"] == "good"
    with pytest.raises(DeployError):
        rr.mark("d-1", "meh")
    with pytest.raises(DeployError):
        rr.mark("d-9", "good")


def test_rollback_target_is_previous_good_by_log_order_not_mtime(rr, tmp_path):
    deploy(rr, tmp_path, "d-b", {"a": "1"}, status="good")
    deploy(rr, tmp_path, "d-a", {"a": "2"}, status="bad")
    deploy(rr, tmp_path, "d-c", {"a": "3"}, status=None)
    os.utime(rr.release_dir("d-a"), (time.time() + 1000, time.time() + 1000))  # mtime lies
    assert rr.rollback_target() == "d-b"
    assert rr.previous_release() == "d-a"
    assert rr.rollback_target("d-a") == "d-a"
    with pytest.raises(DeployError):
        rr.rollback_target("d-zz")
    result = rr.rollback()
    assert result["target"] == "d-b" and rr.current_release() == "d-b"
    with pytest.raises(DeployError, match="no release before d-b is marked good"):
        rr.rollback_target()


PRUNE_TABLE = [
    # (statuses in creation order, current index, keep, expected survivors)
    (["good"] * 6, 5, 3, ["r3", "r4", "r5"]),
    (["good", "good", "bad", "bad", "bad"], 4, 2, ["r1", "r3", "r4"]),  # previous good r1 is kept
    (["good"] * 5, 1, 2, ["r0", "r1", "r3", "r4"]),  # current (an old one after rollback) and previous good kept
    (["good", "unfinished", "good", "unfinished", "good"], 4, 1, ["r1", "r2", "r3", "r4"]),  # unfinished: not counted nor removed
    (["good"] * 3, 2, 10, ["r0", "r1", "r2"]),
]


@pytest.fixture
def live_pid():
    """A running process: the creator of an unfinished release still being made."""
    proc = subprocess.Popen(["sleep", "60"])
    yield proc.pid
    proc.kill()
    proc.wait()


def unfinished(rr, rid, pid):
    """``releases/<rid>`` as a run with ``pid`` leaves it while making it."""
    rr._update(rid, status="unfinished", created=0)
    os.makedirs(rr.release_dir(rid))
    with open(os.path.join(rr.release_dir(rid), UNFINISHED_MARKER), "w") as handle:
        handle.write("%s %d\n" % (rid, pid))


@pytest.mark.parametrize("statuses,current,keep,survivors", PRUNE_TABLE)
def test_prune_rules(rr, tmp_path, statuses, current, keep, survivors, live_pid):
    for index, status in enumerate(statuses):
        rid = "r%d" % index
        rev = revision(tmp_path / rid, {"a": rid})
        if status == "unfinished":  # still being made by a live process: neither counted nor removed
            unfinished(rr, rid, live_pid)
            continue
        rr.create_release(rid, rev)
        rr.mark(rid, status)
    rr.switch("r%d" % current)
    planned = rr.prune(keep, check_mode=True)
    result = rr.prune(keep)
    assert sorted(os.listdir(rr.releases_dir)) == survivors
    assert sorted(result["removed"]) == sorted(planned["removed"])
    assert rr.current_release() == "r%d" % current


def test_unfinished_releases_of_finished_runs_are_pruned_by_the_next_release(rr, tmp_path, live_pid):
    # Issue 14: an unfinished release left by a crash survived eight later deployments.
    deploy(rr, tmp_path, "d-1", {"a": "1"})
    gone = subprocess.Popen(["true"])
    gone.wait()  # the crashed run: its pid is gone
    unfinished(rr, "d-crashed", gone.pid)
    unfinished(rr, "d-mine", os.getpid())  # an earlier attempt of this very process: over too
    unfinished(rr, "d-running", live_pid)  # another run still making its release: left alone
    made = deploy(rr, tmp_path, "d-2", {"a": "2"})
    assert made["pruned_unfinished"] == ["d-crashed", "d-mine"]
    assert sorted(os.listdir(rr.releases_dir)) == ["d-1", "d-2", "d-running"]
    assert rr.current_release() == "d-2"


def test_prune_failure_is_a_warning(rr, tmp_path, monkeypatch):
    for rid in ("r0", "r1", "r2"):
        deploy(rr, tmp_path, rid, {"a": rid})

    def boom(path, *a, **k):
        raise OSError(13, "Permission denied", path)

    monkeypatch.setattr(_releases, "remove_tree", boom)
    result = rr.prune(1)
    assert result["warnings"] and "r0" in result["warnings"][0]


def test_prune_needs_keep_at_least_one(rr):
    with pytest.raises(DeployError):
        rr.prune(0)


def test_corrupt_log_is_set_aside(rr, tmp_path):
    deploy(rr, tmp_path, "d-1", {"a": "1"})
    with open(rr.log_path, "w") as handle:
        handle.write("{not json")
    listing = rr.releases()
    assert listing[0]["id"] == "d-1" and listing[0]["finished"]
    assert os.path.exists(rr.log_path + ".corrupt")


CHILD = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, sys.argv[1])
    from ansible_collections.appspec.deploy.plugins.module_utils._releases import ReleaseRoot
    root, did, archive, kill_at = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
    count = [0]
    def checkpoint(name):
        count[0] += 1
        if count[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
    rr = ReleaseRoot(root)
    rr.create_release(did, archive, shared_paths=["log"], checkpoint=checkpoint)
    rr.switch(did, checkpoint=checkpoint)
    rr.mark(did, "good")
    """)


def assert_current_complete(rr):
    """`current` resolves to a finished release whose files are all there and consistent."""
    rid = rr.current_release()
    assert rid is not None
    path = os.path.realpath(rr.current_link)
    assert os.path.isdir(path) and not os.path.exists(os.path.join(path, UNFINISHED_MARKER))
    names = sorted(n for n in os.listdir(path) if n != "log")
    assert names == ["f%02d" % i for i in range(12)], names
    for name in names:
        assert open(os.path.join(path, name)).read() == rid + " " + name
    assert os.path.isdir(os.path.join(rr.current_link, "log"))


def test_sigkill_at_every_point_of_create_and_switch(tmp_path):
    """Kill the deploying process at each checkpoint (20+); current stays complete, next deploy works."""
    rr = ReleaseRoot(str(tmp_path / "app"))
    script = tmp_path / "child.py"
    script.write_text(CHILD)

    def rev(did):
        return revision(tmp_path / ("rev-" + did), {"f%02d" % i: "%s f%02d" % (did, i) for i in range(12)})

    rr.create_release("d-base", rev("d-base"), shared_paths=["log"])
    rr.switch("d-base")
    kill_at, killed = 1, 0
    while True:
        did = "d-k%03d" % kill_at
        proc = subprocess.run(
            [sys.executable, str(script), COLLECTIONS, rr.root, did, rev(did), str(kill_at)], stderr=subprocess.PIPE, universal_newlines=True, check=False
        )
        assert_current_complete(rr)
        if proc.returncode == 0:
            assert rr.current_release() == did
            break
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        killed += 1
        # The next deployment (a new id) succeeds, and so does retrying the killed one.
        nxt = "d-n%03d" % kill_at
        rr.create_release(nxt, rev(nxt), shared_paths=["log"])
        rr.switch(nxt)
        assert_current_complete(rr)
        rr.create_release(did, rev(did), shared_paths=["log"])
        rr.switch(did)
        assert_current_complete(rr)
        assert rr.current_release() == did
        kill_at += 1
    assert killed >= 20
    rr.prune(2)
    assert_current_complete(rr)
    assert not [n for n in os.listdir(rr.releases_dir) if n.startswith(".")], "crash leftovers are pruned"


def _reader(link, stop, errors, reads):
    count = 0
    missing = 0
    while not stop.is_set():
        try:
            with open(os.path.join(link, "VERSION")) as handle:
                if not handle.read().startswith("v"):
                    missing += 1
        except OSError:
            missing += 1
        count += 1
    errors.value = missing
    reads.value = count


def test_readers_never_see_a_missing_path_during_1000_switches(rr, tmp_path):
    rr.create_release("d-1", revision(tmp_path / "r1", {"VERSION": "v1"}))
    rr.create_release("d-2", revision(tmp_path / "r2", {"VERSION": "v2"}))
    rr.switch("d-1")
    stop = multiprocessing.Event()
    errors = multiprocessing.Value("i", -1)
    reads = multiprocessing.Value("i", 0)
    reader = multiprocessing.Process(target=_reader, args=(rr.current_link, stop, errors, reads))
    reader.start()
    try:
        time.sleep(0.2)
        for index in range(1000):
            rr.switch("d-2" if index % 2 == 0 else "d-1")
    finally:
        stop.set()
        reader.join(10)
    assert reads.value > 1000
    assert errors.value == 0


def test_deep_revision_is_released_shared_and_pruned_without_recursion(rr, tmp_path):
    """Issue 14: a 1,200-level tree failed with RecursionError (os.walk, copytree, rmtree before 3.12)."""
    deep = "/".join(["d"] * 1200)
    revisions = []
    try:
        for rid in ("r0", "r1", "r2"):
            rev = revision(tmp_path / ("rev-" + rid), {"index": rid})
            revisions.append(rev)
            for top in ("log", "app") if rid == "r0" else ():  # r0: copied to shared/log, then pruned
                here = os.path.join(rev, top)
                os.mkdir(here)
                for dummy in range(1200):  # not os.makedirs: it recurses on depth itself
                    here = os.path.join(here, "d")
                    os.mkdir(here)
                open(os.path.join(here, "f"), "w").close()
            rr.create_release(rid, rev, shared_paths=["log"])
            rr.switch(rid)
            rr.mark(rid, "good")
        assert os.path.isfile(os.path.join(rr.shared_dir, "log", deep, "f"))
        assert os.path.isfile(os.path.join(rr.release_dir("r0"), "app", deep, "f"))
        result = rr.prune(1)
        assert result["removed"] == ["r0"] and not result["warnings"]
        assert not os.path.lexists(rr.release_dir("r0"))
    finally:
        for path in revisions + [rr.root]:
            remove_tree(path)  # pytest's own clean-up of tmp_path would recurse on it


def test_a_release_that_does_not_fit_is_refused_before_anything_is_written(rr, tmp_path, monkeypatch):
    """Plain logic (tests/unit/plugins/modules/test_lifecycle_event.py fills a real small file system)."""
    deploy(rr, tmp_path, "d-1", {"same": "s" * 1000, "VERSION": "1"})
    before = sorted(os.listdir(rr.releases_dir)), open(rr.log_path).read()
    monkeypatch.setattr(_releases, "free_bytes", lambda path: 8000)
    monkeypatch.setattr(_releases, "block_size", lambda path: 1000)
    rev = revision(tmp_path / "rev-d-2", {"same": "s" * 1000, "VERSION": "2", "new": "n" * 5001})
    # "same" and "VERSION" have their size in d-1: linked, an entry each; "new": 6 blocks of data and its entry.
    with pytest.raises(DeployError, match=r"on host %s, Install needs about 9000 bytes for the release in %s but only 8000 bytes "
                                          r"are free: refused before anything was written, %s was not touched"
                                          % (socket.gethostname(), rr.root, rr.current_link)) as err:
        rr.create_release("d-2", rev)
    assert err.value.details["needed_bytes"] == 9000 and err.value.details["free_bytes"] == 8000
    assert (sorted(os.listdir(rr.releases_dir)), open(rr.log_path).read()) == before
    assert rr.current_release() == "d-1"
    monkeypatch.setattr(_releases, "free_bytes", lambda path: 9000)  # exactly enough
    made = rr.create_release("d-2", rev)
    assert (made["linked"], made["copied"]) == (1, 2)  # VERSION: same size, other bytes: copied after all


def test_many_small_files_are_counted_as_the_file_system_stores_them(tmp_path):
    """Fault 3 (issue 14): 4000 one-byte files passed the check by their sizes (4000 bytes), then filled the tmpfs
    (a 4 KiB page each) while written, and the error named about 4000 bytes needed. Here: a real 1 MiB tmpfs and
    300 one-byte files (1.2 MiB as stored): refused before anything is written, with the bytes they take."""
    from bundle_fixtures import small_filesystem

    rev = revision(tmp_path / "rev", dict(("many/f%03d" % i, "x") for i in range(300)))
    with small_filesystem(tmp_path / "srv", size="1m") as srv:
        rr = ReleaseRoot(srv)
        free = _releases.free_bytes(srv)
        block = os.statvfs(srv).f_frsize
        with pytest.raises(DeployError, match=r"Install needs about (\d+) bytes for the release in %s but only %d bytes are "
                                              r"free: refused before anything was written" % (srv, free)) as err:
            rr.create_release("d-1", rev)
        assert err.value.details["needed_bytes"] == 300 * block + 301 * block > free  # data + an entry each (and many/)
        assert not os.path.exists(rr.releases_dir) or os.listdir(rr.releases_dir) == []
        assert _releases.free_bytes(srv) == free


def test_a_failure_while_making_a_release_removes_it(rr, tmp_path):
    """Whatever fails half way (an exception at a checkpoint), no releases/<id> is left holding its unfinished
    marker, no temp dir either, current stays, and the same id can be made again."""
    deploy(rr, tmp_path, "d-1", {"a": "1"})
    rev = revision(tmp_path / "rev-d-2", {"a": "2", "b": "2", "c": "2"})

    seen = []

    def fail_at_second_file(name):
        seen.append(name)
        if seen.count("file") == 2:
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        rr.create_release("d-2", rev, checkpoint=fail_at_second_file)
    assert sorted(os.listdir(rr.releases_dir)) == ["d-1"] and rr.current_release() == "d-1"
    entry = [e for e in json.load(open(rr.log_path))["releases"] if e["id"] == "d-2"][0]
    assert entry["status"] == "unfinished" and entry["failed_at"]
    rr.create_release("d-2", rev)
    assert rr.is_finished("d-2")
