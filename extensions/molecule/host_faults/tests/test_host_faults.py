"""What the host faults left (hostfaults.py recorded each deployment's results and snapshots of the hosts).

A run record: ``rc``, ``seconds``, ``max_rss_kib`` (the largest RSS of the ansible-playbook process tree),
``output_bytes`` (its whole JSON report), ``lifecycle`` (each lifecycle_event / rollback module result as the
controller received it, with its size in ``bytes``), ``messages`` (every task's ``msg``).
A host snapshot: ``webapp`` (``current``, the release root's entries, releases, unfinished ones, the release log),
``serving`` (what the application answers), ``deployments`` (each deployment dir's entries and scripts.log
size), ``locks``, ``space`` (free bytes), ``processes`` (every command line on the host).
"""
import json
import os
import re
from pathlib import Path

import pytest

testinfra_hosts = ["ansible://webservers"]
OUT = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "host_faults"
GID = "ccfdebf6-7906-511f-9347-105ddd88ec7f"
ROOT = "/opt/codedeploy-agent/deployment-root"
RELEASE_ROOT = "/opt/appspec-example"
MIB = 1024 * 1024


def load(name):
    return json.loads((OUT / (name + ".json")).read_text())


DISK = load("disk")
BOMB = load("bomb")
HOOKS = load("hooks")


def lifecycle_result(run, host):
    """The result of the lifecycle's main module run on ``host`` (ApplicationStop..ValidateService)."""
    found = [r for r in run["lifecycle"] if r["host"] == host and r["task"].startswith("appspec.deploy.lifecycle : ")]
    assert len(found) == 1, (host, [r["task"] for r in run["lifecycle"]])
    return found[0]


def fault_script(result):
    """The record of scripts/fault.sh in a lifecycle result."""
    for event in result["events"] or []:
        for script in event.get("scripts", []):
            if script.get("location") == "scripts/fault.sh":
                return script
    raise AssertionError(result)


def assert_unharmed(name, before, after):
    """`current` still on the release it was on, complete and serving; nothing half-made; no lock."""
    webapp = after["webapp"]
    assert webapp["link"] == before["webapp"]["link"], (name, webapp["link"])
    assert webapp["version"] == before["webapp"]["version"] and not webapp["unfinished"], (name, webapp)
    assert webapp["releases"] == before["webapp"]["releases"], (name, webapp["releases"])
    assert not webapp["unfinished_releases"], (name, webapp)
    # No temp link, no `.<id>.new-<pid>` dir, no other leftover in the release root.
    assert webapp["entries"] == [".appspec-releases.json", "current", "releases"], (name, webapp["entries"])
    assert "version=%s " % before["webapp"]["version"] in after["serving"], (name, after["serving"])
    assert not after["locks"], (name, after["locks"])


# ---------------------------------------------------------------------------------------------- 3. disk full

def test_the_small_file_systems_are_real(host):
    """The fault's premise: web1's release root and web2's deployment root are 8 MiB tmpfs mounts."""
    name = host.backend.get_hostname()
    if name not in ("host_faults-web1", "host_faults-web2"):
        pytest.skip("no small file system on this host")
    mount = host.mount_point(RELEASE_ROOT if name.endswith("web1") else ROOT)
    assert mount.exists and mount.filesystem == "tmpfs", mount
    assert "size=8192k" in mount.options, mount.options


RELEASE_ROOT_FULL = {
    "big": r"^Install: on host web1, Install needs about (\d+) bytes for the release in /opt/appspec-example but only (\d+) "
           r"bytes are free: refused before anything was written, /opt/appspec-example/current was not touched$",
    # 4000 one-byte files: counted as the file system stores them (a block each, and a block per entry), they do
    # not fit: refused before anything was written.
    "many": r"^Install: on host web1, Install needs about (\d+) bytes for the release in /opt/appspec-example but only "
            r"(\d+) bytes are free: refused before anything was written, /opt/appspec-example/current was not touched$",
}
DEPLOYMENT_ROOT_FULL = {
    # The controller sends a directory revision as a tar: 12 MiB of zeros is a 12 MiB archive, refused when staged.
    "big": r"^DownloadBundle: on host web2, staging the revision needs (\d+) bytes for the archive in %s/%s/d-\w+ but only "
           r"(\d+) bytes are free: refused before anything was written$" % (ROOT, GID),
    # 4000 small files: the archive fits, its declared sizes (a block each) do not.
    "many": r"^DownloadBundle: on host web2, the archive needs about (\d+) bytes unpacked \(by the sizes it declares\) but "
            r"only (\d+) bytes are free in %s/%s/d-\w+: refused before anything was written$" % (ROOT, GID),
}


