"""AppSpec permissions: matching rules of the agent, validation, application."""

from __future__ import annotations

import os
import pwd
import stat
import subprocess

import pytest

from ansible_collections.appspec.deploy.plugins.module_utils import _permissions as P
from ansible_collections.appspec.deploy.plugins.module_utils._errors import DeployError


def rule(**entry):
    entry.setdefault("object", "/app")
    rules, errors = P.parse_rules([entry])
    assert not errors, errors
    return rules[0]


MATCH_TABLE = [
    # (rule fields, path, kind, expected)
    ({}, "/app", "directory", False),  # ** never matches the object itself
    ({}, "/app/a", "file", True),
    ({}, "/app/sub/deep/a", "file", True),
    ({}, "/apple/a", "file", False),
    ({"pattern": "*.py"}, "/app/a.py", "file", True),
    ({"pattern": "*.py"}, "/app/sub/a.py", "file", False),  # direct children only
    ({"pattern": "*"}, "/app/.hidden", "file", True),  # * matches dot files
    ({"pattern": "a?c"}, "/app/abc", "file", False),  # ? is literal
    ({"pattern": "a?c"}, "/app/a?c", "file", True),
    ({"pattern": "[ab]"}, "/app/a", "file", False),  # [ is literal
    ({"except": ["*.log"]}, "/app/a.log", "file", False),
    ({"except": ["*.log"]}, "/app/sub/a.log", "file", True),  # except: direct children only
    ({"except": ["sub"]}, "/app/sub", "directory", False),
    ({"except": ["sub"]}, "/app/sub/x", "file", True),
    ({"pattern": "*.py", "except": ["t*"]}, "/app/test.py", "file", False),
    ({"type": ["directory"]}, "/app/a", "file", False),
    ({"type": ["directory"]}, "/app/d", "directory", True),
    ({"type": ["file"]}, "/app/d", "directory", False),
    ({"type": ["file"]}, "/app/l", "symlink", True),  # a link counts as a file
    ({"object": "/"}, "/etc", "directory", True),
]


@pytest.mark.parametrize("fields,path,kind,expected", MATCH_TABLE)
def test_matches(fields, path, kind, expected):
    assert P.matches(rule(**fields), path, kind) is expected


@pytest.mark.parametrize(
    "value,expected",
    [("644", 0o644), ("0644", 0o644), ("4755", 0o4755), ("7", 0o7), (755, 0o755), (420, 0o420)],
)
def test_parse_mode(value, expected):
    assert P.parse_mode(value) == expected


@pytest.mark.parametrize("value", ["12345", "12a", "", "0x1", 493])
def test_parse_mode_rejects(value):
    with pytest.raises(DeployError):
        P.parse_mode(value)


@pytest.mark.parametrize(
    "text,expected",
    [
        ("u:bob:rw", (False, "user", "bob", "rw-")),
        ("user:bob:7", (False, "user", "bob", "rwx")),
        ("bob:r", (False, "user", "bob", "r--")),
        ("g:staff:5", (False, "group", "staff", "r-x")),
        ("d:u:bob:rwx", (True, "user", "bob", "rwx")),
        ("default:group:staff:r-x", (True, "group", "staff", "r-x")),
        ("m:rx", (False, "mask", "", "r-x")),
    ],
)
def test_parse_ace(text, expected):
    assert P.parse_ace(text) == expected


@pytest.mark.parametrize(
    "text,message",
    [
        ("u::7", "base acl"),
        ("g::rw", "base acl"),
        ("o:7", "base acl"),
        ("u:bob:rwz", "invalid character"),
        ("x:y:z:w:v", "invalid acl"),
        ("q:bob:r", "invalid acl"),
    ],
)
def test_parse_ace_rejects(text, message):
    with pytest.raises(DeployError, match=message):
        P.parse_ace(text)


def test_parse_rules_reports_everything_at_once():
    rules, errors = P.parse_rules(
        [
            {"object": "/a", "owner": "no-such-user-xyz"},
            {"object": "/b", "group": "no-such-group-xyz"},
            {"object": "relative"},
            {"object": "/c", "type": ["socket"]},
            {"object": "/d", "mode": "98"},
            {"object": "/e", "acls": ["u::7"]},
            {"object": "/f", "pattern": "a/b"},
            {"object": ""},
        ]
    )
    text = "\n".join(errors)
    for fragment in [
        "unknown owner 'no-such-user-xyz'",
        "unknown group 'no-such-group-xyz'",
        "absolute",
        "socket",
        "invalid character",
        "base acl",
        "may not contain",
        "no object",
    ]:
        assert fragment in text
    assert len(errors) == 8


