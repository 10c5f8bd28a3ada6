# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Traffic plans of blue/green and canary deployments, and the canary analysis (docs/traffic.md).

Plain values in, plain values out, a :class:`TrafficError` on anything a user must fix. The load
balancer's state comes from ``appspec.deploy.load_balancer`` (``state: query``): a mapping of server
name to ``{state, weight, ...counters}``; the changes made here are that module's ``servers`` items.
"""

from __future__ import annotations

import dataclasses
import math
import re
import typing as t

from ansible_collections.appspec.deploy.plugins.module_utils._errors import DeployError

Servers = t.Mapping[str, t.Mapping[str, t.Any]]
Change = t.Dict[str, t.Any]

HAPROXY_MAX_WEIGHT = 256


class TrafficError(DeployError):
    """A blue/green or canary request that cannot be carried out as asked."""


def _serving(server: t.Mapping[str, t.Any]) -> bool:
    return server.get("state") == "ready" and int(server.get("weight", 1) or 0) > 0


def server_names(hosts: t.Sequence[str], hostvars: t.Mapping[str, t.Mapping[str, t.Any]]) -> t.Dict[str, str]:
    """Each host's name at the load balancer: ``appspec_lb_server``, else the load balancer's ``server``, else the host's."""
    names = {}  # type: t.Dict[str, str]
    for host in hosts:
        variables = hostvars.get(host, {})
        balancer = variables.get("appspec_load_balancer") or {}
        names[host] = str(variables.get("appspec_lb_server") or balancer.get("server") or host)
    return names


def _check_known(servers: Servers, names: t.Mapping[str, str]) -> None:
    unknown = sorted("%s (%s)" % (server, host) for host, server in names.items() if server not in servers)
    if unknown:
        raise TrafficError("The load balancer has no server for: %s. Its servers: %s. Set appspec_lb_server on each host "
                           "to its server name there." % (", ".join(unknown), ", ".join(sorted(servers)) or "none"))


# ---------------------------------------------------------------------------------------------- blue/green


@dataclasses.dataclass(frozen=True)
class BlueGreenPlan:
    live_group: t.Optional[str]  # None: no group takes traffic yet (a first deployment)
    target_group: str
    live_hosts: t.List[str]
    target_hosts: t.List[str]
    servers: t.Dict[str, str]  # host -> server, both groups
    allow: t.List[Change]  # puts the target group in service
    block: t.List[Change]  # takes the live group out of service
    back: t.List[Change]  # undoes allow and block: traffic back to the live group only

    def as_dict(self) -> t.Dict[str, t.Any]:
        return dataclasses.asdict(self)


def plan_blue_green(groups: t.Sequence[str], members: t.Mapping[str, t.Sequence[str]], servers_by_host: t.Mapping[str, str],
                    state: Servers, play_hosts: t.Sequence[str], live: str = "") -> BlueGreenPlan:
    """Find the group that takes traffic now (from the load balancer's own state) and plan the switch to the other.

    A group takes traffic when all of its servers are ready with a weight; one with only some of them is
    refused (a switch half done by hand, or a canary: nothing is guessed). With no group in service, the
    first group is the target. ``live`` overrides the load balancer's answer. Every host of the target group
    must be in ``play_hosts``: a ``--limit`` that leaves one out would move traffic to a host never deployed.
    """
    if len(groups) != 2 or groups[0] == groups[1]:
        raise TrafficError("appspec_blue_green_groups must name two different inventory groups, got %r." % (list(groups),))
    for group in groups:
        if not members.get(group):
            raise TrafficError("Inventory group %r of appspec_blue_green_groups has no hosts." % group)
    both = set(members[groups[0]]) & set(members[groups[1]])
    if both:
        raise TrafficError("Hosts in both blue/green groups %s and %s: %s." % (groups[0], groups[1], ", ".join(sorted(both))))
    names = {host: servers_by_host[host] for group in groups for host in members[group]}
    _check_known(state, names)

    serving = {}  # type: t.Dict[str, str]
    for group in groups:
        flags = [_serving(state[names[host]]) for host in members[group]]
        serving[group] = "all" if all(flags) else "some" if any(flags) else "none"
    described = ", ".join("%s: %s of its servers in service" % (group, serving[group]) for group in groups)
    if live:
        if live not in groups:
            raise TrafficError("appspec_blue_green_live is %r; it must be one of %s." % (live, ", ".join(groups)))
        live_group = live  # type: t.Optional[str]
    elif "some" in serving.values():
        raise TrafficError("Cannot tell which group takes traffic (%s). Put the servers of one group in service and the "
                           "other out, or set appspec_blue_green_live." % described)
    elif serving[groups[0]] == serving[groups[1]] == "all":
        raise TrafficError("Both groups take traffic (%s): set appspec_blue_green_live to the group that runs the "
                           "current version." % described)
    elif serving[groups[0]] == serving[groups[1]] == "none":
        live_group = None
    else:
        live_group = groups[0] if serving[groups[0]] == "all" else groups[1]

    target_group = groups[1] if live_group == groups[0] else groups[0]
    target_hosts = list(members[target_group])
    missing = [host for host in target_hosts if host not in play_hosts]
    if missing:
        raise TrafficError("Traffic would move to %s, but the run leaves out %s (--limit?): blue/green deploys the "
                           "whole idle group or nothing." % (target_group, ", ".join(missing)))
    live_hosts = list(members[live_group]) if live_group else []
    weight = next((int(state[names[host]].get("weight") or 0) for host in live_hosts), 0) or 1

    def to_ready(host: str) -> Change:
        change = {"name": names[host], "state": "ready"}  # type: Change
        if not int(state[names[host]].get("weight") or 0):
            change["weight"] = weight  # a server parked with weight 0 gets the live group's weight
        return change

    allow = [to_ready(host) for host in target_hosts]
    block = [{"name": names[host], "state": "maint"} for host in live_hosts]
    back = [{"name": names[host], "state": "ready"} for host in live_hosts] + \
        [{"name": names[host], "state": "maint"} for host in target_hosts]
    return BlueGreenPlan(live_group, target_group, live_hosts, target_hosts, names, allow, block, back)