@pytest.mark.parametrize("case", ["big", "many"])
def test_disk_full_fails_with_the_host_the_path_and_the_bytes(case):
    run = DISK[case]["run"]
    assert run["rc"] != 0, run["output_tail"]
    web1 = lifecycle_result(run, "web1")
    web2 = lifecycle_result(run, "web2")
    assert web1["failed"] and re.match(RELEASE_ROOT_FULL[case], web1["msg"]), web1["msg"]
    assert web2["failed"] and re.match(DEPLOYMENT_ROOT_FULL[case], web2["msg"]), web2["msg"]
    needed, free = (int(x) for x in re.match(DEPLOYMENT_ROOT_FULL[case], web2["msg"]).groups())
    assert needed > free and free < 8 * MIB, web2["msg"]
    if case == "big":
        needed, free = (int(x) for x in re.match(RELEASE_ROOT_FULL[case], web1["msg"]).groups())
        assert needed >= 12 * MIB > 8 * MIB > free, web1["msg"]
    verdict = [m["msg"] for m in run["messages"] if m["task"].endswith("Fail the run when the deployment failed")]
    assert verdict and "FAILED: 0 of 2 hosts succeeded" in verdict[0], verdict
    assert "Automatic rollback restored the last successful revision on: web1, web2." in verdict[0], verdict


def test_disk_full_bytes_needed_explain_the_failure():
    """The bytes needed that the error names are more than the bytes free (else the message contradicts itself)."""
    web1 = lifecycle_result(DISK["many"]["run"], "web1")
    numbers = [int(x) for x in re.findall(r"about (\d+) bytes needed|needs about (\d+) bytes", web1["msg"])[0] if x]
    free = int(re.search(r"(\d+) bytes (?:are )?free", web1["msg"]).group(1))
    assert numbers[0] > free, web1["msg"]


@pytest.mark.parametrize("case", ["big", "many"])
def test_disk_full_leaves_the_previous_release_serving_and_nothing_half_made(case):
    before, after = DISK["before"], DISK[case]["after"]
    failed_id = DISK[case]["run"]["deployment_id"]
    assert failed_id
    for name in ("web1", "web2"):
        assert_unharmed("%s %s" % (case, name), before[name], after[name])
        assert after[name]["webapp"]["version"] == "1.0.0"
    # web1: the space of the release root is all back (the half-made release and its marker are gone).
    assert after["web1"]["space"]["release_root"]["free"] >= before["web1"]["space"]["release_root"]["free"] - 64 * 1024
    # Refused before anything was written: the failed attempt is not even in the release log.
    entries = {e["id"]: e for e in after["web1"]["webapp"]["release_log"]["releases"]}
    assert failed_id not in entries, entries[failed_id]
    # web2: the failed deployment's dir holds its logs only: no bundle, no half-unpacked archive, no staging dir.
    assert after["web2"]["deployments"][failed_id]["entries"] == ["logs"], after["web2"]["deployments"][failed_id]
    assert after["web2"]["space"]["deployment_root"]["free"] >= before["web2"]["space"]["deployment_root"]["free"] - 256 * 1024


def test_disk_full_then_a_revision_that_fits_completes():
    run, after = DISK["fits"]["run"], DISK["fits"]["after"]
    assert run["rc"] == 0, run["output_tail"]
    for name in ("web1", "web2"):
        webapp = after[name]["webapp"]
        assert webapp["link"] == "releases/" + run["deployment_id"] and webapp["version"] == "2.0.0", webapp
        assert not webapp["unfinished_releases"] and not after[name]["locks"], after[name]
        assert "version=2.0.0 release=%s" % run["deployment_id"] in after[name]["serving"], after[name]["serving"]


def test_a_size_bomb_is_refused_on_the_controller_before_any_host_changes():
    """A tar.gz of 3 MiB whose second member declares 20 GiB (base-256 size), through playbooks/deploy.yml."""
    run = BOMB["run"]
    assert BOMB["archive_bytes"] < 4 * MIB
    assert run["rc"] != 0
    refusals = [m["msg"] for m in run["messages"] if m["failed"]]
    assert refusals and re.search(r"bomb\.tgz is refused: archive unpacks to more than the limit of 10737418240 bytes "
                                  r"\(max_unpacked_size\), by the sizes its entries declare \(\d+ bytes up to "
                                  r"'app/zeros'\): refused before anything was unpacked", refusals[0]), refusals
    assert not run["lifecycle"], run["lifecycle"]  # no module ran on a host
    for name, before in BOMB["before"].items():
        after = BOMB["after"][name]
        for tree in ("release_root_tree", "deployment_root_tree"):
            assert after[tree] == before[tree], (name, tree)


# ---------------------------------------------------------------------------------------------- 5. hooks

