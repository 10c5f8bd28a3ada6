# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import pytest

from ansible_collections.appspec.deploy.plugins.plugin_utils._traffic import (
    TrafficError,
    judge,
    plan_blue_green,
    plan_canary,
    preset_steps,
    server_names,
    weights_for,
)

GROUPS = ("blue", "green")
MEMBERS = {"blue": ["b1", "b2"], "green": ["g1", "g2"]}
NAMES = {host: host for hosts in MEMBERS.values() for host in hosts}


def lb(**states):
    """A load balancer reading: server -> {state, weight}; a state given as 'ready:0' sets the weight too."""
    servers = {}
    for name, value in states.items():
        state, dummy, weight = value.partition(":")
        servers[name] = {"state": state, "weight": int(weight or 1)}
    return servers


ALL_HOSTS = ["b1", "b2", "g1", "g2"]


@pytest.mark.parametrize("state, live, target", [
    (lb(b1="ready", b2="ready", g1="maint", g2="maint"), "blue", "green"),
    (lb(b1="maint", b2="maint", g1="ready", g2="ready"), "green", "blue"),
    (lb(b1="ready:0", b2="ready:0", g1="ready", g2="ready"), "green", "blue"),  # weight 0 takes no traffic
    (lb(b1="maint", b2="maint", g1="maint", g2="maint"), None, "blue"),  # nothing serves yet: the first group
])
def test_blue_green_finds_the_live_group_from_the_load_balancer(state, live, target):
    plan = plan_blue_green(GROUPS, MEMBERS, NAMES, state, ALL_HOSTS)
    assert (plan.live_group, plan.target_group) == (live, target)
    assert plan.target_hosts == MEMBERS[target]
    assert [change["name"] for change in plan.allow] == MEMBERS[target]
    assert all(change["state"] == "ready" for change in plan.allow)
    assert plan.block == [{"name": host, "state": "maint"} for host in MEMBERS.get(live or "", [])]


def test_blue_green_switch_back_reverses_the_switch():
    plan = plan_blue_green(GROUPS, MEMBERS, NAMES, lb(b1="ready", b2="ready", g1="maint", g2="maint"), ALL_HOSTS)
    assert plan.back == [{"name": "b1", "state": "ready"}, {"name": "b2", "state": "ready"},
                         {"name": "g1", "state": "maint"}, {"name": "g2", "state": "maint"}]


def test_blue_green_gives_a_parked_server_the_live_weight():
    state = lb(b1="ready:7", b2="ready:7", g1="maint:0", g2="maint:3")
    plan = plan_blue_green(GROUPS, MEMBERS, NAMES, state, ALL_HOSTS)
    assert plan.allow == [{"name": "g1", "state": "ready", "weight": 7}, {"name": "g2", "state": "ready"}]


@pytest.mark.parametrize("state, live, message", [
    (lb(b1="ready", b2="maint", g1="maint", g2="maint"), "", "Cannot tell which group takes traffic (blue: some"),
    (lb(b1="ready", b2="ready", g1="ready", g2="ready"), "", "Both groups take traffic"),
    (lb(b1="ready", b2="ready", g1="maint"), "", "no server for: g2 (g2)"),
    (lb(b1="ready", b2="ready", g1="maint", g2="maint"), "red", "appspec_blue_green_live is 'red'"),
])
def test_blue_green_refuses_what_it_cannot_tell(state, live, message):
    with pytest.raises(TrafficError, match=message.replace("(", r"\(").replace(")", r"\)")):
        plan_blue_green(GROUPS, MEMBERS, NAMES, state, ALL_HOSTS, live=live)


def test_blue_green_override_of_the_live_group():
    state = lb(b1="ready", b2="ready", g1="ready", g2="ready")
    assert plan_blue_green(GROUPS, MEMBERS, NAMES, state, ALL_HOSTS, live="green").target_group == "blue"


