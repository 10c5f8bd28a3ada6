"""plugin_utils/_deployment.py: deployment configs, the fleet-wide gate and the outcome, as CodeDeploy decides them."""

from __future__ import annotations

import re

import pytest

from ansible_collections.appspec.deploy.plugins.module_utils._errors import DeployError
from ansible_collections.appspec.deploy.plugins.plugin_utils._deployment import (
    BUILTIN_CONFIGS, DeploymentConfigError, HealthPlan, gate, host_states, new_deployment_id, outcome, plan_health)

# (hosts, deployment config, (min_healthy, max_unhealthy = batch size, required_successes))
CASES = [
    (9, "HOST_COUNT:6", (6, 3, 6)),  # AWS's own example: up to 3 at a time, 6 must succeed
    (9, "FLEET_PERCENT:40", (4, 5, 4)),  # AWS's own example: up to 5 at a time, 4 must succeed
    (9, "CodeDeployDefault.HalfAtATime", (5, 4, 5)),  # 4 at a time (rounded down), 5 must succeed
    (4, "CodeDeployDefault.HalfAtATime", (2, 2, 2)),
    (1, "CodeDeployDefault.HalfAtATime", (1, 1, 1)),  # a built-in config still deploys a single host
    (4, "CodeDeployDefault.OneAtATime", (3, 1, 3)),  # all but the last host must succeed
    (1, "CodeDeployDefault.OneAtATime", (0, 1, 1)),
    (4, "CodeDeployDefault.AllAtOnce", (0, 4, 1)),  # at least one host must succeed
    (1, "CodeDeployDefault.AllAtOnce", (0, 1, 1)),
    (3, {"minimum_healthy_hosts": {"type": "HOST_COUNT", "value": 1}}, (1, 2, 1)),
    (3, {"type": "host_count", "value": 1}, (1, 2, 1)),
    (3, "fleet_percent=50", (2, 1, 2)),
    (3, "HOST_COUNT:0", (0, 3, 1)),
    (3, "HOST_COUNT=2", (2, 1, 2)),
    (5, "FLEET_PERCENT:0", (0, 5, 1)),
    (3, "FLEET_PERCENT:33", (1, 2, 1)),  # 0.99 hosts rounds up to 1
    # AWX survey answers are strings, with stray blanks
    (3, "HOST_COUNT: 2 ", (2, 1, 2)),
    (3, " Host_Count = 1", (1, 2, 1)),
    (3, {"minimum_healthy_hosts": {"type": "FLEET_PERCENT", "value": "50"}}, (2, 1, 2)),
    (3, {"type": "HOST_COUNT", "value": " 1 "}, (1, 2, 1)),
]

# (hosts, deployment config, fragment of the message)
REFUSED = [
    (3, "HOST_COUNT:3", "requires 3 healthy hosts out of 3: no host could ever be taken offline"),
    (2, "FLEET_PERCENT:99", "requires 2 healthy hosts out of 2"),  # 1.98 rounds up to 2
    (3, "FLEET_PERCENT:100", "HEALTH_CONSTRAINTS_INVALID"),
    (3, "FLEET_PERCENT:101", "asks for 101% of the fleet"),
    (3, {"minimum_healthy_hosts": {"type": "FLEET_PERCENT", "value": 101}}, "asks for 101% of the fleet"),
    (3, "CodeDeployDefault.Bogus", "is not a known deployment config"),
    (3, "HOST_COUNT:two", 'has the value "two", not a whole number'),
    (3, "HOST_COUNT:-1", 'has the value "-1"'),
    (3, {"type": "HOST_COUNT", "value": -1}, 'has the value "-1"'),
    (3, "FLEET_PERCENT:50%", 'has the value "50%"'),
    (3, "HOST_COUNT:1.5", 'has the value "1.5"'),
    (3, {"type": "HOST_COUNT", "value": True}, 'has the value "True"'),
    (3, "HOST_COUNT:", "has no value"),
    (3, {"type": "HOST_COUNT"}, "has no value"),
    (3, "HOST_COUNT:1:2", 'has the value "1:2"'),
    (8, "MOST_CONCURRENCY:7", "uses MOST_CONCURRENCY, which only CodeDeployDefault.OneAtATime stands for"),
    (8, {"type": "most_concurrency", "value": 1}, "uses MOST_CONCURRENCY"),
    (3, "BATCH_SIZE:1", "is not a known deployment config"),
    (3, "HOST_COUNT", "is not a known deployment config"),
    (3, "", "is not a known deployment config"),
    (3, None, "is not a known deployment config"),
    (3, 2, "is not a known deployment config"),
    (3, ["HOST_COUNT", 1], "is not a known deployment config"),
    (3, {"minimum_healthy_hosts": "HOST_COUNT:1"}, "is not a known deployment config"),
]