# ---------------------------------------------------------------------------------------------- canary

# CodeDeploy's traffic-shifting configurations (ECS and Lambda have them; the names work with or
# without that word): CanaryXPercentYMinutes(s), LinearXPercentEveryYMinute(s), AllAtOnce.
_CANARY = re.compile(r"(?:CodeDeployDefault\.)?(?:ECS|Lambda)?Canary(\d+)Percent(\d+)Minutes?", re.IGNORECASE)
_LINEAR = re.compile(r"(?:CodeDeployDefault\.)?(?:ECS|Lambda)?Linear(\d+)PercentEvery(\d+)Minutes?", re.IGNORECASE)
_ALL_AT_ONCE = re.compile(r"(?:CodeDeployDefault\.)?(?:ECS|Lambda)?AllAtOnce", re.IGNORECASE)
STEP_KEYS = ("hosts", "percent", "weight", "pause", "analysis")

DEFAULT_ANALYSIS = {
    "max_error_rate": 0.05,  # the updated hosts' share of failed responses
    "max_error_rate_increase": 0.02,  # over the hosts still on the old version
    "max_latency_ms": 0,  # 0: no absolute limit
    "max_latency_ratio": 2.0,  # the updated hosts' mean response time over the old hosts'
    "latency_floor_ms": 50,  # below it, latency is never judged by the ratio
    "min_requests": 20,  # fewer responses from the updated hosts: the metric cannot be judged
    "inconclusive": "fail",
    "probes": [],  # [{url, status, timeout}], {host} in url: run on each updated host
    "validate_service": True,  # run the revision's ValidateService hooks again on the updated hosts
}


@dataclasses.dataclass(frozen=True)
class Step:
    number: int  # 1-based, as the report shows it
    hosts: int  # how many hosts run the new version once this step is done (cumulative)
    weight: int  # percent of traffic for them
    pause: int  # seconds; 0: none
    approval: bool  # wait for an approval after the pause
    analysis: t.Optional[t.Dict[str, t.Any]]  # thresholds; None: no analysis in this step
    weights: t.Dict[str, int]  # server -> weight, every server of the fleet
    updated_hosts: t.List[str]  # the hosts that run the new version after this step
    updated: t.List[str]  # their servers
    baseline: t.List[str]  # the servers still on the old version

    def as_dict(self) -> t.Dict[str, t.Any]:
        step = dataclasses.asdict(self)
        step["changes"] = [{"name": server, "weight": weight} for server, weight in self.weights.items()]
        return step


def preset_steps(name: str) -> t.List[t.Dict[str, t.Any]]:
    """The steps of a CodeDeploy traffic-shifting configuration, by its name."""
    canary, linear = _CANARY.fullmatch(name), _LINEAR.fullmatch(name)
    if canary:
        percent, minutes = int(canary.group(1)), int(canary.group(2))
        return [{"percent": percent, "weight": percent, "pause": minutes * 60, "analysis": True}]
    if linear:
        percent, minutes = int(linear.group(1)), int(linear.group(2))
        if not 0 < percent < 100:
            raise TrafficError("Canary preset %s: the percent must be between 1 and 99." % name)
        return [{"percent": share, "weight": share, "pause": minutes * 60, "analysis": True}
                for share in range(percent, 100, percent)]
    if _ALL_AT_ONCE.fullmatch(name):
        return []
    raise TrafficError("Unknown canary preset %r: use CodeDeployDefault.CanaryXPercentYMinutes, "
                       "CodeDeployDefault.LinearXPercentEveryYMinutes, CodeDeployDefault.AllAtOnce or a list of steps." % name)