@pytest.mark.parametrize("groups, members, message", [
    (("blue",), MEMBERS, "must name two different inventory groups"),
    (("blue", "blue"), MEMBERS, "must name two different inventory groups"),
    (GROUPS, {"blue": ["b1"], "green": []}, "'green' of appspec_blue_green_groups has no hosts"),
    (GROUPS, {"blue": ["b1", "x"], "green": ["x"]}, "Hosts in both blue/green groups blue and green: x"),
])
def test_blue_green_refuses_bad_groups(groups, members, message):
    with pytest.raises(TrafficError, match=message):
        plan_blue_green(groups, members, {"b1": "b1", "x": "x"}, lb(b1="ready", x="ready"), ["b1", "x"])


def test_blue_green_refuses_a_limit_that_leaves_out_part_of_the_target_group():
    with pytest.raises(TrafficError, match=r"leaves out g2 \(--limit\?\)"):
        plan_blue_green(GROUPS, MEMBERS, NAMES, lb(b1="ready", b2="ready", g1="maint", g2="maint"), ["b1", "b2", "g1"])


def test_server_names_follow_the_load_balancer_variables():
    hostvars = {"a": {"appspec_lb_server": "web-a"}, "b": {"appspec_load_balancer": {"server": "10.0.0.2:80"}}, "c": {}}
    assert server_names(["a", "b", "c"], hostvars) == {"a": "web-a", "b": "10.0.0.2:80", "c": "c"}


# ------------------------------------------------------------------------------------------------ canary


@pytest.mark.parametrize("name, shares, pause", [
    ("CodeDeployDefault.Canary10Percent5Minutes", [10], 300),
    ("CodeDeployDefault.ECSCanary10Percent15Minutes", [10], 900),
    ("CodeDeployDefault.Linear10PercentEvery1Minute", [10, 20, 30, 40, 50, 60, 70, 80, 90], 60),
    ("LambdaLinear25PercentEvery3Minutes", [25, 50, 75], 180),
    ("CodeDeployDefault.AllAtOnce", [], 0),
])
def test_presets_named_after_codedeploy(name, shares, pause):
    steps = preset_steps(name)
    assert [step["weight"] for step in steps] == shares
    assert all(step["pause"] == pause and step["analysis"] for step in steps)


@pytest.mark.parametrize("name", ["CodeDeployDefault.OneAtATime", "Canary10Percent", "Linear100PercentEvery1Minute"])
def test_unknown_or_impossible_presets_are_refused(name):
    with pytest.raises(TrafficError):
        preset_steps(name)


FLEET = ["w1", "w2", "w3", "w4"]
FLEET_NAMES = {host: host for host in FLEET}
EQUAL = {host: {"state": "ready", "weight": 1} for host in FLEET}


def test_canary_preset_on_four_hosts():
    plan = plan_canary("CodeDeployDefault.Canary10Percent5Minutes", FLEET, FLEET_NAMES, EQUAL)
    first, last = plan["steps"]
    assert (first["hosts"], first["weight"], first["pause"]) == (1, 10, 300)
    assert first["analysis"]["max_error_rate"] == 0.05
    # One updated server gets 10 % of the requests, the three old ones share 90 %.
    weights = first["weights"]
    assert weights["w1"] / sum(weights.values()) == pytest.approx(0.10, abs=0.005)
    assert weights["w2"] == weights["w3"] == weights["w4"] == 256
    assert (last["hosts"], last["weight"], last["analysis"], last["weights"]) == (4, 100, None, plan["base_weights"])
    assert plan["batches"] == [1, 3] and plan["batch_steps"] == [[first], [last]]


def test_linear_preset_groups_steps_that_add_no_host_into_one_batch():
    plan = plan_canary("CodeDeployDefault.Linear10PercentEvery1Minute", FLEET, FLEET_NAMES, EQUAL)
    assert [step["hosts"] for step in plan["steps"]] == [1, 1, 2, 2, 2, 3, 3, 4, 4, 4]
    assert plan["batches"] == [1, 1, 1, 1]
    assert [[step["number"] for step in steps] for steps in plan["batch_steps"]] == [[1, 2], [3, 4, 5], [6, 7], [8, 9, 10]]
    assert sum(plan["batches"]) == len(FLEET)


