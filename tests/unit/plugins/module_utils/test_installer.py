"""Install event: files, file_exists_behavior, plan-before-act, cleanup list, permissions, crashes."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import textwrap

import pytest

from bundle_fixtures import small_filesystem

from ansible_collections.appspec.deploy.plugins.module_utils import _installer as I
from ansible_collections.appspec.deploy.plugins.module_utils._archive import remove_tree
from ansible_collections.appspec.deploy.plugins.module_utils._errors import DeployError
from ansible_collections.appspec.deploy.plugins.module_utils._layout import DeploymentRoot

GID = "g1"


def make_revision(path, files):
    """files: {relpath: content | ("link", target) | ("mode", content, mode)}"""
    for rel, content in files.items():
        full = os.path.join(str(path), rel)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        if isinstance(content, tuple) and content[0] == "link":
            os.symlink(content[1], full)
        elif isinstance(content, tuple) and content[0] == "mode":
            with open(full, "w") as handle:
                handle.write(content[1])
            os.chmod(full, content[2])
        elif content is None:
            os.makedirs(full, exist_ok=True)
        else:
            with open(full, "w") as handle:
                handle.write(content)
    return str(path)


@pytest.fixture
def env(tmp_path):
    class Env:
        root = DeploymentRoot(str(tmp_path / "root"))
        dest = str(tmp_path / "dest")
        base = tmp_path

        def rev(self, name, files):
            return make_revision(tmp_path / name, files)

        def install(self, archive, spec, behavior="DISALLOW", **kw):
            return I.install_revision(archive, spec, root=self.root, group_id=GID, file_exists_behavior=behavior, **kw)

        def cleanup(self):
            return I.read_cleanup(self.root.cleanup_file(GID))

    return Env()


def spec_for(dest, source="app", **extra):
    return dict({"files": [{"source": source, "destination": dest}]}, **extra)


def test_directory_source_copies_contents_and_keeps_modes_and_links(env):
    rev = env.rev(
        "r1",
        {"app/a.txt": "A", "app/bin/run": ("mode", "#!/bin/sh\n", 0o750), "app/link": ("link", "a.txt"), "app/dirlink": ("link", "bin"), "app/empty": None},
    )
    result = env.install(rev, spec_for(env.dest + "/x"))
    assert result["changed"]
    assert open(env.dest + "/x/a.txt").read() == "A"
    assert stat.S_IMODE(os.stat(env.dest + "/x/bin/run").st_mode) == 0o750
    assert os.readlink(env.dest + "/x/link") == "a.txt"
    assert os.path.islink(env.dest + "/x/dirlink") and os.readlink(env.dest + "/x/dirlink") == "bin", "directory links stay links"
    assert os.path.isdir(env.dest + "/x/empty")
    assert env.cleanup() == [
        env.dest,
        env.dest + "/x",
        env.dest + "/x/bin",
        env.dest + "/x/dirlink",
        env.dest + "/x/empty",
        env.dest + "/x/a.txt",
        env.dest + "/x/link",
        env.dest + "/x/bin/run",
    ]
    assert open(env.root.cleanup_file(GID)).read().endswith("\n")


def test_file_source_lands_inside_destination(env):
    rev = env.rev("r1", {"conf/app.ini": "x"})
    env.install(rev, spec_for(env.dest + "/etc", source="conf/app.ini"))
    assert open(env.dest + "/etc/app.ini").read() == "x"


def test_slash_source_is_the_whole_revision(env):
    rev = env.rev("r1", {"appspec.yml": "version: 0.0", "s/x.sh": "y"})
    env.install(rev, spec_for(env.dest, source="/"))
    assert sorted(os.listdir(env.dest)) == ["appspec.yml", "s"]


def test_idempotent_second_run_reports_no_change(env):
    rev = env.rev("r1", {"app/a": "1", "app/b/c": "2", "app/l": ("link", "a")})
    assert env.install(rev, spec_for(env.dest))["changed"]
    again = env.install(rev, spec_for(env.dest))
    assert again["changed"] is False and again["plan"]["unchanged"] == 5


def test_check_mode_touches_nothing_and_predicts(env):
    rev = env.rev("r1", {"app/a": "1"})
    result = env.install(rev, spec_for(env.dest), check_mode=True)
    assert result["changed"] and result["plan"]["create"] == [env.dest + "/a"] and result["plan"]["mkdir"] == [env.dest]
    assert not os.path.exists(env.dest) and not os.path.exists(env.root.cleanup_file(GID))
    assert env.dest + "/a" in result["diff"]["after"]


@pytest.mark.parametrize(
    "behavior,appspec_value,expect",
    [
        ("DISALLOW", None, "error"),
        ("OVERWRITE", None, "overwrite"),
        ("RETAIN", None, "keep"),
        ("DISALLOW", "OVERWRITE", "overwrite"),  # the AppSpec wins
        ("OVERWRITE", "RETAIN", "keep"),
        ("RETAIN", "DISALLOW", "error"),
        (None, None, "error"),  # default DISALLOW
    ],
)
def test_file_exists_behavior(env, behavior, appspec_value, expect):
    os.makedirs(env.dest)
    with open(env.dest + "/a", "w") as handle:
        handle.write("foreign")
    rev = env.rev("r1", {"app/a": "ours", "app/b": "new"})
    spec = spec_for(env.dest, file_exists_behavior=appspec_value)
    if expect == "error":
        with pytest.raises(I.InstallPlanError, match="already exists at .*/a"):
            env.install(rev, spec, behavior)
        assert not os.path.exists(env.dest + "/b"), "nothing touched"
        return
    result = env.install(rev, spec, behavior)
    content = open(env.dest + "/a").read()
    if expect == "overwrite":
        assert content == "ours" and result["plan"]["overwrite"] == [env.dest + "/a"]
        assert env.dest + "/a" in env.cleanup(), "overwritten files are recorded (agent)"
    else:
        assert content == "foreign" and result["plan"]["keep"] == [env.dest + "/a"]
        assert env.dest + "/a" not in env.cleanup(), "retained files are not recorded"
    assert open(env.dest + "/b").read() == "new"


def test_all_problems_reported_together_before_touching_anything(env):
    os.makedirs(env.dest + "/app")
    for name in ("a", "b"):
        with open(env.dest + "/app/" + name, "w") as handle:
            handle.write("foreign")
    rev1 = env.rev("r0", {"old/keep": "x"})
    env.install(rev1, spec_for(env.dest + "/old", source="old"))
    rev = env.rev("r1", {"app/a": "1", "app/b": "2", "app/c": "3"})
    spec = spec_for(
        env.dest + "/app",
        permissions=[
            {"object": env.dest + "/app", "owner": "no-such-user-q"},
            {"object": env.dest + "/app", "pattern": "c", "group": "no-such-group-q"},
        ],
    )
    with pytest.raises(I.InstallPlanError) as err:
        env.install(rev, spec)
    errors = err.value.details["errors"]
    assert len([e for e in errors if "already exists" in e]) == 2
    assert err.value.details["plan"]["conflict"] == [env.dest + "/app/a", env.dest + "/app/b"]
    assert err.value.details["plan"]["create"] == [env.dest + "/app/c"]
    assert any("no-such-user-q" in e for e in errors) and any("no-such-group-q" in e for e in errors)
    assert any("more than once" in e for e in errors)
    assert not os.path.exists(env.dest + "/app/c")
    assert os.path.exists(env.dest + "/old/keep"), "the previous install is not deleted when the plan fails"
    assert env.cleanup() == [env.dest + "/old", env.dest + "/old/keep"]


@pytest.mark.parametrize(
    "files,message",
    [
        ([{"source": "nope", "destination": "/x"}], "does not exist"),
        ([{"source": "../etc", "destination": "/x"}], "leaves the revision"),
        ([{"source": "app", "destination": "relative"}], "absolute"),
        ([{"source": "app/a", "destination": "/d"}, {"source": "other/a", "destination": "/d"}], "two sources"),
        ([{"source": "app"}], "needs a source and a destination"),
    ],
)
def test_invalid_files_entries(env, files, message):
    rev = env.rev("r1", {"app/a": "1", "other/a": "2"})
    files = [dict(f, destination=(env.dest + f["destination"]) if f.get("destination", "").startswith("/") else f.get("destination")) for f in files]
    files = [{k: v for k, v in f.items() if v is not None} for f in files]
    with pytest.raises(I.InstallPlanError, match=message):
        env.install(rev, {"files": files})


def test_cleanup_removes_what_new_revision_no_longer_provides(env):
    rev1 = env.rev("r1", {"app/a": "1", "app/gone": "x", "app/olddir/f": "y", "app/shared/s": "z"})
    env.install(rev1, spec_for(env.dest))
    with open(env.dest + "/shared/foreign", "w") as handle:
        handle.write("not ours")
    rev2 = env.rev("r2", {"app/a": "2", "app/new": "n"})
    result = env.install(rev2, spec_for(env.dest))
    assert sorted(os.listdir(env.dest)) == ["a", "new", "shared"]
    assert os.listdir(env.dest + "/shared") == ["foreign"], "non-empty dirs holding foreign files stay"
    assert open(env.dest + "/a").read() == "2" and result["plan"]["update"] == [env.dest + "/a"]
    assert set(result["plan"]["remove"]) == {env.dest + "/gone", env.dest + "/olddir", env.dest + "/olddir/f", env.dest + "/shared", env.dest + "/shared/s"}
    assert env.cleanup() == [env.dest, env.dest + "/a", env.dest + "/new"]
    assert any("other origin" in w for w in result["warnings"])


def test_files_of_the_previous_install_never_conflict(env):
    rev = env.rev("r1", {"app/a": "1"})
    env.install(rev, spec_for(env.dest))
    rev2 = env.rev("r2", {"app/a": "2"})
    env.install(rev2, spec_for(env.dest), "DISALLOW")
    assert open(env.dest + "/a").read() == "2"


def test_type_changes_between_installs(env):
    env.install(env.rev("r1", {"app/x/inner": "1", "app/y": "file"}), spec_for(env.dest))
    env.install(env.rev("r2", {"app/x": "now a file", "app/y/inner": "now a dir"}), spec_for(env.dest))
    assert open(env.dest + "/x").read() == "now a file"
    assert open(env.dest + "/y/inner").read() == "now a dir"
    env.install(env.rev("r3", {"app/x": ("link", "y")}), spec_for(env.dest))
    assert os.readlink(env.dest + "/x") == "y" and not os.path.exists(env.dest + "/y")


def test_previous_dir_holding_foreign_files_cannot_become_a_file(env):
    env.install(env.rev("r1", {"app/x/inner": "1"}), spec_for(env.dest))
    with open(env.dest + "/x/foreign", "w") as handle:
        handle.write("f")
    with pytest.raises(I.InstallPlanError, match="cannot become a file"):
        env.install(env.rev("r2", {"app/x": "file"}), spec_for(env.dest))
    assert os.path.exists(env.dest + "/x/inner")


def test_overwrite_does_not_replace_foreign_directories(env):
    os.makedirs(env.dest + "/a")
    with pytest.raises(I.InstallPlanError, match="OVERWRITE does not replace directories"):
        env.install(env.rev("r1", {"app/a": "1"}), spec_for(env.dest), "OVERWRITE")


def test_mkdir_over_foreign_file_is_an_error(env):
    os.makedirs(env.dest)
    with open(env.dest + "/sub", "w") as handle:
        handle.write("f")
    with pytest.raises(I.InstallPlanError, match="not a directory"):
        env.install(env.rev("r1", {"app/sub/a": "1"}), spec_for(env.dest), "OVERWRITE")


def test_preexisting_directory_is_not_recorded_and_stays(env):
    os.makedirs(env.dest)
    env.install(env.rev("r1", {"app/a": "1"}), spec_for(env.dest))
    assert env.cleanup() == [env.dest + "/a"]
    env.install(env.rev("r2", {"other/b": "1"}), spec_for(env.base.as_posix() + "/elsewhere", source="other"))
    assert os.path.isdir(env.dest) and os.listdir(env.dest) == []


def test_cleanup_list_reading_is_tolerant(env, tmp_path):
    path = tmp_path / "c"
    path.write_text("/a\n/b\n/a\n/tor")
    assert I.read_cleanup(str(path)) == ["/a", "/b"]
    path.write_text("")
    assert I.read_cleanup(str(path)) == []
    assert I.read_cleanup(str(tmp_path / "missing")) == []


def test_torn_cleanup_file_from_previous_install(env):
    env.install(env.rev("r1", {"app/a": "1", "app/b": "2"}), spec_for(env.dest))
    path = env.root.cleanup_file(GID)
    with open(path, "a") as handle:
        handle.write(env.dest + "/tor")  # a torn last line: ignored
    env.install(env.rev("r2", {"app/a": "1"}), spec_for(env.dest))
    assert not os.path.exists(env.dest + "/b")


def test_modified_mode_of_our_file_is_repaired(env):
    rev = env.rev("r1", {"app/a": ("mode", "1", 0o640)})
    env.install(rev, spec_for(env.dest))
    os.chmod(env.dest + "/a", 0o777)
    result = env.install(rev, spec_for(env.dest))
    assert result["changed"] and stat.S_IMODE(os.stat(env.dest + "/a").st_mode) == 0o640


def test_permissions_apply_only_to_installed_paths(env):
    os.makedirs(env.dest)
    with open(env.dest + "/foreign.py", "w") as handle:
        handle.write("f")
    os.chmod(env.dest + "/foreign.py", 0o644)
    rev = env.rev("r1", {"app/a.py": ("mode", "1", 0o644), "app/sub/b.py": ("mode", "2", 0o644), "app/c.txt": "3"})
    perms = [
        {"object": env.dest, "pattern": "*.py", "mode": "750", "type": ["file"]},
        {"object": env.dest + "/sub", "mode": "700", "type": ["file"]},
        {"object": env.dest, "pattern": "sub", "mode": "711", "type": ["directory"]},
    ]
    result = env.install(rev, spec_for(env.dest, permissions=perms))

    def mode(rel):
        return stat.S_IMODE(os.stat(env.dest + rel).st_mode)

    assert mode("/a.py") == 0o750 and mode("/sub/b.py") == 0o700 and mode("/sub") == 0o711
    assert mode("/c.txt") == 0o644 and mode("/foreign.py") == 0o644, "foreign files are never touched"
    assert stat.S_IMODE(os.stat(env.dest).st_mode) == 0o755, "the object itself is not touched"
    assert {p["path"] for p in result["plan"]["permissions"]} == {env.dest + "/a.py", env.dest + "/sub/b.py", env.dest + "/sub"}
    again = env.install(rev, spec_for(env.dest, permissions=perms))
    assert again["changed"] is False, "modes set by permissions are not 'drift'"


def test_permission_on_a_single_file_object(env):
    rev = env.rev("r1", {"conf/app.ini": "x"})
    perms = [{"object": env.dest + "/app.ini", "mode": "600", "owner": "nobody"}]
    env.install(rev, spec_for(env.dest, source="conf/app.ini", permissions=perms))
    st = os.stat(env.dest + "/app.ini")
    assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid != os.getuid()


def test_permission_with_pattern_on_a_file_object_is_an_error(env):
    rev = env.rev("r1", {"conf/app.ini": "x"})
    with pytest.raises(I.InstallPlanError, match="cannot apply to a file"):
        env.install(rev, spec_for(env.dest, source="conf/app.ini", permissions=[{"object": env.dest + "/app.ini", "pattern": "*.ini"}]))


def test_retained_file_gets_no_permissions(env):
    os.makedirs(env.dest)
    with open(env.dest + "/a", "w") as handle:
        handle.write("foreign")
    os.chmod(env.dest + "/a", 0o644)
    env.install(env.rev("r1", {"app/a": "ours"}), spec_for(env.dest, permissions=[{"object": env.dest, "mode": "600"}]), "RETAIN")
    assert stat.S_IMODE(os.stat(env.dest + "/a").st_mode) == 0o644


def test_invalid_file_exists_behavior(env):
    with pytest.raises(Exception, match="invalid file_exists_behavior"):
        env.install(env.rev("r1", {"app/a": "1"}), spec_for(env.dest), "CLOBBER")


CHILD = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, sys.argv[1])
    from ansible_collections.appspec.deploy.plugins.module_utils import _installer as I
    from ansible_collections.appspec.deploy.plugins.module_utils._layout import DeploymentRoot
    archive, dest, root, kill_at = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
    count = [0]
    def checkpoint(name):
        count[0] += 1
        if count[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
    I.install_revision(archive, {"files": [{"source": "app", "destination": dest}]}, root=DeploymentRoot(root),
                       group_id="g1", checkpoint=checkpoint)
    print("steps", count[0])
    """)