def _whole(value: t.Any, where: str, low: int, high: t.Optional[int] = None) -> int:
    if isinstance(value, bool) or not re.fullmatch(r"\s*\d+\s*", str(value)):
        raise TrafficError("%s must be a whole number, got %r." % (where, value))
    number = int(value)
    if number < low or (high is not None and number > high):
        raise TrafficError("%s must be between %d and %s, got %d." % (where, low, high if high is not None else "any", number))
    return number


def weights_for(updated: t.Sequence[str], servers: t.Sequence[str], share: int, base: t.Mapping[str, int]) -> t.Dict[str, int]:
    """Server weights that give the ``updated`` servers ``share`` percent of the traffic, in proportion to their base weights.

    Within each side the base weights keep their proportions; the result fits haproxy's 0..256. All
    servers on one side (or the share at 100 with every server updated) gives the base weights back.
    """
    old = [server for server in servers if server not in updated]
    if not old or not updated:
        return {server: base[server] for server in servers}
    new_total, old_total = sum(base[s] for s in updated) or 1, sum(base[s] for s in old) or 1
    raw = {s: base[s] * share / new_total for s in updated}
    raw.update({s: base[s] * (100 - share) / old_total for s in old})
    scale = HAPROXY_MAX_WEIGHT / max(raw.values())
    return {s: (max(1, round(value * scale)) if value else 0) for s, value in raw.items()}


def plan_canary(steps: t.Any, hosts: t.Sequence[str], servers_by_host: t.Mapping[str, str], state: Servers,
                analysis: t.Optional[t.Mapping[str, t.Any]] = None) -> t.Dict[str, t.Any]:
    """Normalize the canary steps for these hosts (in update order) and the load balancer's current weights.

    Returns ``steps`` (each a :class:`Step` as a dict, with its weights as load balancer ``changes``),
    ``batches`` (the hosts each batch adds, for ``serial``), ``batch_steps`` (the steps that run after
    each batch), ``batch_of`` (host -> its batch), ``base_weights`` and ``restore`` (the changes
    that put them back, at the end or on abort). A final step to every host at 100 % is added when the steps stop short.
    """
    if not hosts:
        raise TrafficError("A canary deployment needs hosts.")
    names = {host: servers_by_host[host] for host in hosts}
    _check_known(state, names)
    order = [names[host] for host in hosts]
    base = {server: int(state[server].get("weight") or 0) for server in order}
    parked = [server for server in order if not base[server]]
    if parked:
        raise TrafficError("Servers with weight 0 at the load balancer: %s. A canary starts from a fleet in service." % ", ".join(parked))

    raw = preset_steps(steps) if isinstance(steps, str) else steps
    if not isinstance(raw, list):
        raise TrafficError("appspec_canary_steps must be a preset name or a list of steps, got %r." % (steps,))
    thresholds = dict(DEFAULT_ANALYSIS, **(analysis or {}))
    unknown = sorted(set(thresholds) - set(DEFAULT_ANALYSIS))
    if unknown:
        raise TrafficError("Unknown canary analysis settings: %s (known: %s)." % (", ".join(unknown), ", ".join(DEFAULT_ANALYSIS)))
    if thresholds["inconclusive"] not in ("fail", "pass"):
        raise TrafficError("Canary analysis 'inconclusive' must be fail or pass, got %r." % thresholds["inconclusive"])

    fleet = len(hosts)
    normalized = []  # type: t.List[Step]
    done = 0
    for index, item in enumerate(raw, 1):
        where = "Canary step %d" % index
        if not isinstance(item, dict):
            raise TrafficError("%s must be a mapping with %s, got %r." % (where, ", ".join(STEP_KEYS), item))
        extra = sorted(set(item) - set(STEP_KEYS))
        if extra:
            raise TrafficError("%s: unknown key %s (known: %s)." % (where, ", ".join(extra), ", ".join(STEP_KEYS)))
        if "hosts" in item and "percent" in item:
            raise TrafficError("%s: give hosts or percent, not both." % where)
        if "hosts" in item:
            count = min(fleet, _whole(item["hosts"], where + " hosts", 1))
        elif "percent" in item:
            count = math.ceil(fleet * _whole(item["percent"], where + " percent", 1, 100) / 100)
        else:
            count = done
        if count < done:
            raise TrafficError("%s updates %d hosts, fewer than the %d of the step before: steps only widen." % (where, count, done))
        if count == 0:
            raise TrafficError("%s: no host runs the new version yet; give hosts or percent." % where)
        weight = _whole(item["weight"], where + " weight", 0, 100) if "weight" in item else round(100 * count / fleet)
        pause = item.get("pause", 0)
        approval = pause in ("approval", "approve") or (isinstance(pause, dict) and bool(pause.get("approval")))
        if isinstance(pause, dict):
            pause = pause.get("duration", 0)
        pause = 0 if approval and not isinstance(pause, int) else _whole(pause, where + " pause (seconds)", 0)
        wanted = item.get("analysis", bool(pause))
        if isinstance(wanted, dict):
            step_analysis = dict(thresholds, **wanted)  # type: t.Optional[t.Dict[str, t.Any]]
        elif isinstance(wanted, bool):
            step_analysis = dict(thresholds) if wanted else None
        else:
            raise TrafficError("%s analysis must be true, false or a mapping of thresholds, got %r." % (where, wanted))
        if step_analysis is not None and not pause:
            raise TrafficError("%s has an analysis but no pause: the pause is the window the analysis judges." % where)
        updated = order[:count]
        normalized.append(Step(index, count, weight, pause, approval, step_analysis, weights_for(updated, order, weight, base),
                               list(hosts[:count]), updated, order[count:]))
        done = count
    if done < fleet or not normalized or normalized[-1].weight != 100:
        normalized.append(Step(len(normalized) + 1, fleet, 100, 0, False, None, dict(base), list(hosts), order, []))

    batches = []  # type: t.List[int]
    batch_steps = []  # type: t.List[t.List[t.Dict[str, t.Any]]]
    done = 0
    for step in normalized:
        if step.hosts > done:
            batches.append(step.hosts - done)
            batch_steps.append([])
            done = step.hosts
        batch_steps[-1].append(step.as_dict())
    batch_of = {}  # type: t.Dict[str, int]
    for index, size in enumerate(batches):
        for host in hosts[len(batch_of):len(batch_of) + size]:
            batch_of[host] = index
    return {"steps": [step.as_dict() for step in normalized], "batches": batches, "batch_steps": batch_steps,
            "batch_of": batch_of, "base_weights": base, "restore": [{"name": s, "weight": w} for s, w in base.items()],
            "order": list(hosts), "servers": dict(names)}