@pytest.mark.parametrize("hosts, config, expected", CASES, ids=["%d hosts %s" % (c[0], c[1]) for c in CASES])
def test_config_gives_minimum_batch_and_successes(hosts, config, expected):
    plan = plan_health(config, hosts)
    assert (plan.min_healthy, plan.max_unhealthy, plan.required_successes) == expected
    assert plan.hosts == hosts
    assert plan.type in ("HOST_COUNT", "FLEET_PERCENT", "MOST_CONCURRENCY")
    assert isinstance(plan.value, int)


@pytest.mark.parametrize("hosts, config, fragment", REFUSED, ids=["%d hosts %r" % (c[0], c[1]) for c in REFUSED])
def test_config_refused_with_a_message_to_act_on(hosts, config, fragment):
    with pytest.raises(DeploymentConfigError) as caught:
        plan_health(config, hosts)
    message = str(caught.value)
    assert fragment in message
    if "HEALTH_CONSTRAINTS_INVALID" not in message:  # a spelling mistake: list every accepted spelling
        for spelling in list(BUILTIN_CONFIGS) + ["HOST_COUNT:n", "HOST_COUNT=n", "FLEET_PERCENT:p", "(p from 0 to 100)",
                                                 "{minimum_healthy_hosts: {type: HOST_COUNT|FLEET_PERCENT, value: n}}"]:
            assert spelling in message


def test_refusal_is_a_deploy_error_and_quotes_the_config():
    with pytest.raises(DeployError, match=re.escape('The deployment config {"type": "HOST_COUNT", "value": 9} requires 9')):
        plan_health({"type": "HOST_COUNT", "value": 9}, 4)


@pytest.mark.parametrize("hosts", [0, -1])
def test_no_hosts_refused(hosts):
    with pytest.raises(DeploymentConfigError, match="at least one host"):
        plan_health("CodeDeployDefault.AllAtOnce", hosts)


def test_builtin_configs_are_codedeploys():
    assert BUILTIN_CONFIGS == {
        "CodeDeployDefault.AllAtOnce": {"type": "HOST_COUNT", "value": 0},
        "CodeDeployDefault.HalfAtATime": {"type": "FLEET_PERCENT", "value": 50},
        "CodeDeployDefault.OneAtATime": {"type": "MOST_CONCURRENCY", "value": 1},
    }


def test_plan_as_dict_keeps_the_config_as_given():
    assert plan_health("fleet_percent=50", 3).as_dict() == {
        "config_name": "fleet_percent=50", "type": "FLEET_PERCENT", "value": 50, "hosts": 3,
        "min_healthy": 2, "max_unhealthy": 1, "required_successes": 2}
    plan = plan_health({"minimum_healthy_hosts": {"type": "HOST_COUNT", "value": "1"}}, 3)
    assert plan.config_name == '{"minimum_healthy_hosts": {"type": "HOST_COUNT", "value": "1"}}'
    assert (plan.type, plan.value) == ("HOST_COUNT", 1)
    assert plan_health("CodeDeployDefault.OneAtATime", 2) == HealthPlan(
        "CodeDeployDefault.OneAtATime", "MOST_CONCURRENCY", 1, 2, 1, 1, 1)