def hook(case):
    data = HOOKS[case]
    return data["run"], lifecycle_result(data["run"], "web3"), data["before"], data["after"]


def hook_processes(state, case):
    marks = {"hang": ("sleep 420", "fault.sh"), "flood": ("yes 0000", "fault.sh"), "daemon": ("sleep 4300",),
             "killparent": ("sleep 4400", "fault.sh"), "stdin": ("fault.sh",)}[case]
    return [p["cmdline"] for p in state["processes"] if any(mark in p["cmdline"] for mark in marks)]


@pytest.mark.parametrize("case, timeout", [("hang", 3), ("flood", 5)])
def test_a_hook_past_its_timeout_is_killed_with_all_its_processes(case, timeout):
    run, result, before, after = hook(case)
    assert run["rc"] != 0
    assert result["failed"] and result["msg"] == (
        "BeforeInstall: script at specified location: scripts/fault.sh failed to complete in %d seconds (timeout); its "
        "process group got SIGTERM, then SIGKILL after 10 s" % timeout), result["msg"]
    script = fault_script(result)
    assert script["timed_out"] and script["exit_code"] == 143, script
    assert timeout <= script["duration"] < timeout + 1.5, script  # SIGTERM was enough: no wait for the grace
    assert not hook_processes(after, case), hook_processes(after, case)
    assert_unharmed(case, before, after)  # rolled back: the previous release serves again


def test_no_process_of_the_timed_out_hooks_is_left_now(host):
    """Checked again live at the end: nothing of the hanging hook (its children in its group, in a new session,
    double-forked with no environment) nor of the flood."""
    if host.backend.get_hostname() != "host_faults-web3":
        pytest.skip("the hooks ran on web3")
    out = host.check_output("ps -eo args")
    assert not re.search(r"^(sleep 420\d|yes 0{20})", out, re.M), out


@pytest.mark.parametrize("case", ["hang", "flood", "daemon", "stdin", "killparent"])
def test_the_controller_gets_a_tail_of_the_output_not_the_output(case):
    run, result, dummy, dummy = hook(case)
    assert result["bytes"] < 64 * 1024, result["bytes"]  # the module result as the controller received it
    if not result["msg"] or "deserialization" not in result["msg"]:
        assert len(fault_script(result)["output_tail"]) <= 4096 + 16
    assert run["output_bytes"] < 1 * MIB, run["output_bytes"]  # the whole JSON report of the run
    assert run["max_rss_kib"] < 300 * 1024, run["max_rss_kib"]  # the controller's peak memory


def test_a_flood_of_output_keeps_the_deployments_log_small():
    run, dummy, dummy, after = hook("flood")
    assert after["deployments_log"] < 64 * 1024, after["deployments_log"]
    # The flood really was hundreds of MB: what the runner read and did not log.
    assert fault_script(lifecycle_result(run, "web3"))["output_not_logged"] > 50 * MIB


def test_a_flood_of_output_keeps_scripts_log_bounded():
    run, dummy, dummy, after = hook("flood")
    assert after["deployments"][run["deployment_id"]]["scripts_log"] < 64 * MIB


def test_a_daemon_holding_stdout_does_not_block_the_hook_and_is_left_running():
    run, result, dummy, after = hook("daemon")
    assert run["rc"] == 0, run["output_tail"]
    script = fault_script(result)
    assert script["exit_code"] == 0 and script["duration"] < 2 and script["left_running"], script
    assert hook_processes(after, "daemon") == ["sleep 4300"]
    assert after["webapp"]["version"] == "7.0.0-daemon" and "version=7.0.0-daemon" in after["serving"]


def test_a_hook_reading_stdin_reads_its_end_at_once():
    run, result, dummy, after = hook("stdin")
    assert run["rc"] == 0, run["output_tail"]
    script = fault_script(result)
    assert script["exit_code"] == 0 and script["duration"] < 2, script
    assert "stdin gave 0 bytes then its end" in script["output_tail"]
    assert after["webapp"]["version"] == "7.0.0-stdin"


def test_a_hook_that_kills_its_runner_fails_the_host_and_is_rolled_back():
    """kill -9 $PPID kills the lifecycle_event module on the host: the controller gets no result, the host fails and
    the automatic rollback restores the previous release."""
    run, result, before, after = hook("killparent")
    assert run["rc"] != 0
    assert result["failed"] and result["rc"] == 137 and "Module result deserialization failed" in result["msg"], result
    assert_unharmed("killparent", before, after)
    assert after["webapp"]["version"] == "7.0.0-stdin"


def test_a_hook_that_kills_its_runner_does_not_outlive_its_timeout():
    dummy, dummy, dummy, after = hook("killparent")
    assert not hook_processes(after, "killparent"), hook_processes(after, "killparent")