def test_plan_overlap_is_an_error():
    rules, dummy = P.parse_rules([{"object": "/app", "mode": "644"}, {"object": "/app", "pattern": "*.py", "mode": "755"}])
    installed = [("/app", "directory"), ("/app/a.py", "file"), ("/app/b.txt", "file")]
    assignments, errors, dummy = P.plan_permissions(rules, installed)
    assert any("/app/a.py" in e and "more than once" in e for e in errors)
    assert assignments["/app/b.txt"].index == 0


def test_plan_object_file_installed_now():
    rules, dummy = P.parse_rules([{"object": "/app/a.py", "mode": "700"}, {"object": "/app/b.py", "pattern": "*.py"}, {"object": "/app/c.py", "except": ["x"]}])
    installed = [("/app/a.py", "file"), ("/app/b.py", "file"), ("/app/c.py", "file")]
    assignments, errors, dummy = P.plan_permissions(rules, installed, lambda p: False)
    assert list(assignments) == ["/app/a.py"]
    assert len(errors) == 2 and "pattern" in errors[0] and "except" in errors[1]


def test_plan_touches_only_installed_paths_and_warns_on_nothing():
    rules, dummy = P.parse_rules([{"object": "/srv", "mode": "600"}, {"object": "/nowhere", "mode": "600"}])
    assignments, errors, warnings = P.plan_permissions(rules, [("/srv/x", "file")], lambda p: p == "/srv")
    assert list(assignments) == ["/srv/x"] and not errors
    assert any("/nowhere" in w for w in warnings)


def test_apply_mode_owner_idempotent(tmp_path):
    path = tmp_path / "f"
    path.write_text("x")
    os.chmod(path, 0o644)
    r = rule(object=str(tmp_path), mode="4750", owner="nobody", group="root" if os.geteuid() == 0 else None)
    warnings = []
    changes = P.apply_rule(str(path), "file", r, warnings)
    st = os.stat(path)
    assert stat.S_IMODE(st.st_mode) == 0o4750, "setuid survives: chown comes before chmod"
    assert st.st_uid == pwd.getpwnam("nobody").pw_uid
    assert "mode" in changes and "owner" in changes
    assert P.apply_rule(str(path), "file", r, warnings) == {}


def test_apply_symlink_gets_owner_only(tmp_path):
    target = tmp_path / "target"
    target.write_text("x")
    os.chmod(target, 0o644)
    link = tmp_path / "link"
    os.symlink(str(target), str(link))
    r = rule(object=str(tmp_path), mode="600", owner="nobody")
    P.apply_rule(str(link), "symlink", r, [])
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o644, "never chmod through a link"
    assert os.lstat(link).st_uid == pwd.getpwnam("nobody").pw_uid
    assert os.stat(target).st_uid == os.getuid()


def test_apply_acls_with_setfacl(tmp_path):
    directory = tmp_path / "d"
    directory.mkdir()
    r = rule(object=str(tmp_path), mode="750", acls=["u:nobody:rx", "d:u:nobody:rwx"])
    changes = P.apply_rule(str(directory), "directory", r, [])
    assert "acls" in changes
    out = subprocess.run(["getfacl", "--omit-header", "--absolute-names", str(directory)], stdout=subprocess.PIPE, universal_newlines=True, check=False).stdout
    assert "user:nobody:r-x" in out and "default:user:nobody:rwx" in out
    assert P.apply_rule(str(directory), "directory", r, []) == {}, "second run: nothing to change"
    # On a file, default entries are left out.
    f = tmp_path / "f"
    f.write_text("x")
    changes = P.apply_rule(str(f), "file", r, [])
    out = subprocess.run(["getfacl", "--omit-header", str(f)], stdout=subprocess.PIPE, universal_newlines=True, check=False).stdout
    assert "user:nobody:r-x" in out and "default" not in out


def test_context_is_skipped_with_a_warning_without_selinux(tmp_path):
    if P.selinux_enabled():
        pytest.skip("SELinux is enabled here")
    f = tmp_path / "f"
    f.write_text("x")
    r = rule(object=str(tmp_path), context={"type": "httpd_sys_content_t", "name": None, "range": None})
    assert P.pending_changes(str(f), "file", r) == {}
    warnings = []
    P.apply_rule(str(f), "file", r, warnings)
    assert warnings and "SELinux is not enabled" in warnings[0]


@pytest.mark.parametrize("obj, destination, expected", [
    ("/opt/app/current", "/opt/app/current", True),
    ("/opt/app/current/bin", "/opt/app/current", True),  # below
    ("/opt/app", "/opt/app/current/", True),  # above
    ("/", "/opt/app", True),
    ("/srv", "/", True),
    ("/opt/app/", "/opt/app", True),
    ("/opt/ap", "/opt/app", False),  # a sibling sharing a prefix
    ("/opt/app-old", "/opt/app", False),
    ("/etc", "/opt/app", False),
])
def test_a_rule_reaches_a_destination_at_below_or_above_it(obj, destination, expected):
    assert P.reaches(obj, destination) is expected