def test_new_deployment_ids_have_codedeploys_form():
    ids = {new_deployment_id() for dummy in range(50)}
    assert len(ids) == 50
    assert all(re.match(r"^d-[A-Z0-9]{9}$", one) for one in ids)


D = "d-THISONE01"
FLEET = ["h1", "h2", "h3", "h4", "h5", "h6", "h7", "h8", "h9"]


def states(**statuses):
    """h1="failed" -> {"h1": {"deployment": D, "status": "failed"}}; other="h2:failed" -> another deployment."""
    found = {}
    for host, status in statuses.items():
        deployment, dummy, status = status.rpartition(":")
        found[host] = {"deployment": deployment or D, "status": status}
    return found


# (max_unhealthy, batch, host states, stop, failed_so_far, not_deployed)
GATE_CASES = [
    # first batch of HOST_COUNT:6 on 9 hosts: 3 at a time
    (3, FLEET[0:3], {}, False, [], FLEET),
    # a failure in batch 1 leaves 1 + 3 > 3 for batch 2: stop (docs/deployments.md's example)
    (3, FLEET[3:6], states(h1="failed", h2="succeeded", h3="succeeded"), True, ["h1"], FLEET[3:]),
    # no failure: batch 2 goes on
    (3, FLEET[3:6], states(h1="succeeded", h2="succeeded", h3="succeeded"), False, [], FLEET[3:]),
    # a failure in batch 1 still counts in batch 3, fleet-wide
    (4, FLEET[6:9], states(h1="failed", h2="succeeded", h3="succeeded", h4="succeeded", h5="succeeded",
                           h6="succeeded"), False, ["h1"], FLEET[6:]),
    (4, FLEET[6:9], states(h1="failed", h2="succeeded", h3="succeeded", h4="failed", h5="succeeded",
                           h6="succeeded"), True, ["h1", "h4"], FLEET[6:]),
    # a host that never finished (unreachable, interrupted) counts as failed
    (3, FLEET[3:6], states(h1="succeeded", h2="in_progress", h3="succeeded"), True, ["h2"], FLEET[3:]),
    # hosts of another deployment are ignored: failed or not, they are "not deployed" by this one
    (3, FLEET[3:6], states(h1="d-OTHER0001:failed", h2="d-OTHER0001:in_progress", h3="succeeded"),
     False, [], ["h1", "h2"] + FLEET[3:]),
    # OneAtATime: one failure stops the next host
    (1, ["h2"], states(h1="failed"), True, ["h1"], FLEET[1:]),
    (1, ["h2"], states(h1="succeeded"), False, [], FLEET[1:]),
]


@pytest.mark.parametrize("max_unhealthy, batch, host_states_, stop, failed_so_far, not_deployed", GATE_CASES)
def test_gate(max_unhealthy, batch, host_states_, stop, failed_so_far, not_deployed):
    decision = gate(D, max_unhealthy, FLEET, batch, host_states_)
    assert decision.stop is stop
    assert decision.failed_so_far == failed_so_far
    assert decision.not_deployed == not_deployed
    assert (decision.reason != "") is stop


def test_gate_reason_names_failures_batch_limit_and_hosts_not_deployed():
    decision = gate(D, 3, FLEET, FLEET[3:6], states(h1="failed", h2="succeeded", h3="failed"))
    assert decision.reason == (
        "2 host(s) failed so far (h1, h3); deploying the next 3 host(s) would leave fewer healthy hosts than the "
        "deployment config allows (at most 3 of 9 out of service).")
    assert decision.as_dict() == {"stop": True, "reason": decision.reason, "failed_so_far": ["h1", "h3"],
                                  "not_deployed": ["h4", "h5", "h6", "h7", "h8", "h9"]}


def test_gate_reason_without_failures():
    decision = gate(D, 2, FLEET, FLEET[0:3], {})
    assert decision.stop
    assert decision.reason.startswith("0 host(s) failed so far; deploying the next 3 host(s)")


HOSTS = ["h1", "h2", "h3", "h4"]

