# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The watch after a deployment (docs/pipeline.md, "Watch"): settle its settings, judge one round, decide.

A watch is ``rounds`` rounds, one every ``interval`` seconds for ``seconds`` seconds. In each round every
host of the deployment runs every probe (HTTP probes with ``ansible.builtin.uri`` and command probes, ON
the host), and with haproxy the load balancer's counters are read at the start and the end of the round
(``_traffic._window``, the canary analysis's reading). A round fails when

* the share of failed probes is above ``max_failure_rate`` (of all probes of all hosts in that round),
* a probe took longer than ``max_latency_ms`` (0: no limit),
* haproxy's error rate over the round is above ``max_error_rate``, or its mean response time above
  ``max_latency_ms``, with at least ``min_requests`` responses (fewer: haproxy is not judged that round).

The first failed round ends the watch with the verdict ``failed``; the playbook then rolls the whole
deployment back. Plain values in, plain values out; a :class:`WatchError` on settings a user must fix.
"""

from __future__ import annotations

import math
import typing as t

from ansible_collections.appspec.deploy.plugins.module_utils._errors import DeployError
from ansible_collections.appspec.deploy.plugins.plugin_utils._traffic import Servers, _loop_item, _window, probe_outcomes

WATCHING, PASSED, FAILED = "watching", "passed", "failed"

DEFAULTS = {
    "seconds": 0,  # 0: no watch
    "interval": 10,
    "max_failure_rate": 0.2,  # of the probes of one round, every host together
    "max_latency_ms": 0,  # 0: latency is not judged
    "max_error_rate": 0.05,  # haproxy: failed responses over all responses in one round
    "min_requests": 10,  # haproxy: fewer responses in a round are not judged
}  # type: t.Dict[str, t.Any]


class WatchError(DeployError):
    """Watch settings that cannot be used."""


def _number(value: t.Any, name: str, low: float, high: t.Optional[float] = None, whole: bool = False) -> float:
    try:
        if isinstance(value, bool):
            raise ValueError(value)
        number = float(str(value).strip())
    except (TypeError, ValueError):
        raise WatchError("%s must be a number, not %r" % (name, value))
    if whole and number != int(number):
        raise WatchError("%s must be a whole number, not %r" % (name, value))
    if number < low or (high is not None and number > high):
        raise WatchError("%s must be between %s and %s, not %r" % (name, low, "any" if high is None else high, value))
    return int(number) if whole else number


def settle(seconds: t.Any = None, interval: t.Any = None, max_failure_rate: t.Any = None, max_latency_ms: t.Any = None,
           max_error_rate: t.Any = None, min_requests: t.Any = None, probes: t.Any = None) -> t.Dict[str, t.Any]:
    """The watch's settings, checked (values may be survey text), and its number of rounds.

    ``probes``: ``[{url, status?, timeout?}]`` (HTTP, from the host itself) and ``[{command, timeout?}]``.
    """
    given = {"seconds": seconds, "interval": interval, "max_failure_rate": max_failure_rate,
             "max_latency_ms": max_latency_ms, "max_error_rate": max_error_rate, "min_requests": min_requests}
    values = {key: DEFAULTS[key] if value in (None, "") else value for key, value in given.items()}
    settings = {
        "seconds": _number(values["seconds"], "appspec_watch_seconds", 0, whole=True),
        "interval": _number(values["interval"], "appspec_watch_interval", 1, whole=True),
        "max_failure_rate": _number(values["max_failure_rate"], "appspec_watch_max_failure_rate", 0, 1),
        "max_latency_ms": _number(values["max_latency_ms"], "appspec_watch_max_latency_ms", 0),
        "max_error_rate": _number(values["max_error_rate"], "appspec_watch_max_error_rate", 0, 1),
        "min_requests": _number(values["min_requests"], "appspec_watch_min_requests", 0, whole=True),
    }  # type: t.Dict[str, t.Any]
    http, commands = [], []
    for index, probe in enumerate(probes or []):
        where = "appspec_watch_probes[%d]" % index
        if not isinstance(probe, t.Mapping) or ("url" in probe) == ("command" in probe):
            raise WatchError("%s must be a mapping with url (and status, timeout) or with command (and timeout), not %r"
                             % (where, probe))
        unknown = sorted(set(probe) - {"url", "status", "timeout", "command"})
        if unknown:
            raise WatchError("%s: unknown key %s (known: url, status, timeout, command)" % (where, ", ".join(unknown)))
        timeout = _number(probe.get("timeout", 5), where + ".timeout", 1, whole=True)
        if "url" in probe:
            status = _number(probe.get("status", 200), where + ".status", 100, 599, whole=True)
            http.append({"url": str(probe["url"]), "status": status, "timeout": timeout})
        else:
            if not str(probe["command"]).strip():
                raise WatchError("%s.command is empty" % where)
            commands.append({"command": str(probe["command"]), "timeout": timeout})
    settings["http_probes"], settings["command_probes"] = http, commands
    settings["rounds"] = math.ceil(settings["seconds"] / settings["interval"]) if settings["seconds"] else 0
    return settings


def command_outcomes(results: t.Sequence[t.Mapping[str, t.Any]]) -> t.List[t.Dict[str, t.Any]]:
    """The results of ``ansible.builtin.command`` looped over ``[host, probe]`` pairs: passed when it exits 0."""
    outcomes = []
    for result in results:
        host, probe = _loop_item(result) or ("", {})
        rc = result.get("rc", -1)
        passed = not result.get("unreachable") and rc == 0
        detail = (result.get("stderr") or result.get("stdout") or result.get("msg") or "") if not passed else ""
        outcomes.append({"host": host, "command": probe.get("command", ""), "rc": rc, "passed": passed,
                         "msg": str(detail).strip()[-200:]})
    return outcomes


def _elapsed_ms(result: t.Mapping[str, t.Any]) -> t.Optional[float]:
    value = result.get("elapsed")
    try:
        return None if value is None else float(value) * 1000.0
    except (TypeError, ValueError):
        return None


def judge_round(number: int, settings: t.Mapping[str, t.Any], http_results: t.Sequence[t.Mapping[str, t.Any]] = (),
                command_results: t.Sequence[t.Mapping[str, t.Any]] = (), before: t.Optional[Servers] = None,
                after: t.Optional[Servers] = None, servers: t.Sequence[str] = ()) -> t.Dict[str, t.Any]:
    """Judge one round from raw registered results (uri and command loops over ``[host, probe]``) and two
    readings of haproxy (``before``/``after``: ``load_balancer`` ``servers``; None without haproxy)."""
    http = probe_outcomes(http_results)
    for outcome, result in zip(http, http_results):
        outcome["latency_ms"] = _elapsed_ms(result)
    commands = command_outcomes(command_results)
    probes = [dict(item, kind="http") for item in http] + [dict(item, kind="command") for item in commands]
    failed = [item for item in probes if not item["passed"]]
    problems = []  # type: t.List[str]
    rate = len(failed) / len(probes) if probes else 0.0
    if probes and rate > float(settings["max_failure_rate"]):
        which = ["%s %s on %s: %s" % (item["kind"], item.get("url") or item.get("command"), item["host"],
                                      item.get("msg") or item.get("status", item.get("rc"))) for item in failed[:5]]
        problems.append("%d of %d probes failed (%.0f%% > %.0f%%): %s" % (
            len(failed), len(probes), 100 * rate, 100 * float(settings["max_failure_rate"]), "; ".join(which)))
    max_ms = float(settings.get("max_latency_ms") or 0)
    slow = [item for item in http if max_ms and item["passed"] and (item["latency_ms"] or 0) > max_ms]
    if slow:
        problems.append("%d probe%s slower than %d ms: %s" % (len(slow), "" if len(slow) == 1 else "s", max_ms, "; ".join(
            "%s on %s took %d ms" % (item["url"], item["host"], item["latency_ms"]) for item in slow[:5])))
    balancer = None
    if before is not None and after is not None and servers:
        balancer = _window(before, after, servers)
        if balancer is not None and balancer["responses"] >= int(settings["min_requests"]):
            if balancer["error_rate"] > float(settings["max_error_rate"]):
                problems.append("haproxy: %d of %d responses failed (error rate %.3f > %.3f)" % (
                    balancer["errors"], balancer["responses"], balancer["error_rate"], float(settings["max_error_rate"])))
            if max_ms and balancer["latency_ms"] > max_ms:
                problems.append("haproxy: mean response time %d ms > %d ms" % (balancer["latency_ms"], max_ms))
    passed = not problems
    line = "round %d/%s: %s, %d/%d probes passed%s" % (
        number, settings.get("rounds", "?"), "ok" if passed else "FAILED", len(probes) - len(failed), len(probes),
        "" if balancer is None else ", haproxy %d responses, %d errors" % (balancer["responses"], balancer["errors"]))
    if problems:
        line += ": " + "; ".join(problems)
    return {"round": number, "passed": passed, "failure_rate": round(rate, 4), "probes": probes, "failed": failed,
            "load_balancer": balancer, "problems": problems, "line": line}


def decide(state: t.Optional[t.Mapping[str, t.Any]], verdict: t.Mapping[str, t.Any], rounds: int) -> t.Dict[str, t.Any]:
    """The watch after one more round: ``verdict`` ``watching``, ``passed`` (every round passed) or ``failed``
    (on the first failed round), ``reason``, ``rounds`` done, and one short entry per round."""
    done = list((state or {}).get("history") or [])
    done.append({"round": verdict["round"], "passed": verdict["passed"], "failure_rate": verdict["failure_rate"],
                 "problems": list(verdict["problems"])})
    if not verdict["passed"]:
        status, reason = FAILED, "round %d of %d: %s" % (verdict["round"], rounds, "; ".join(verdict["problems"]))
    elif len(done) >= rounds:
        status, reason = PASSED, "%d round%s passed" % (len(done), "" if len(done) == 1 else "s")
    else:
        status, reason = WATCHING, ""
    return {"verdict": status, "reason": reason, "rounds": len(done), "planned_rounds": rounds, "history": done}
