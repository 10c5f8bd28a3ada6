# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_watch: the settings of a watch, one round judged from raw registered results, the verdict."""

from __future__ import annotations

import pytest

from ansible_collections.appspec.deploy.plugins.plugin_utils import _history
from ansible_collections.appspec.deploy.plugins.plugin_utils._watch import WatchError, command_outcomes, decide, judge_round, settle

URL = "http://127.0.0.1:8080/health"


def http(host, status, failed=False, elapsed=0):
    return {"watch_probe": [host, {"url": URL, "status": 200}], "ansible_loop_var": "watch_probe", "status": status,
            "failed": failed, "elapsed": elapsed, "msg": "Status code was %s" % status}


def command(host, rc):
    return {"watch_probe": [host, {"command": "systemctl is-active app"}], "ansible_loop_var": "watch_probe", "rc": rc,
            "stdout": "inactive" if rc else "active", "stderr": ""}


def haproxy(two_xx, five_xx, rtime=10):
    return {"web1": {"counters": {"hrsp_2xx": two_xx, "hrsp_5xx": five_xx, "rtime": rtime}}}


@pytest.mark.parametrize("given, expected", [
    ({}, {"seconds": 0, "interval": 10, "rounds": 0, "max_failure_rate": 0.2}),
    ({"seconds": "60"}, {"seconds": 60, "rounds": 6}),  # survey text
    ({"seconds": 25, "interval": 10}, {"rounds": 3}),  # the last round covers the rest
    ({"seconds": 5, "interval": "2", "max_failure_rate": "0.5"}, {"rounds": 3, "max_failure_rate": 0.5}),
])
def test_settle(given, expected):
    settings = settle(**given)
    assert {key: settings[key] for key in expected} == expected


@pytest.mark.parametrize("given, message", [
    ({"seconds": -1}, "appspec_watch_seconds must be between 0"),
    ({"seconds": "soon"}, "appspec_watch_seconds must be a number"),
    ({"seconds": 10, "interval": 0}, "appspec_watch_interval must be between 1"),
    ({"max_failure_rate": 2}, "appspec_watch_max_failure_rate must be between 0 and 1"),
    ({"probes": [{"url": URL, "command": "true"}]}, "appspec_watch_probes[0] must be a mapping with url"),
    ({"probes": [{"url": URL, "code": 200}]}, "appspec_watch_probes[0]: unknown key code"),
    ({"probes": [{"command": " "}]}, "appspec_watch_probes[0].command is empty"),
    ({"seconds": True}, "must be a number"),
])
def test_settle_refuses(given, message):
    with pytest.raises(WatchError, match=message.replace("[", r"\[").replace("]", r"\]")):
        settle(**given)


def test_probes_are_split_by_kind_with_their_defaults():
    settings = settle(10, 5, probes=[{"url": URL}, {"command": "true", "timeout": 2}])
    assert settings["http_probes"] == [{"url": URL, "status": 200, "timeout": 5}]
    assert settings["command_probes"] == [{"command": "true", "timeout": 2}]


SETTINGS = dict(settle(30, 10), rounds=3)


@pytest.mark.parametrize("name, results, commands, passed, problem", [
    ("all pass", [http("h1", 200), http("h2", 200)], [command("h1", 0)], True, None),
    ("one of five failed: 20% is not above 20%", [http("h%d" % n, 200) for n in range(4)] + [http("h4", 500, True)], [],
     True, None),
    ("one of four failed", [http("h%d" % n, 200) for n in range(3)] + [http("h3", 500, True)], [], False,
     "1 of 4 probes failed (25%% > 20%%): http %s on h3: Status code was 500" % URL),
    ("a command probe fails", [http("h1", 200)], [command("h1", 3)], False, "command systemctl is-active app on h1: inactive"),
    ("unreachable", [dict(http("h1", -1), unreachable=True)], [], False, "1 of 1 probes failed"),
    ("no probes", [], [], True, None),
])
def test_judge_round_probes(name, results, commands, passed, problem):
    verdict = judge_round(2, SETTINGS, results, commands)
    assert verdict["passed"] is passed, name
    if problem:
        assert problem in verdict["problems"][0]
        assert verdict["line"].startswith("round 2/3: FAILED")
    else:
        assert verdict["line"].startswith("round 2/3: ok")


def test_latency_of_probes():
    settings = dict(SETTINGS, max_latency_ms=500)
    assert judge_round(1, settings, [http("h1", 200, elapsed=0)])["passed"]
    verdict = judge_round(1, settings, [http("h1", 200, elapsed=2)])
    assert not verdict["passed"] and "1 probe slower than 500 ms: %s on h1 took 2000 ms" % URL in verdict["problems"]