def test_custom_steps_with_hosts_weight_pause_and_analysis_override():
    steps = [{"hosts": 1, "weight": 25, "pause": 30, "analysis": {"max_error_rate": 0.2}},
             {"percent": 50, "pause": "approval"}, {"percent": 100}]
    plan = plan_canary(steps, FLEET, FLEET_NAMES, EQUAL, analysis={"min_requests": 5})
    one, two, three = plan["steps"]
    assert one["analysis"]["max_error_rate"] == 0.2 and one["analysis"]["min_requests"] == 5
    assert two["hosts"] == 2 and two["weight"] == 50 and two["approval"] and two["analysis"] is None
    assert two["weights"]["w1"] == two["weights"]["w3"]
    assert three["weights"] == {host: 1 for host in FLEET} and len(plan["steps"]) == 3


def test_base_weights_keep_their_proportions():
    base = {"w1": {"state": "ready", "weight": 2}, "w2": {"state": "ready", "weight": 1},
            "w3": {"state": "ready", "weight": 3}, "w4": {"state": "ready", "weight": 1}}
    weights = weights_for(["w1", "w2"], FLEET, 40, {name: s["weight"] for name, s in base.items()})
    total = sum(weights.values())
    assert (weights["w1"] + weights["w2"]) / total == pytest.approx(0.40, abs=0.01)
    assert weights["w1"] == pytest.approx(2 * weights["w2"], abs=1)
    assert weights["w3"] == pytest.approx(3 * weights["w4"], abs=1)


@pytest.mark.parametrize("steps, message", [
    ([{"hosts": 2}, {"hosts": 1}], "fewer than the 2 of the step before"),
    ([{"weight": 10}], "no host runs the new version yet"),
    ([{"hosts": 1, "percent": 10}], "hosts or percent, not both"),
    ([{"hosts": 1, "wait": 3}], "unknown key wait"),
    ([{"hosts": 1, "analysis": True}], "has an analysis but no pause"),
    ([{"percent": 120}], "percent must be between 1 and 100"),
    ([{"hosts": "two"}], "hosts must be a whole number"),
    ({"hosts": 1}, "a preset name or a list of steps"),
])
def test_bad_steps_are_refused_with_the_step_named(steps, message):
    with pytest.raises(TrafficError, match=message):
        plan_canary(steps, FLEET, FLEET_NAMES, EQUAL)


def test_canary_refuses_unknown_thresholds_and_parked_servers():
    with pytest.raises(TrafficError, match="Unknown canary analysis settings: max_errors"):
        plan_canary("CodeDeployDefault.AllAtOnce", FLEET, FLEET_NAMES, EQUAL, analysis={"max_errors": 1})
    parked = dict(EQUAL, w3={"state": "ready", "weight": 0})
    with pytest.raises(TrafficError, match="weight 0 at the load balancer: w3"):
        plan_canary("CodeDeployDefault.AllAtOnce", FLEET, FLEET_NAMES, parked)


# ------------------------------------------------------------------------------------------------ analysis

THRESHOLDS = dict(plan_canary("CodeDeployDefault.Canary10Percent5Minutes", FLEET, FLEET_NAMES, EQUAL)["steps"][0]["analysis"])


def reading(**servers):
    """server -> (2xx, 5xx, rtime ms)."""
    return {name: {"hrsp_2xx": ok, "hrsp_5xx": bad, "rtime": ms, "eresp": 0, "econ": 0} for name, (ok, bad, ms) in servers.items()}


BEFORE = reading(w1=(100, 0, 5), w2=(100, 0, 5), w3=(100, 1, 5))


def test_analysis_catches_errors_of_the_updated_hosts():
    after = reading(w1=(140, 20, 5), w2=(400, 0, 5), w3=(400, 1, 5))
    verdict = judge(1, THRESHOLDS, BEFORE, after, ["w1"], ["w2", "w3"])
    assert not verdict["passed"]
    assert verdict["failed_metric"]["name"] == "error rate"
    assert verdict["failed_metric"]["updated"] == pytest.approx(20 / 60, abs=0.001)
    assert verdict["failed_metric"]["baseline"] == 0.0
    assert verdict["summary"].startswith("step 1 failed on error rate: updated 0.3333, baseline 0.0, limit 0.05")