# ---------------------------------------------------------------------------------------------- analysis

_RESPONSES = ("hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other")
_ERRORS = ("hrsp_5xx", "eresp", "econ")


def _counter(server: t.Mapping[str, t.Any], name: str) -> t.Optional[float]:
    counters = server.get("counters", server)
    value = counters.get(name)
    try:
        return None if value in (None, "") else float(value)
    except (TypeError, ValueError):
        return None


def _window(before: Servers, after: Servers, servers: t.Sequence[str]) -> t.Optional[t.Dict[str, float]]:
    """Responses, errors and mean response time of ``servers`` between two load balancer readings; None without counters."""
    responses = errors = 0.0
    latencies = []  # type: t.List[float]
    for server in servers:
        first, last = before.get(server, {}), after.get(server, {})
        if _counter(last, "hrsp_2xx") is None:
            return None
        for name in sorted(set(_RESPONSES + _ERRORS)):
            delta = (_counter(last, name) or 0) - (_counter(first, name) or 0)
            # A counter that went down was reset (a reload): count from zero.
            delta = delta if delta >= 0 else (_counter(last, name) or 0)
            if name in _RESPONSES:
                responses += delta
            if name in _ERRORS:
                errors += delta
        rtime = _counter(last, "rtime")
        if rtime is not None:
            latencies.append(rtime)
    return {"responses": responses, "errors": errors, "error_rate": errors / responses if responses else 0.0,
            "latency_ms": sum(latencies) / len(latencies) if latencies else 0.0}


def _loop_item(result: t.Mapping[str, t.Any]) -> t.Any:
    """The item of one result of a registered loop, under its ``loop_var``."""
    return result.get(result.get("ansible_loop_var") or "item")


