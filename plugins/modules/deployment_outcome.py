# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: deployment_outcome
short_description: Decide whether a deployment succeeded, by CodeDeploy's rules
version_added: 0.1.0
description:
  - Decides, after the last batch, whether deployment O(deployment_id) succeeded on O(hosts).
  - It failed when the minimum of healthy hosts stopped it (O(stopped)), when a host of O(hosts) was
    never deployed to, or when fewer than O(required_successes) hosts succeeded.
  - A host's part in a deployment is read from its host variables C(lifecycle_deployment) (the
    deployment id) and C(lifecycle_status) (C(in_progress), C(succeeded) or C(failed)), as the
    C(appspec.deploy.lifecycle) role records them. A host still C(in_progress) counts as failed.
  - Runs on the controller only and contacts no host. The task itself does not fail when the
    deployment failed; see RV(outcome.failed).
author:
  - appspec.deploy developers (@appspec-deploy)
extends_documentation_fragment:
  - appspec.deploy.attributes
  - appspec.deploy.attributes.controller_action
attributes:
  check_mode:
    support: full
    details:
      - Decides the same way in check mode; it changes nothing in either mode.
  idempotent:
    support: full
options:
  deployment_id:
    description:
      - The deployment to decide about.
    type: str
    required: true
    version_added: 0.1.0
  hosts:
    description:
      - Every host of the deployment, in the order they are reported.
    type: list
    elements: str
    required: true
    version_added: 0.1.0
  required_successes:
    description:
      - How many hosts must have succeeded, from the deployment config (never fewer than one).
    type: int
    required: true
    version_added: 0.1.0
  stopped:
    description:
      - Whether the minimum of healthy hosts stopped the deployment (see M(appspec.deploy.deployment_gate)).
    type: bool
    default: false
    version_added: 0.1.0
  stopped_reason:
    description:
      - Why it was stopped, returned as RV(outcome.stopped_reason).
    type: str
    default: ""
    version_added: 0.1.0
seealso:
  - module: appspec.deploy.deployment_gate
"""

EXAMPLES = r"""
- name: Decide whether the deployment succeeded
  appspec.deploy.deployment_outcome:
    deployment_id: "{{ appspec_deployment.deployment_id }}"
    hosts: "{{ appspec_deployment.hosts }}"
    required_successes: "{{ appspec_deployment.required_successes }}"
    stopped: "{{ gate.stop | default(false) }}"
    stopped_reason: "{{ gate.reason | default('') }}"
  register: decided
  run_once: true

- name: Fail the run when the deployment failed
  ansible.builtin.assert:
    that: not decided.outcome.failed
    fail_msg: "{{ decided.outcome.succeeded | length }} hosts succeeded, {{ decided.outcome.required_successes }} required"
"""

RETURN = r"""
outcome:
  description: The verdict.
  returned: success
  type: dict
  contains:
    deployment_id:
      description: O(deployment_id).
      type: str
      sample: d-ABCDEFGHI
    failed:
      description: Whether the deployment failed.
      type: bool
      sample: false
    stopped:
      description: O(stopped).
      type: bool
      sample: false
    stopped_reason:
      description: O(stopped_reason).
      type: str
      sample: ""
    succeeded:
      description: The hosts where the deployment succeeded, in the order of O(hosts).
      type: list
      elements: str
      sample: [web1, web2]
    failed_hosts:
      description: The hosts where it failed or never finished.
      type: list
      elements: str
      sample: [web3]
    untouched:
      description: The hosts it never reached.
      type: list
      elements: str
      sample: []
    required_successes:
      description: O(required_successes).
      type: int
      sample: 2
"""
