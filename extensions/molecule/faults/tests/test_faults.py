"""What the fleet faults left (faults.py recorded every run's output and rc and snapshots of every host).

Snapshot of a host: ``webapp`` / ``other`` (its ``current`` link, the release it resolves to, the release
log), ``records`` (deployment-instructions/), ``locks`` (locks/*.lock), ``trees`` (checksums of whole trees).
"""
import json
import os
import re
from pathlib import Path

import pytest

testinfra_hosts = ["ansible://webservers"]
FAULTS = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "faults"
WEBAPP_GID = "ccfdebf6-7906-511f-9347-105ddd88ec7f"
WEB = ["web1", "web2", "web3", "web4"]
VERSIONS = {"1.0.0", "2.0.0", "3.0.0"}


def load(name):
    return json.loads((FAULTS / (name + ".json")).read_text())


def release_id(host_state):
    return os.path.basename(host_state["webapp"]["target"])


def assert_complete(name, host_state, version=None):
    """`current` resolves to a finished release of webapp that the release log knows as finished."""
    current = host_state["webapp"]
    assert current["link"] and current["link"].startswith("releases/d-"), (name, current)
    assert current["is_dir"] and not current["unfinished"], (name, current)
    assert {"VERSION", "server.py"} <= set(current["files"]), (name, current["files"])
    assert current["version"] in VERSIONS, (name, current)
    if version:
        assert current["version"] == version, (name, current["version"], version)
    entries = {entry["id"]: entry for entry in current["release_log"]["releases"]}
    assert entries[release_id(host_state)]["status"] in ("complete", "good"), (name, entries[release_id(host_state)])


def assert_records_agree(name, host_state):
    """The agent's records and the release log agree with `current`; no lock is left."""
    records = host_state["records"]
    current = release_id(host_state)
    for record in ("_last_successful_install", "_last_good_deployment"):
        path = (records.get(WEBAPP_GID + record) or "").strip()
        assert path == "/opt/codedeploy-agent/deployment-root/%s/%s" % (WEBAPP_GID, current), (name, record, path, current)
    entries = {entry["id"]: entry for entry in host_state["webapp"]["release_log"]["releases"]}
    assert entries[current]["status"] == "good", (name, entries[current])
    assert not host_state["locks"], (name, host_state["locks"])


def lock_of(host_state):
    return host_state["locks"].get(WEBAPP_GID + ".lock")


# ------------------------------------------------------------------------------------------------ 1. host stopped

STOPPED = load("host_stopped")


def test_host_stopped_fails_the_deployment_as_the_minimum_of_healthy_hosts_says():
    first = STOPPED["first"]
    out = first["output"]
    assert STOPPED["stop_rc"] == 0
    assert first["rc"] != 0, out[-3000:]
    # OneAtATime: only the last host may fail; web3 (unreachable) failing stops the deployment before web4.
    assert re.search(r"fatal: \[web3\]: UNREACHABLE!", out)
    assert re.search(r"End the deployment play for the hosts not deployed\] \*+\n\nPLAY \[Decide the outcome", out), out[-3000:]
    # web4 never ran a lifecycle task (the outcome and report plays still include the role for it, skipped).
    tasks = out.split("TASK [")
    assert not [task for task in tasks if task.startswith("appspec.deploy.lifecycle : ApplicationStop to ValidateService")
                and "[web4]" in task], out[-3000:]


def test_host_stopped_run_reports_its_verdict():
    """The stopped host is reported unreachable and not rolled back (a rollback attempt ended the run before the report)."""
    out = STOPPED["first"]["output"]
    assert "Stopped: by the minimum of healthy hosts: " in out, out[-3000:]
    assert "Not deployed: web4" in out, out[-3000:]
    assert "Unreachable, so not rolled back: web3" in out, out[-3000:]


def test_host_stopped_leaves_the_other_hosts_consistent():
    during = STOPPED["during"]
    assert not during["web3"]["running"]
    for name in ("web1", "web2", "web4"):
        assert_complete(name, during[name], "1.0.0")
        assert_records_agree(name, during[name])
        assert during[name]["webapp"]["target"] == STOPPED["before"][name]["webapp"]["target"], name
    # web4 was never touched; web1 and web2 went to v2 and came back
    assert during["web4"]["trees"]["markers"] == STOPPED["before"]["web4"]["trees"]["markers"]