def test_install_crash_at_every_step_leaves_a_recoverable_state(env):
    """SIGKILL the installer at every checkpoint; the next install must succeed and be exact."""
    collections = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", ".cache", "collections")
    script = env.base / "child.py"
    script.write_text(CHILD)
    rev1 = env.rev("r1", {"app/%02d/f" % i: "one" for i in range(6)})
    rev2 = env.rev("r2", {"app/%02d/g" % i: "two" for i in range(3, 9)})
    final = {"%02d" % i for i in range(3, 9)}
    kill_at = 1
    killed = 0
    while True:
        env.install(rev1, spec_for(env.dest))
        proc = subprocess.run(
            [sys.executable, str(script), collections, rev2, env.dest, env.root.root_dir, str(kill_at)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            universal_newlines=True,
            check=False,
        )
        if proc.returncode == 0:
            break
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        killed += 1
        env.install(rev2, spec_for(env.dest))  # the next deployment succeeds...
        assert set(os.listdir(env.dest)) == final, "...and leaves exactly the new revision (kill at %d)" % kill_at
        assert all(os.listdir(os.path.join(env.dest, d)) == ["g"] for d in final)
        assert sorted(env.cleanup()) == sorted([env.dest] + [env.dest + "/" + d for d in final] + [env.dest + "/%s/g" % d for d in final])
        kill_at += 1
    assert killed >= 20


def test_deep_tree_is_installed_and_removed_without_recursion(env):
    """Issue 14: Install of a 1,200-level tree failed with RecursionError (os.walk before Python 3.12)."""
    deep = os.path.join(*["d"] * 1200)
    rev = env.rev("r1", {"app/keep": "k"})
    here = os.path.join(rev, "app")
    for dummy in range(1200):  # not os.makedirs: it recurses on depth itself
        here = os.path.join(here, "d")
        os.mkdir(here)
    open(os.path.join(here, "f"), "w").close()
    try:
        env.install(rev, spec_for(env.dest))
        assert os.path.isfile(os.path.join(env.dest, deep, "f"))
        env.install(env.rev("r2", {"app/keep": "k"}), spec_for(env.dest))
        assert os.listdir(env.dest) == ["keep"]
    finally:
        remove_tree(rev)  # pytest's own clean-up of tmp_path would recurse on it
        remove_tree(env.dest)


# --- a full disk (issue 14) ---------------------------------------------------------------------------


def test_files_that_do_not_fit_are_refused_before_any_change(env, monkeypatch):
    """Plain logic: the sizes of the files to write against the free space of their file system."""
    first = env.rev("r1", {"app/a": "1", "app/b": "x" * 5000})
    env.install(first, spec_for(env.dest))
    second = env.rev("r2", {"app/a": "2", "app/b": "y" * 5000, "app/c": "z" * 20000})
    monkeypatch.setattr(I, "free_bytes", lambda path: 10000)  # the new bytes: 20001 - 1 (a replaces a)
    with pytest.raises(DeployError, match=r"on host %s, Install needs about 20000 bytes for the files under %s but only "
                                          r"10000 bytes are free: nothing was changed" % (socket.gethostname(), env.dest)):
        env.install(second, spec_for(env.dest))
    assert sorted(os.listdir(env.dest)) == ["a", "b"] and open(os.path.join(env.dest, "a")).read() == "1"
    monkeypatch.setattr(I, "free_bytes", lambda path: 20000)
    env.install(second, spec_for(env.dest))
    assert sorted(os.listdir(env.dest)) == ["a", "b", "c"]


def test_a_destination_that_fills_mid_install_is_named(env, monkeypatch):
    with small_filesystem(env.dest):
        env.install(env.rev("r1", {"app/a": "1"}), spec_for(env.dest))
        big = env.rev("r2", {"app/a": "2", "app/big1": "x" * (1536 * 1024), "app/big2": "y" * (1536 * 1024)})
        with pytest.raises(DeployError, match=r"on host %s, Install needs about [0-9]+ bytes for the files under %s but only "
                                              r"[0-9]+ bytes are free: nothing was changed" % (socket.gethostname(), env.dest)):
            env.install(big, spec_for(env.dest))
        assert sorted(os.listdir(env.dest)) == ["a"]
        # The space taken by someone else after the check: the copy fails half way, with the path and the bytes.
        monkeypatch.setattr(I, "free_bytes", lambda path: 1 << 40)
        with pytest.raises(DeployError) as err:
            env.install(big, spec_for(env.dest))
        message = str(err.value)
        assert message.startswith("on host %s, Install (copying the revision's files) could not write in %s: no space left "
                                  "on the file system (ENOSPC): " % (socket.gethostname(), env.dest)), message
        assert "listed in %s for the next deployment" % env.root.cleanup_file(GID) in message and "Errno" not in message
        assert not [n for n in os.listdir(env.dest) if n.startswith(".appspec-tmp")]  # no temp file left
        assert set(os.path.join(env.dest, n) for n in os.listdir(env.dest)) <= set(env.cleanup())  # every file is ours