@pytest.mark.parametrize("before, after, passed, problem", [
    (haproxy(100, 0), haproxy(200, 2), True, None),  # 2 of 102: below 5%
    (haproxy(100, 0), haproxy(150, 10), False, "haproxy: 10 of 60 responses failed"),
    (haproxy(100, 0), haproxy(102, 3), True, None),  # 5 responses: fewer than min_requests, not judged
    (haproxy(500, 50), haproxy(20, 0), True, None),  # counters reset (a reload): counted from zero, 20 good ones
])
def test_judge_round_haproxy_counters(before, after, passed, problem):
    verdict = judge_round(1, SETTINGS, [], [], before, after, ["web1"])
    assert verdict["passed"] is passed
    if problem:
        assert problem in verdict["problems"][0]
    assert "haproxy" in verdict["line"]


def test_decide_stops_on_the_first_failed_round():
    ok = judge_round(1, SETTINGS, [http("h1", 200)])
    bad = judge_round(2, SETTINGS, [http("h1", 503, True)])
    state = decide({}, ok, 3)
    assert state["verdict"] == "watching" and state["rounds"] == 1
    state = decide(state, bad, 3)
    assert state["verdict"] == "failed" and state["rounds"] == 2
    assert state["reason"].startswith("round 2 of 3: 1 of 1 probes failed")
    assert [entry["passed"] for entry in state["history"]] == [True, False]
    state = {}
    for number in (1, 2, 3):
        state = decide(state, judge_round(number, SETTINGS, [http("h1", 200)]), 3)
    assert state == dict(state, verdict="passed", reason="3 rounds passed", rounds=3)


def test_command_outcomes():
    assert command_outcomes([command("h1", 0), command("h2", 1)]) == [
        {"host": "h1", "command": "systemctl is-active app", "rc": 0, "passed": True, "msg": ""},
        {"host": "h2", "command": "systemctl is-active app", "rc": 1, "passed": False, "msg": "inactive"}]


# --- the history record of a watch ------------------------------------------------------------------


def _record(deployment_id, ended, status="succeeded"):
    deployment = {"deployment_id": deployment_id, "application_name": "shop", "deployment_group_name": "production",
                  "sha256": "a" * 64, "hosts": ["h1", "h2"]}
    hosts = {"h1": {"status": "succeeded", "running": True}, "h2": {"status": "succeeded", "running": True}}
    return _history.make_record(deployment, {"deployment_id": deployment_id, "failed": status != "succeeded"}, hosts,
                                started=ended - 10, ended=ended, user="me@here")


def test_record_watch_fails_the_deployment_and_the_promotion_refuses_it(tmp_path):
    store = _history.DirStore(str(tmp_path))
    _history.write_record(store, _record("d-AAAAAAAAA", 1000))
    name = _history.write_record(store, _record("d-BBBBBBBBB", 2000))
    watch = {"verdict": "failed", "reason": "round 2 of 3: 1 of 1 probes failed", "rounds": 2}
    rollback = {"h1": {"status": "succeeded", "msg": "rolled back to d-AAAAAAAAA"}, "h2": {"status": "failed", "msg": "boom"}}
    assert _history.record_watch(store, "shop", "d-BBBBBBBBB", watch, rollback, check_mode=True)["status"] == "failed"
    assert store.get(name)["status"] == "succeeded"  # check mode wrote nothing
    _history.record_watch(store, "shop", "d-BBBBBBBBB", watch, rollback)
    record = store.get(name)
    assert record["status"] == "failed" and record["watch"] == watch
    assert record["hosts"]["h1"] == {"status": "succeeded", "running": False,
                                     "rollback": {"status": "succeeded", "msg": "rolled back to d-AAAAAAAAA"}}
    assert record["hosts"]["h2"]["running"] is True  # its rollback failed: it still runs the revision
    assert len(store.names("shop/deployments")) == 2  # the same record, rewritten
    with pytest.raises(_history.PromotionError, match="failed"):
        _history.check_promotion(_history.read_records(store, "shop"), {}, ["production", "live"], "live", "a" * 64, "shop")
    # A passed watch only adds its entry.
    _history.record_watch(store, "shop", "d-AAAAAAAAA", {"verdict": "passed", "reason": "3 rounds passed", "rounds": 3})
    first = _history.find_record(store, "shop", "d-AAAAAAAAA")[1]
    assert first["status"] == "succeeded" and first["watch"]["verdict"] == "passed"
    assert _history.record_watch(store, "shop", "d-CCCCCCCCC", watch) is None
