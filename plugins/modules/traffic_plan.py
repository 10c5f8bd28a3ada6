# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: traffic_plan
short_description: Plan a blue/green switch or the steps of a canary deployment
version_added: 0.1.0
description:
  - Plans on the controller, from a reading of the load balancer (RV(appspec.deploy.load_balancer#module:servers)
    of M(appspec.deploy.load_balancer) with O(appspec.deploy.load_balancer#module:state=query)) and the inventory,
    how traffic moves. See C(docs/traffic.md).
  - With O(strategy=blue_green), finds which of the two O(groups) takes traffic now (all of its servers ready with a
    weight), so that repeated deployments alternate without editing the inventory, and plans the switch to the other
    group. A group with only some of its servers in service, or both groups in service, is refused unless
    O(live_group) says which is live. With no group in service, the first group is the target.
  - With O(strategy=canary), turns O(steps) (a preset named after CodeDeploy's, or a list) into cumulative steps with
    the weight of every server at each step, and the batches of hosts to update for C(serial).
  - A host's server name at the load balancer is its C(appspec_lb_server), else C(appspec_load_balancer.server), else
    its inventory name.
author:
  - appspec.deploy developers (@appspec-deploy)
extends_documentation_fragment:
  - appspec.deploy.attributes
  - appspec.deploy.attributes.controller_action
attributes:
  check_mode:
    support: full
    details:
      - Plans the same way in check mode; it changes nothing in either mode.
  idempotent:
    support: full
options:
  strategy:
    description: What to plan.
    type: str
    choices: [blue_green, canary]
    required: true
    version_added: 0.1.0
  servers:
    description: The load balancer's servers now, server name to its C(state) and C(weight) (and counters).
    type: dict
    required: true
    version_added: 0.1.0
  hosts:
    description:
      - The hosts this run targets (C(ansible_play_hosts_all)). Blue/green refuses a run that leaves out a host of the
        target group; a canary updates these hosts in this order.
    type: list
    elements: str
    required: true
    version_added: 0.1.0
  groups:
    description: Blue/green only. The two inventory groups, as a list or one comma-separated string.
    type: raw
    default: []
    version_added: 0.1.0
  live_group:
    description: Blue/green only. The group that runs the current version, when the load balancer cannot tell.
    type: str
    default: ""
    version_added: 0.1.0
  steps:
    description:
      - Canary only. A preset (V(CodeDeployDefault.Canary10Percent5Minutes), V(CodeDeployDefault.Linear10PercentEvery1Minute),
        any C(CanaryXPercentYMinutes) or C(LinearXPercentEveryYMinutes), with or without C(ECS)/C(Lambda), or
        V(CodeDeployDefault.AllAtOnce)), or a list of steps.
      - Each step is a mapping with C(hosts) (how many hosts run the new version after it) or C(percent) (of the fleet,
        rounded up), C(weight) (percent of the traffic for them; default their share of the fleet), C(pause) (seconds,
        or V(approval) to wait for an approval), and C(analysis) (true, false or thresholds overriding O(analysis); default
        true when the step pauses). Steps only widen; a last step to every host at 100 percent is added when missing.
    type: raw
    default: CodeDeployDefault.Canary10Percent5Minutes
    version_added: 0.1.0
  analysis:
    description:
      - Canary only. Thresholds of the analysis, see C(docs/traffic.md) for each and its default
        (C(max_error_rate), C(max_error_rate_increase), C(max_latency_ms), C(max_latency_ratio), C(latency_floor_ms),
        C(min_requests), C(inconclusive), C(probes), C(validate_service)).
    type: dict
    default: {}
    version_added: 0.1.0
seealso:
  - module: appspec.deploy.load_balancer
  - module: appspec.deploy.canary_analysis
"""

EXAMPLES = r"""
- name: Read the load balancer
  appspec.deploy.load_balancer:
    type: haproxy
    state: query
  delegate_to: lb1
  register: reading
  run_once: true

- name: Plan the switch to the idle group
  appspec.deploy.traffic_plan:
    strategy: blue_green
    groups: [blue, green]
    servers: "{{ reading.servers }}"
    hosts: "{{ ansible_play_hosts_all }}"
  register: switch
  run_once: true
"""

RETURN = r"""
plan:
  description: The plan.
  returned: success
  type: dict
  contains:
    live_group:
      description: Blue/green. The group in service now (null when none is).
      type: str
      sample: blue
    target_group:
      description: Blue/green. The group deployed to, then put in service.
      type: str
      sample: green
    live_hosts:
      description: Blue/green. The hosts of RV(plan.live_group).
      type: list
      elements: str
      sample: [blue1, blue2]
    target_hosts:
      description: Blue/green. The hosts of RV(plan.target_group).
      type: list
      elements: str
      sample: [green1, green2]
    servers:
      description: Each host's server name at the load balancer.
      type: dict
      sample: {blue1: blue1}
    allow:
      description: Blue/green. The load balancer changes that put the target group in service.
      type: list
      elements: dict
      sample: [{name: green1, state: ready}]
    block:
      description: Blue/green. The changes that take the live group out of service (drained first).
      type: list
      elements: dict
      sample: [{name: blue1, state: maint}]
    back:
      description: Blue/green. The changes that put traffic back on the live group only.
      type: list
      elements: dict
      sample: [{name: blue1, state: ready}, {name: green1, state: maint}]
    steps:
      description:
        - Canary. Each step with C(number), C(hosts), C(weight), C(pause), C(approval), C(analysis) (the thresholds, or
          null), C(weights) (every server's weight), C(changes) (the same weights as load balancer changes),
          C(updated_hosts) (the hosts on the new version after the step), C(updated) (their servers) and C(baseline)
          (the servers still on the old version).
      type: list
      elements: dict
      sample: [{number: 1, hosts: 1, weight: 10, pause: 300, approval: false, analysis: {}, weights: {web1: 85, web2: 256},
                changes: [{name: web1, weight: 85}, {name: web2, weight: 256}]}]
    batches:
      description: Canary. How many hosts each batch adds, for C(serial).
      type: list
      elements: int
      sample: [1, 3]
    batch_steps:
      description: Canary. The steps (as in RV(plan.steps)) that run after each batch.
      type: list
      elements: list
      sample: [[{number: 1}], [{number: 2}]]
    batch_of:
      description: Canary. Each host's batch, an index of RV(plan.batches).
      type: dict
      sample: {web1: 0, web2: 1}
    base_weights:
      description: Canary. Every server's weight before the deployment, restored at its end or when it aborts.
      type: dict
      sample: {web1: 1, web2: 1}
    restore:
      description: Canary. The load balancer changes that put RV(plan.base_weights) back.
      type: list
      elements: dict
      sample: [{name: web1, weight: 1}]
    order:
      description: Canary. The hosts in update order.
      type: list
      elements: str
      sample: [web1, web2]
"""
