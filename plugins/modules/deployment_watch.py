# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: deployment_watch
short_description: Watch a deployment after it succeeded - settle the watch, judge one round, record the verdict
version_added: 0.1.0
description:
  - The watch of C(playbooks/watch.yml) (C(docs/pipeline.md)), run on the controller. A watch is a number of rounds, one
    every O(interval) seconds for O(seconds) seconds. In each round the playbook runs every probe on every host of the
    deployment (HTTP probes with M(ansible.builtin.uri), command probes with M(ansible.builtin.command)), and reads haproxy's
    per-server counters at the start and the end of the round where the deployment has haproxy.
  - O(operation=settle) checks the settings and returns RV(settings) with the number of rounds.
  - O(operation=judge) judges one round from the raw registered results. A round fails when the share of failed probes
    (of every probe on every host in that round) is above O(max_failure_rate), when a probe or haproxy's mean response
    time is above O(max_latency_ms), or when haproxy's error rate (5xx, response and connection errors over all
    responses) is above O(max_error_rate) with at least O(min_requests) responses. The first failed round ends the
    watch - the C(verdict) of RV(watch) is C(failed) and the playbook rolls the whole deployment back.
  - O(operation=record) adds the watch (verdict, reason, rounds) to the deployment's record in the revision history
    (M(appspec.deploy.deployment_history)); a failed watch makes the deployment C(failed) there, so promotion refuses it.
author:
  - appspec.deploy developers (@appspec-deploy)
extends_documentation_fragment:
  - appspec.deploy.attributes
  - appspec.deploy.attributes.controller_action
attributes:
  check_mode:
    support: full
    details:
      - Settles and judges the same way in check mode; O(operation=record) writes nothing then.
  idempotent:
    support: partial
    details:
      - O(operation=record) rewrites the record with the same watch.
options:
  operation:
    description: What to do.
    type: str
    required: true
    choices: [settle, judge, record]
    version_added: 0.1.0
  deployment_id:
    description: The deployment watched.
    type: str
    required: true
    version_added: 0.1.0
  seconds:
    description: How long to watch (C(appspec_watch_seconds)); 0 is no watch. For O(operation=settle).
    type: raw
    version_added: 0.1.0
  interval:
    description: Seconds between rounds (C(appspec_watch_interval), default 10). For O(operation=settle).
    type: raw
    version_added: 0.1.0
  max_failure_rate:
    description: The share of failed probes in one round above which the round fails (default 0.2). For O(operation=settle).
    type: raw
    version_added: 0.1.0
  max_latency_ms:
    description: The slowest an HTTP probe, or haproxy's mean response time, may be (default 0, not judged).
    type: raw
    version_added: 0.1.0
  max_error_rate:
    description: haproxy's error rate over one round above which the round fails (default 0.05).
    type: raw
    version_added: 0.1.0
  min_requests:
    description: Fewer haproxy responses in a round are not judged (default 10).
    type: raw
    version_added: 0.1.0
  probes:
    description:
      - The probes (C(appspec_watch_probes)) - C({url, status, timeout}) requested by each host itself, or
        C({command, timeout}) run on each host (no shell), passed when it exits 0.
    type: list
    elements: raw
    default: []
    version_added: 0.1.0
  settings:
    description: RV(settings) of O(operation=settle). Required for O(operation=judge).
    type: dict
    default: {}
    version_added: 0.1.0
  state:
    description: RV(watch) of the round before (empty for the first round); for O(operation=record), the last one.
    type: dict
    default: {}
    version_added: 0.1.0
  round:
    description: The round judged, from 1.
    type: int
    default: 1
    version_added: 0.1.0
  hosts:
    description: The hosts of the deployment (their servers at the load balancer, and their rollback for the record).
    type: list
    elements: str
    default: []
    version_added: 0.1.0
  http_results:
    description: The C(results) of M(ansible.builtin.uri) looped over C([host, probe]) pairs.
    type: list
    elements: dict
    default: []
    version_added: 0.1.0
  command_results:
    description: The C(results) of M(ansible.builtin.command) looped over C([host, probe]) pairs.
    type: list
    elements: dict
    default: []
    version_added: 0.1.0
  before:
    description: haproxy's servers at the start of the round (M(appspec.deploy.load_balancer) with C(state=query)).
    type: dict
    version_added: 0.1.0
  after:
    description: haproxy's servers at the end of the round.
    type: dict
    version_added: 0.1.0
  application:
    description: The application, for O(operation=record).
    type: str
    default: ""
    version_added: 0.1.0
  history:
    description: Where the revision history is (a directory or C(s3://bucket/prefix); empty is the default directory).
    type: str
    default: ""
    version_added: 0.1.0
  s3_endpoint_url:
    description: An S3-compatible endpoint for an S3 history.
    type: str
    version_added: 0.1.0
  s3_region:
    description: The region of an S3 history.
    type: str
    version_added: 0.1.0
seealso:
  - module: appspec.deploy.canary_analysis
  - module: appspec.deploy.deployment_history
"""

EXAMPLES = r"""
- name: Judge one round of the watch
  appspec.deploy.deployment_watch:
    operation: judge
    deployment_id: "{{ appspec_deployment.deployment_id }}"
    settings: "{{ watch_plan.settings }}"
    state: "{{ watch_judged.watch | default({}) }}"
    round: 1
    hosts: "{{ ansible_play_hosts }}"
    http_results: "{{ watch_http.results }}"
  register: watch_judged
"""

RETURN = r"""
deployment_id:
  description: O(deployment_id).
  returned: always
  type: str
  sample: d-ABCDEFGHI
settings:
  description: The checked settings, with C(rounds), C(http_probes) and C(command_probes).
  returned: O(operation=settle)
  type: dict
  sample: {seconds: 60, interval: 10, rounds: 6, max_failure_rate: 0.2, http_probes: [], command_probes: []}
round:
  description: The round judged - C(passed), C(failure_rate), C(probes), C(failed), C(load_balancer), C(problems), C(line).
  returned: O(operation=judge)
  type: dict
  sample: {round: 2, passed: false, failure_rate: 1.0, problems: ["2 of 2 probes failed"]}
watch:
  description:
    - The watch so far - C(verdict) (C(watching), C(passed) or C(failed)), C(reason), C(rounds) done,
      C(planned_rounds) and C(history) (one entry per round).
  returned: O(operation=judge)
  type: dict
  sample: {verdict: failed, reason: "round 2 of 6: 2 of 2 probes failed", rounds: 2, planned_rounds: 6}
record:
  description: The deployment's record in the history, with its C(watch).
  returned: O(operation=record) when the deployment is in the history
  type: dict
  sample: {deployment_id: d-ABCDEFGHI, status: failed, watch: {verdict: failed}}
"""
