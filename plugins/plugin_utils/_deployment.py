# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""CodeDeploy's deployment rules, decided on the controller: deployment configs, the fleet gate, the outcome.

Plain values in, plain values out; a :class:`DeploymentConfigError` on a config a user must fix.
Host states are ``{hostname: {"deployment": id, "status": "in_progress"|"succeeded"|"failed"}}``;
only entries of the deployment being decided count.
"""

from __future__ import annotations

import dataclasses
import json
import re
import typing as t

from ansible_collections.appspec.deploy.plugins.module_utils import _layout
from ansible_collections.appspec.deploy.plugins.module_utils._errors import DeployError

# CodeDeploy's predefined EC2/on-premises configs. MOST_CONCURRENCY is not a type users can write:
# it is how CodeDeploy itself describes OneAtATime (all hosts but one must stay healthy).
BUILTIN_CONFIGS: t.Dict[str, t.Dict[str, t.Any]] = {
    "CodeDeployDefault.AllAtOnce": {"type": "HOST_COUNT", "value": 0},
    "CodeDeployDefault.HalfAtATime": {"type": "FLEET_PERCENT", "value": 50},
    "CodeDeployDefault.OneAtATime": {"type": "MOST_CONCURRENCY", "value": 1},
}
CUSTOM_TYPES = ("HOST_COUNT", "FLEET_PERCENT")
_WHOLE_NUMBER = re.compile(r"^[0-9]+$")
_SPELLINGS = (
    "one of %s, or a minimum of healthy hosts written as HOST_COUNT:n, HOST_COUNT=n, FLEET_PERCENT:p "
    "(p from 0 to 100), {type: HOST_COUNT|FLEET_PERCENT, value: n} or "
    "{minimum_healthy_hosts: {type: HOST_COUNT|FLEET_PERCENT, value: n}}, n a whole number of 0 or more"
    % ", ".join(BUILTIN_CONFIGS))
# Statuses that count a host as failed: in_progress means it never finished (unreachable, interrupted).
# "refused": another deployment's lock turned the host away before anything ran (never rolled back).
_FAILED_STATUSES = ("failed", "in_progress", "refused", "unreachable")

HostStates = t.Mapping[str, t.Mapping[str, t.Any]]


class DeploymentConfigError(DeployError):
    """A deployment config that cannot be used; the message names the accepted spellings."""


@dataclasses.dataclass(frozen=True)
class HealthPlan:
    """A deployment config applied to a fleet of ``hosts`` hosts."""

    config_name: str  # the config as the user gave it, for messages
    type: str  # HOST_COUNT, FLEET_PERCENT or MOST_CONCURRENCY
    value: int
    hosts: int
    min_healthy: int
    max_unhealthy: int  # also the batch size
    required_successes: int

    def as_dict(self) -> t.Dict[str, t.Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class GateDecision:
    stop: bool
    reason: str
    failed_so_far: t.List[str]
    not_deployed: t.List[str]

    def as_dict(self) -> t.Dict[str, t.Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Outcome:
    deployment_id: str
    failed: bool
    stopped: bool
    stopped_reason: str
    succeeded: t.List[str]
    failed_hosts: t.List[str]
    untouched: t.List[str]
    required_successes: int

    def as_dict(self) -> t.Dict[str, t.Any]:
        return dataclasses.asdict(self)


def _shown(config: t.Any) -> str:
    """The config as the user gave it: the text itself, or a mapping as JSON."""
    if isinstance(config, str):
        return config
    try:
        return json.dumps(config, sort_keys=True)
    except (TypeError, ValueError):
        return repr(config)


def _quoted(config: t.Any) -> str:
    return json.dumps(config) if isinstance(config, str) else _shown(config)


def _type_and_value(config: t.Any) -> t.Tuple[str, str]:
    """The custom (type, value) the user wrote, as text (survey answers are text too); '' when missing."""
    if isinstance(config, str):
        separator = "=" if "=" in config else ":"
        kind, found, value = config.partition(separator)
        return (kind.strip().upper(), value.strip()) if found else ("", "")
    if isinstance(config, t.Mapping):
        inner = config.get("minimum_healthy_hosts", config)
        if isinstance(inner, t.Mapping):
            kind, value = inner.get("type"), inner.get("value")
            return (kind.strip().upper() if isinstance(kind, str) else "",
                    "" if value is None else str(value).strip())  # True and 2.5 stay refused as "True", "2.5"
    return "", ""


def _refuse(config: t.Any, problem: str) -> DeploymentConfigError:
    return DeploymentConfigError("The deployment config %s %s. Use %s." % (_quoted(config), problem, _SPELLINGS))


def plan_health(config: t.Any, host_count: int) -> HealthPlan:
    """The minimum of healthy hosts, the batch size and the successes required for ``host_count`` hosts."""
    if isinstance(host_count, bool) or not isinstance(host_count, int) or host_count < 1:
        raise DeploymentConfigError("A deployment needs at least one host, not %r." % (host_count,))
    builtin = BUILTIN_CONFIGS.get(config.strip()) if isinstance(config, str) else None
    if builtin:
        kind, value = builtin["type"], int(builtin["value"])
    else:
        kind, text = _type_and_value(config)
        if kind == "MOST_CONCURRENCY":
            raise _refuse(config, "uses MOST_CONCURRENCY, which only CodeDeployDefault.OneAtATime stands for")
        if kind not in CUSTOM_TYPES:
            raise _refuse(config, "is not a known deployment config")
        if not text:
            raise _refuse(config, "has no value")
        if not _WHOLE_NUMBER.match(text):
            raise _refuse(config, "has the value %s, not a whole number of 0 or more" % json.dumps(text))
        value = int(text)
        if kind == "FLEET_PERCENT" and value > 100:
            raise _refuse(config, "asks for %d%% of the fleet" % value)

    if kind == "MOST_CONCURRENCY":
        min_healthy = host_count - 1
    elif kind == "HOST_COUNT":
        min_healthy = value
    else:
        min_healthy = -(-host_count * value // 100)  # a percentage of hosts rounds up
    # A predefined config still deploys a one-host fleet; a custom one may not (CodeDeploy refuses it).
    max_unhealthy = max(1, host_count - min_healthy) if builtin else host_count - min_healthy
    if max_unhealthy < 1:
        raise DeploymentConfigError(
            "The deployment config %s requires %d healthy hosts out of %d: no host could ever be taken "
            "offline to deploy (CodeDeploy's HEALTH_CONSTRAINTS_INVALID). Ask for fewer healthy hosts."
            % (_quoted(config), min_healthy, host_count))
    return HealthPlan(config_name=_shown(config), type=kind, value=value, hosts=host_count,
                      min_healthy=min_healthy, max_unhealthy=max_unhealthy,
                      required_successes=max(1, min_healthy))


def new_deployment_id() -> str:
    """A new id in CodeDeploy's form (``d-`` and nine characters), made once per run."""
    return _layout.new_deployment_id()