def test_host_stopped_rerun_completes_everywhere():
    rerun = STOPPED["rerun"]
    assert rerun["rc"] == 0, rerun["output"][-3000:]
    assert "succeeded on 4 of 4 hosts" in rerun["output"]
    for name in WEB:
        assert_complete(name, STOPPED["after"][name], "2.0.0")
        assert_records_agree(name, STOPPED["after"][name])
        assert release_id(STOPPED["after"][name]) == rerun["deployment_id"]
    assert all(server["admin"] == 0 and server["operational"] == 2 for server in STOPPED["servers_after"].values()), \
        STOPPED["servers_after"]


# ------------------------------------------------------------------------------------------------ 2. controller killed

KILLED = load("controller_killed")


@pytest.mark.parametrize("point", ["a", "b"])
def test_killed_controller_leaves_every_current_complete(point):
    data = KILLED[point]
    assert data["run"]["killed_at"] is not None and data["run"]["rc"] == -9
    for name in WEB:
        assert_complete(name, data["after_kill"][name])


@pytest.mark.parametrize("point, holder", [("a", "web1"), ("b", "web2")])
def test_killed_controller_lock_names_the_dead_deployment(point, holder):
    data = KILLED[point]
    dead = data["run"]["deployment_id"]
    assert dead
    for name in WEB:
        lock = lock_of(data["after_kill"][name])
        if name == holder:
            assert lock and lock["deployment_id"] == dead, (name, lock)
        else:
            assert lock is None, (name, lock)


def test_killed_controller_refusal_says_how_to_break_a_live_lock():
    refused = KILLED["a"]["refused"]
    out = refused["output"]
    assert refused["rc"] != 0
    assert "host is locked by deployment %s" % KILLED["a"]["run"]["deployment_id"] in out or \
        KILLED["a"]["run"]["deployment_id"] in out, out[-3000:]
    assert "state=unlocked force=true" in re.sub(r"\s+", " ", out), out[-3000:]


@pytest.mark.parametrize("point", ["a", "b"])
def test_killed_controller_lock_broken_the_documented_way_then_the_rerun_completes(point):
    data = KILLED[point]
    assert data["break"]["rc"] == 0, data["break"]["output"][-2000:]
    rerun = data["rerun"]
    assert rerun["rc"] == 0, rerun["output"][-3000:]
    assert "succeeded on 4 of 4 hosts" in rerun["output"]
    for name in WEB:
        assert_complete(name, data["after"][name])
        assert_records_agree(name, data["after"][name])
        assert release_id(data["after"][name]) == rerun["deployment_id"]
    assert all(server["admin"] == 0 and server["operational"] == 2 for server in data["servers_after"].values()), \
        data["servers_after"]


# ------------------------------------------------------------------------------------------------ 4. two at once

CONCURRENT = load("concurrent")


def test_two_deployments_at_once_one_proceeds():
    first = CONCURRENT["a"]
    assert first["rc"] == 0, first["output"][-3000:]
    assert "succeeded on 4 of 4 hosts" in first["output"]
    for name in WEB:
        assert_complete(name, CONCURRENT["after"][name], "2.0.0")
        assert release_id(CONCURRENT["after"][name]) == first["deployment_id"]


def test_two_deployments_at_once_the_other_is_refused_naming_the_holder_on_every_host_it_reached():
    holder, second = CONCURRENT["a"]["deployment_id"], CONCURRENT["b"]
    out = re.sub(r"\s+", " ", second["output"])
    assert second["rc"] != 0
    assert "FAILED: 0 of 2 hosts succeeded" in out and "failed: web2, web3" in out, out[-3000:]
    for name in ("web2", "web3"):
        assert lock_of(CONCURRENT["during"][name])["deployment_id"] == holder
        assert re.search(r"%s: refused at [^:]*: host is locked by deployment %s by root@%s" % (name, holder, name), out), out[-3000:]


def test_two_deployments_at_once_the_refused_one_left_nothing():
    refused = CONCURRENT["b"]["deployment_id"]
    for name in WEB:
        after = CONCURRENT["after"][name]
        assert refused not in after.get("deployments", []) and refused not in after["webapp"]["releases"], name
        assert all(refused not in (text or "") for text in after["records"].values()), name


def test_two_deployments_at_once_leave_no_lock():
    for name in WEB:
        assert not CONCURRENT["after"][name]["locks"], name
        assert_records_agree(name, CONCURRENT["after"][name])


# ------------------------------------------------------------------------------------------------ 6. hostile input