def test_analysis_passes_a_healthy_window_and_compares_with_the_baseline():
    after = reading(w1=(160, 1, 6), w2=(400, 3, 5), w3=(400, 4, 5))
    verdict = judge(1, THRESHOLDS, BEFORE, after, ["w1"], ["w2", "w3"])
    assert verdict["passed"], verdict
    assert [m["name"] for m in verdict["metrics"]] == ["error rate", "error rate increase"]


def test_analysis_judges_latency_against_the_old_hosts():
    after = reading(w1=(200, 0, 400), w2=(400, 0, 100), w3=(400, 1, 100))
    verdict = judge(2, THRESHOLDS, BEFORE, after, ["w1"], ["w2", "w3"])
    assert verdict["failed_metric"]["name"] == "latency ratio" and verdict["failed_metric"]["updated"] == 4.0


def test_analysis_without_traffic_is_inconclusive():
    after = reading(w1=(105, 0, 5), w2=(400, 0, 5), w3=(400, 1, 5))
    assert judge(1, THRESHOLDS, BEFORE, after, ["w1"], ["w2", "w3"])["failed_metric"]["name"] == "requests"
    assert judge(1, dict(THRESHOLDS, inconclusive="pass"), BEFORE, after, ["w1"], ["w2", "w3"])["passed"]


def test_counter_reset_by_a_reload_counts_from_zero():
    after = reading(w1=(50, 10, 5), w2=(400, 0, 5), w3=(400, 1, 5))  # w1 went down: haproxy was reloaded
    verdict = judge(1, THRESHOLDS, BEFORE, after, ["w1"], ["w2", "w3"])
    assert verdict["failed_metric"]["updated"] == pytest.approx(10 / 60, abs=0.001)


def test_probes_and_validate_service_fail_first_and_nginx_has_no_counters():
    no_counters = {"w1": {"state": "ready", "weight": 1}, "w2": {"state": "ready", "weight": 1}}
    probes = [{"host": "w1", "url": "http://w1:8080/health", "status": 500, "expected": 200, "passed": False}]
    verdict = judge(1, THRESHOLDS, no_counters, no_counters, ["w1"], ["w2"], probes=probes,
                    validations=[{"host": "w1", "failed": False}])
    assert verdict["failed_metric"]["name"] == "probe http://w1:8080/health on w1"
    assert verdict["notes"] == ["the load balancer keeps no per-server counters: judged by probes and ValidateService only"]
    assert judge(1, THRESHOLDS, no_counters, no_counters, ["w1"], ["w2"], validations=[{"host": "w1", "failed": True, "msg": "x"}])[
        "failed_metric"]["name"] == "ValidateService on w1"


def test_plan_gives_each_host_its_batch_and_the_changes_of_each_step():
    plan = plan_canary("CodeDeployDefault.Canary10Percent5Minutes", FLEET, FLEET_NAMES, EQUAL)
    assert plan["batch_of"] == {"w1": 0, "w2": 1, "w3": 1, "w4": 1}
    assert plan["steps"][0]["changes"][0] == {"name": "w1", "weight": plan["steps"][0]["weights"]["w1"]}
    assert plan["restore"] == [{"name": host, "weight": 1} for host in FLEET]


def test_raw_probe_and_validate_results_become_judge_inputs():
    from ansible_collections.appspec.deploy.plugins.plugin_utils._traffic import probe_outcomes, validation_outcomes

    probes = probe_outcomes([
        {"item": ["w1", {"url": "http://127.0.0.1:8080/health"}], "status": 200},
        {"item": ["w2", {"url": "http://127.0.0.1:8080/health", "status": 204}], "status": 500, "failed": True, "msg": "Status code was 500"},
        {"item": ["w3", {"url": "http://127.0.0.1:8080/"}], "unreachable": True, "msg": "ssh"},
    ])
    assert [p["passed"] for p in probes] == [True, False, False]
    assert probes[1] == {"host": "w2", "url": "http://127.0.0.1:8080/health", "status": 500, "expected": 204,
                         "passed": False, "msg": "Status code was 500"}
    checks = validation_outcomes([{"item": "w1", "changed": True},
                                  {"canary_host": "w2", "ansible_loop_var": "canary_host", "failed": True, "msg": "exit 1"}])
    assert checks == [{"host": "w1", "failed": False, "msg": ""}, {"host": "w2", "failed": True, "msg": "exit 1"}]