def host_states(hostvars: t.Mapping[str, t.Any], hosts: t.Iterable[str]) -> t.Dict[str, t.Dict[str, t.Any]]:
    """Each host's state as roles/lifecycle records it (``lifecycle_deployment``, ``lifecycle_status``)."""
    states = {}
    for host in hosts:
        variables = hostvars[host] if host in hostvars else {}
        if variables.get("lifecycle_deployment") is not None:
            states[host] = {"deployment": variables.get("lifecycle_deployment"),
                            "status": variables.get("lifecycle_status")}
    return states


def _hosts_with(deployment_id: str, hosts: t.Iterable[str], host_states: HostStates,
                statuses: t.Optional[t.Sequence[str]] = None) -> t.List[str]:
    """The hosts, in the order given, that this deployment touched (and whose status is one of ``statuses``)."""
    found = []
    for host in hosts:
        state = host_states.get(host) or {}
        if state.get("deployment") == deployment_id and (statuses is None or state.get("status") in statuses):
            found.append(host)
    return found


def gate(deployment_id: str, max_unhealthy: int, all_hosts: t.Sequence[str], batch: t.Sequence[str],
         host_states: HostStates) -> GateDecision:
    """Whether the next batch may start: CodeDeploy's minimum of healthy hosts, fleet-wide, over the whole run.

    A host that failed in an earlier batch still counts as out of service, so the failures so far plus
    the batch may not exceed ``max_unhealthy``. When they would, the deployment stops before the batch.
    """
    failed = _hosts_with(deployment_id, all_hosts, host_states, _FAILED_STATUSES)
    touched = set(_hosts_with(deployment_id, all_hosts, host_states))
    not_deployed = [host for host in all_hosts if host not in touched]
    if len(failed) + len(batch) <= max_unhealthy:
        return GateDecision(stop=False, reason="", failed_so_far=failed, not_deployed=not_deployed)
    reason = (
        "%d host(s) failed so far%s; deploying the next %d host(s) would leave fewer healthy hosts than the "
        "deployment config allows (at most %d of %d out of service)."
        % (len(failed), " (%s)" % ", ".join(failed) if failed else "", len(batch), max_unhealthy, len(all_hosts)))
    return GateDecision(stop=True, reason=reason, failed_so_far=failed, not_deployed=not_deployed)


def outcome(deployment_id: str, hosts: t.Sequence[str], host_states: HostStates, required_successes: int,
            stopped: bool, stopped_reason: str = "") -> Outcome:
    """CodeDeploy's verdict after the last batch.

    The deployment fails when the gate stopped it, when a host was never deployed to, or when fewer
    than ``required_successes`` hosts succeeded (see :func:`plan_health`).
    """
    succeeded = _hosts_with(deployment_id, hosts, host_states, ("succeeded",))
    failed_hosts = _hosts_with(deployment_id, hosts, host_states, _FAILED_STATUSES)
    decided = set(succeeded) | set(failed_hosts)
    untouched = [host for host in hosts if host not in decided]
    return Outcome(
        deployment_id=deployment_id,
        failed=bool(stopped or untouched or len(succeeded) < required_successes),
        stopped=bool(stopped),
        stopped_reason=stopped_reason or "",
        succeeded=succeeded,
        failed_hosts=failed_hosts,
        untouched=untouched,
        required_successes=required_successes,
    )