def probe_outcomes(results: t.Sequence[t.Mapping[str, t.Any]]) -> t.List[t.Dict[str, t.Any]]:
    """The results of ``ansible.builtin.uri`` looped over ``[host, probe]`` pairs, as :func:`judge` takes them."""
    outcomes = []
    for result in results:
        host, probe = _loop_item(result) or ("", {})
        expected = int(probe.get("status", 200))
        status = result.get("status", -1)
        passed = not result.get("failed") and not result.get("unreachable") and status == expected
        outcomes.append({"host": host, "url": probe.get("url", ""), "status": status, "expected": expected,
                         "passed": passed, "msg": "" if passed else str(result.get("msg", ""))})
    return outcomes


def validation_outcomes(results: t.Sequence[t.Mapping[str, t.Any]]) -> t.List[t.Dict[str, t.Any]]:
    """The results of ``appspec.deploy.lifecycle_event`` (ValidateService) looped over hosts, as :func:`judge` takes them."""
    return [{"host": _loop_item(result) or "", "failed": bool(result.get("failed") or result.get("unreachable")),
             "msg": str(result.get("msg", "")) if result.get("failed") or result.get("unreachable") else ""}
            for result in results]


def judge(step: int, thresholds: t.Mapping[str, t.Any], before: Servers, after: Servers, updated: t.Sequence[str],
          old: t.Sequence[str], probes: t.Sequence[t.Mapping[str, t.Any]] = (),
          validations: t.Sequence[t.Mapping[str, t.Any]] = ()) -> t.Dict[str, t.Any]:
    """Judge the updated servers against the old ones over one step's window.

    Each metric is ``{name, updated, baseline, limit, passed, note}``; the verdict fails on the first
    failed metric in this order: probes, ValidateService, error rate, error rate increase, latency. A
    window with fewer than ``min_requests`` responses from the updated servers is inconclusive, which
    fails unless ``inconclusive`` is ``pass``. Without load balancer counters (nginx) only probes and
    ValidateService are judged, and the verdict says so.
    """
    metrics = []  # type: t.List[t.Dict[str, t.Any]]

    def metric(name: str, value: t.Any, baseline: t.Any, limit: t.Any, passed: bool, note: str = "") -> None:
        metrics.append({"name": name, "updated": value, "baseline": baseline, "limit": limit, "passed": passed, "note": note})

    for probe in probes:
        metric("probe %s on %s" % (probe.get("url", ""), probe.get("host", "")), probe.get("status"),
               None, probe.get("expected", 200), bool(probe.get("passed")), str(probe.get("msg", "")))
    for check in validations:
        metric("ValidateService on %s" % check.get("host", ""), "failed" if check.get("failed") else "succeeded",
               None, "succeeded", not check.get("failed"), str(check.get("msg", "")))

    new, base = _window(before, after, updated), _window(before, after, old)
    notes = []  # type: t.List[str]
    if new is None:
        notes.append("the load balancer keeps no per-server counters: judged by probes and ValidateService only")
    elif new["responses"] < int(thresholds["min_requests"]):
        passed = thresholds["inconclusive"] == "pass"
        metric("requests", new["responses"], base["responses"] if base else None, int(thresholds["min_requests"]), passed,
               "too few responses from the updated hosts to judge (inconclusive: %s)" % thresholds["inconclusive"])
    else:
        limit = float(thresholds["max_error_rate"])
        metric("error rate", round(new["error_rate"], 4), round(base["error_rate"], 4) if base else None, limit,
               new["error_rate"] <= limit, "%d of %d responses failed" % (new["errors"], new["responses"]))
        if base is not None and base["responses"]:
            increase = float(thresholds["max_error_rate_increase"])
            metric("error rate increase", round(new["error_rate"] - base["error_rate"], 4), None, increase,
                   new["error_rate"] - base["error_rate"] <= increase)
        max_ms = float(thresholds["max_latency_ms"] or 0)
        if max_ms:
            metric("latency ms", new["latency_ms"], base["latency_ms"] if base else None, max_ms, new["latency_ms"] <= max_ms)
        ratio = float(thresholds["max_latency_ratio"] or 0)
        if ratio and base is not None and base["latency_ms"] and new["latency_ms"] >= float(thresholds["latency_floor_ms"]):
            metric("latency ratio", round(new["latency_ms"] / base["latency_ms"], 2), base["latency_ms"], ratio,
                   new["latency_ms"] / base["latency_ms"] <= ratio)
    failed = next((item for item in metrics if not item["passed"]), None)
    return {"step": step, "passed": failed is None, "metrics": metrics, "notes": notes,
            "failed_metric": failed, "updated": list(updated), "baseline": list(old),
            "summary": ("step %d passed" % step) if failed is None else "step %d failed on %s: updated %s, baseline %s, limit %s" % (
                step, failed["name"], failed["updated"], failed["baseline"], failed["limit"])}
