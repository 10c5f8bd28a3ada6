# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: deployment_gate
short_description: Decide whether the next batch of a rolling deployment may start
version_added: 0.1.0
description:
  - Enforces CodeDeploy's minimum of healthy hosts over the whole fleet and the whole run, before
    each batch (Ansible's C(serial)).
  - Counts the hosts of this play that took part in deployment O(deployment_id) and failed or never
    finished, in this batch or any earlier one. When those hosts plus the hosts of the current batch
    are more than O(max_unhealthy), the deployment must stop before this batch, and RV(reason) says why.
  - A host's part in a deployment is read from its host variables C(lifecycle_deployment) (the
    deployment id) and C(lifecycle_status) (C(in_progress), C(succeeded) or C(failed)), as the
    C(appspec.deploy.lifecycle) role records them. Hosts of another deployment are ignored.
  - Runs on the controller only and contacts no host. It decides; ending the play is left to the
    caller (C(ansible.builtin.meta) C(end_play)).
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
      - The deployment whose hosts are counted.
    type: str
    required: true
    version_added: 0.1.0
  max_unhealthy:
    description:
      - The most hosts that may be out of service at once (failed so far plus the batch), that is the
        number of hosts minus the minimum of healthy hosts of the deployment config.
      - Must be 1 or more.
    type: int
    required: true
    version_added: 0.1.0
notes:
  - Call it once per batch (C(run_once=true)); every host of the batch gets the same answer.
seealso:
  - module: appspec.deploy.deployment_outcome
  - name: Deployment configurations
    description: How CodeDeploy counts healthy hosts.
    link: https://docs.aws.amazon.com/codedeploy/latest/userguide/instances-health.html
"""

EXAMPLES = r"""
- name: Check the minimum of healthy hosts before this batch
  appspec.deploy.deployment_gate:
    deployment_id: "{{ appspec_deployment.deployment_id }}"
    max_unhealthy: "{{ appspec_deployment.max_unhealthy }}"
  register: gate
  run_once: true

- name: End the play for the hosts not deployed
  ansible.builtin.meta: end_play
  when: gate.stop
"""

RETURN = r"""
stop:
  description: Whether the deployment must stop before this batch.
  returned: success
  type: bool
  sample: true
reason:
  description: Why the deployment stops, naming the hosts that failed (RV(not_deployed) lists those not deployed); empty when it goes on.
  returned: success
  type: str
  sample: >-
    1 host(s) failed so far (web1); deploying the next 3 host(s) would leave fewer healthy hosts than the
    deployment config allows (at most 3 of 9 out of service).
failed_so_far:
  description: The hosts of the play that failed or never finished in this deployment, in play order.
  returned: success
  type: list
  elements: str
  sample: [web1]
not_deployed:
  description: The hosts of the play that this deployment has not touched yet, in play order.
  returned: success
  type: list
  elements: str
  sample: [web4, web5, web6]
"""
