# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: canary_analysis
short_description: Judge one step of a canary deployment against the hosts still on the old version
version_added: 0.1.0
description:
  - Compares the updated servers O(updated) with the O(baseline) servers over one step's window, from two readings of the
    load balancer's own per-server counters (O(before) and O(after), as M(appspec.deploy.load_balancer) returns them with
    O(appspec.deploy.load_balancer#module:state=query)), plus the results of HTTP probes and of ValidateService hooks.
  - The error rate is 5xx responses plus response and connection errors over all responses; the latency is haproxy's
    mean response time. A step fails on the first failed metric, in this order, probes, ValidateService, error rate,
    error rate increase over the baseline, latency, latency ratio. Fewer than C(min_requests) responses from the
    updated servers is inconclusive, which fails unless C(inconclusive=pass).
  - Without counters (nginx keeps none) only probes and ValidateService are judged, and the result says so.
  - Runs on the controller only. The task does not fail when the analysis fails; see RV(analysis.passed).
author:
  - appspec.deploy developers (@appspec-deploy)
extends_documentation_fragment:
  - appspec.deploy.attributes
  - appspec.deploy.attributes.controller_action
attributes:
  check_mode:
    support: full
    details:
      - Judges the same way in check mode; it changes nothing in either mode.
  idempotent:
    support: full
options:
  deployment_id:
    description: The deployment, for the report.
    type: str
    required: true
    version_added: 0.1.0
  step:
    description: The step number, for the report.
    type: int
    required: true
    version_added: 0.1.0
  thresholds:
    description: The step's thresholds (RV(appspec.deploy.traffic_plan#module:plan.steps[].analysis)).
    type: dict
    required: true
    version_added: 0.1.0
  before:
    description: The load balancer's servers at the start of the window.
    type: dict
    required: true
    version_added: 0.1.0
  after:
    description: The load balancer's servers at the end of the window.
    type: dict
    required: true
    version_added: 0.1.0
  updated:
    description: The servers that run the new version.
    type: list
    elements: str
    required: true
    version_added: 0.1.0
  baseline:
    description: The servers still on the old version.
    type: list
    elements: str
    default: []
    version_added: 0.1.0
  probe_results:
    description:
      - The results of M(ansible.builtin.uri) looped over C([host, probe]) pairs (the C(results) of the registered loop),
        each probe a mapping with C(url) and the expected C(status) (default 200).
    type: list
    elements: dict
    default: []
    version_added: 0.1.0
  validate_results:
    description: The results of M(appspec.deploy.lifecycle_event) running ValidateService, looped over the updated hosts.
    type: list
    elements: dict
    default: []
    version_added: 0.1.0
seealso:
  - module: appspec.deploy.traffic_plan
"""

EXAMPLES = r"""
- name: Judge the step
  appspec.deploy.canary_analysis:
    deployment_id: "{{ appspec_deployment.deployment_id }}"
    step: 1
    thresholds: "{{ step.analysis }}"
    before: "{{ window_start.servers }}"
    after: "{{ window_end.servers }}"
    updated: [web1]
    baseline: [web2, web3, web4]
  register: verdict
"""

RETURN = r"""
deployment_id:
  description: O(deployment_id).
  returned: success
  type: str
  sample: d-ABCDEFGHI
analysis:
  description: The verdict.
  returned: success
  type: dict
  contains:
    step:
      description: O(step).
      type: int
      sample: 1
    passed:
      description: Whether every metric passed.
      type: bool
      sample: false
    metrics:
      description: Each metric with C(name), C(updated), C(baseline), C(limit), C(passed) and C(note).
      type: list
      elements: dict
      sample: [{name: error rate, updated: 0.33, baseline: 0.0, limit: 0.05, passed: false, note: 20 of 60 responses failed}]
    failed_metric:
      description: The first failed metric, or null.
      type: dict
      sample: {name: error rate, updated: 0.33, baseline: 0.0, limit: 0.05, passed: false}
    notes:
      description: What could not be judged, and why.
      type: list
      elements: str
      sample: []
    updated:
      description: O(updated).
      type: list
      elements: str
      sample: [web1]
    baseline:
      description: O(baseline).
      type: list
      elements: str
      sample: [web2]
    summary:
      description: One line for the report.
      type: str
      sample: "step 1 failed on error rate: updated 0.33, baseline 0.0, limit 0.05"
"""