# (host states, required successes, stopped, failed, succeeded, failed_hosts, untouched)
OUTCOME_CASES = [
    # every host succeeded
    (states(h1="succeeded", h2="succeeded", h3="succeeded", h4="succeeded"), 3, False,
     False, HOSTS, [], []),
    # OneAtATime on 4 hosts: the last host may fail
    (states(h1="succeeded", h2="succeeded", h3="succeeded", h4="failed"), 3, False,
     False, ["h1", "h2", "h3"], ["h4"], []),
    # fewer successes than required
    (states(h1="succeeded", h2="failed", h3="succeeded", h4="failed"), 3, False,
     True, ["h1", "h3"], ["h2", "h4"], []),
    # AllAtOnce: one success is enough, none is not
    (states(h1="failed", h2="failed", h3="failed", h4="succeeded"), 1, False, False, ["h4"], ["h1", "h2", "h3"], []),
    (states(h1="failed", h2="failed", h3="failed", h4="failed"), 1, False, True, [], HOSTS, []),
    # a host never deployed to fails the deployment, even with enough successes
    (states(h1="succeeded", h2="succeeded", h3="succeeded"), 1, False, True, ["h1", "h2", "h3"], [], ["h4"]),
    # a host of another deployment was not deployed to by this one
    (states(h1="succeeded", h2="succeeded", h3="succeeded", h4="d-OTHER0001:succeeded"), 1, False,
     True, ["h1", "h2", "h3"], [], ["h4"]),
    # in_progress counts as failed
    (states(h1="succeeded", h2="succeeded", h3="succeeded", h4="in_progress"), 3, False,
     False, ["h1", "h2", "h3"], ["h4"], []),
    # refused by another deployment's lock: a failed host of this deployment, named in the verdict
    (states(h1="succeeded", h2="succeeded", h3="succeeded", h4="refused"), 4, False,
     True, ["h1", "h2", "h3"], ["h4"], []),
    # stopped by the gate: failed, whatever else
    (states(h1="succeeded", h2="succeeded", h3="succeeded", h4="succeeded"), 1, True, True, HOSTS, [], []),
]


@pytest.mark.parametrize("host_states_, required, stopped, failed, succeeded, failed_hosts, untouched", OUTCOME_CASES)
def test_outcome(host_states_, required, stopped, failed, succeeded, failed_hosts, untouched):
    decided = outcome(D, HOSTS, host_states_, required, stopped, "why" if stopped else "")
    assert decided.failed is failed
    assert (decided.succeeded, decided.failed_hosts, decided.untouched) == (succeeded, failed_hosts, untouched)
    assert decided.stopped is stopped


def test_outcome_as_dict_has_the_keys_the_report_reads():
    decided = outcome(D, HOSTS, states(h1="failed", h2="succeeded"), 2, True, "1 host(s) failed so far (h1)")
    assert decided.as_dict() == {
        "deployment_id": D, "failed": True, "stopped": True, "stopped_reason": "1 host(s) failed so far (h1)",
        "succeeded": ["h2"], "failed_hosts": ["h1"], "untouched": ["h3", "h4"], "required_successes": 2}


def test_host_states_from_hostvars():
    hostvars = {
        "h1": {"lifecycle_deployment": D, "lifecycle_status": "failed", "other": 1},
        "h2": {"lifecycle_status": "succeeded"},  # never marked by a deployment
        "h3": {"lifecycle_deployment": "d-OTHER0001", "lifecycle_status": "succeeded"},
    }
    assert host_states(hostvars, ["h1", "h2", "h3", "h9"]) == {
        "h1": {"deployment": D, "status": "failed"},
        "h3": {"deployment": "d-OTHER0001", "status": "succeeded"},
    }


def test_an_unreachable_host_counts_as_failed_for_the_gate_and_the_verdict():
    touched = states(h1="succeeded", h2="unreachable")
    assert gate(D, 1, HOSTS, HOSTS[2:3], touched).stop
    decided = outcome(D, HOSTS[:2], touched, 2, False)
    assert decided.failed and decided.failed_hosts == ["h2"] and decided.untouched == []