HOSTILE = load("hostile")["runs"]
REFUSALS = {
    "files-source-dotdot": "files[0].source: '../x' points outside the revision",
    "hook-location-dotdot": "hooks.BeforeInstall[0].location: '../x.sh' points outside the revision",
    "files-source-symlink-out": "symlink 'app-out' points outside the archive (/etc)",
    "hook-location-symlink-out": "symlink 'scripts/out.sh' points outside the archive (/bin/true)",
    "yaml-alias-bomb": "must be a mapping with location, timeout, runas, sudo, not a list",
    "appspec-100mb": "appspec.yml is larger than 4194304 bytes",
    "tar-member-dotdot": "archive entry '../escaped.txt' has a '..' path component",
    "tar-member-absolute": "archive entry '/tmp/escaped.txt' has an absolute path",
    "tar-member-through-symlink": "symlink 'app/out' points outside the archive (/tmp)",
    # Absolute paths are read relative to the revision's root (CodeDeploy's rule, docs/appspec-reference.md): they
    # do not escape, and one missing from the revision is refused by the controller like any other missing path.
    "files-source-absolute": "files[0].source '/etc' does not exist in the revision",
    "hook-location-absolute": "hooks.BeforeInstall[0].location '/bin/true': the script does not exist in the revision",
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_hostile_revision_is_refused_with_a_precise_error(case):
    run = HOSTILE[case]
    out = re.sub(r"\s+", " ", run["output"]).replace("''", "'")
    assert run["rc"] != 0
    assert REFUSALS[case] in out, out[-3000:]


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_hostile_revision_is_refused_before_any_host_changes(case):
    run = HOSTILE[case]
    before, after = run["before"], run["after"]
    assert before["trees"] == after["trees"], case
    assert before["records"] == after["records"] and before["locks"] == after["locks"] == {}, case
    assert before["webapp"]["target"] == after["webapp"]["target"], case


REACH = load("permissions_reach")


def test_permissions_outside_the_installed_files_are_ignored_with_a_warning():
    """CodeDeploy ignores them too, so the revision deploys unchanged; the warning names the file, line and field."""
    run = REACH["run"]
    out = re.sub(r"\s+", " ", run["output"])
    assert run["rc"] == 0, out[-3000:]
    assert "permissions[0].object (line 8): '/etc' is not a files destination, nor below or above one" in out, out[-3000:]
    assert "permissions[1].object" not in out  # the release root is above the files destination: it applies


@pytest.mark.parametrize("name", WEB)
def test_permissions_touch_only_what_the_deployment_installs(name):
    assert REACH["before"][name] == REACH["after"][name]  # /, /etc, /etc/passwd, /etc/ssh, /opt, the release root
    assert REACH["snapshot"][name]["webapp"]["version"] == "4.0.0"


def test_a_permission_above_the_files_applies_to_the_installed_files():
    assert REACH["installed_version_file"] == ["nobody", "644"]


# ------------------------------------------------------------------------------------------------ 7. other untouched

BASELINE = load("baseline")["snapshot"]
OTHER = load("other_untouched")


def test_other_runs_of_webapp_happened():
    runs = OTHER["runs"]
    assert runs["rollback"]["rc"] == 0, runs["rollback"]["output"][-3000:]
    # AllAtOnce: web2 failed its ValidateService and was rolled back, the deployment succeeded on the others
    assert "succeeded on 3 of 4 hosts (failed, rolled back: web2)" in runs["failing"]["output"], runs["failing"]["output"][-3000:]
    assert runs["redeploy"]["rc"] == 0, runs["redeploy"]["output"][-3000:]


@pytest.mark.parametrize("name", WEB)
def test_an_application_not_named_is_never_touched(name):
    before, after = BASELINE[name], OTHER["after"][name]
    assert before["other"]["version"] == "other-1"
    for key in ("other_release_root", "other_deployment_root", "other_records"):
        assert before["trees"][key] and before["trees"][key] == after["trees"][key], key
    assert before["other"] == after["other"]
    # while webapp changed many times on the same host
    assert before["trees"]["webapp_release_root"] != after["trees"]["webapp_release_root"]


def test_no_lock_left_and_webapp_serves(host):
    assert not host.file("/opt/codedeploy-agent/deployment-root/locks/%s.lock" % WEBAPP_GID).exists
    assert "version=4.0.0" in host.check_output("curl -fsS http://127.0.0.1:8080/")  # permissions_reach ran last
