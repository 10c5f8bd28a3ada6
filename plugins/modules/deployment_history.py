# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: deployment_history
short_description: Record, list, block and promote revisions in the revision history of an application
version_added: 0.1.0
description:
  - The revision history of each application, kept by the controller in a directory or in S3 (C(docs/pipeline.md)).
    Runs on the controller only.
  - O(operation=record) writes one JSON document for a deployment - application, revision and its sha256, environment
    (deployment group), deployment id, outcome, each host's result (its events, its failure, its rollback), start,
    end and who ran it (AWX's C(awx_user_name) or C(tower_user_name), else C(user@controller)).
    C(playbooks/deploy.yml) does it at the end of every deployment, failed ones included.
    A record that cannot be written is a warning, not a failure - the deployment's own outcome comes next.
  - O(operation=list) returns the history - which revision runs where, since when, deployed by whom (RV(running)),
    the deployments (RV(deployments)) and the blocked revisions (RV(blocked)), as JSON and as lines of text (RV(text)).
  - O(operation=block) and O(operation=unblock) block a revision (by O(sha256)) from promotion, with a O(reason).
  - O(operation=promote) fails unless the revision O(sha256) may go to O(environment) - environments are deployment
    groups in the order of O(environments), and a revision may go to one only when its last deployment to the one
    before succeeded and it is not blocked. The message says what is missing, and quotes the reason of a block.
    Returns the variables of C(playbooks/deploy.yml) that deploy exactly that archive again.
  - Files in a directory are written atomically (a temporary file, then a rename); an S3 object is written whole.
author:
  - appspec.deploy developers (@appspec-deploy)
extends_documentation_fragment:
  - appspec.deploy.attributes
attributes:
  action:
    description: Runs as an action plugin on the controller.
    support: full
  check_mode:
    support: full
    details:
      - Says what would be recorded, blocked or unblocked, and writes nothing. O(operation=list) and O(operation=promote)
        only read.
  diff_mode:
    support: partial
    details:
      - The block of the revision before and after, for O(operation=block) and O(operation=unblock).
  idempotent:
    support: partial
    details:
      - Blocking a blocked revision (with the same reason) or unblocking one that is not blocked changes nothing.
        Each O(operation=record) writes a new record.
options:
  operation:
    description:
      - What to do.
    type: str
    required: true
    choices: [record, list, block, unblock, promote]
    version_added: 0.1.0
  history:
    description:
      - Where the history is - a directory on the controller, or C(s3://bucket/prefix).
      - Empty - E(APPSPEC_DEPLOY_HISTORY_DIR), else C(~/.local/state/appspec.deploy/history)
        (C($XDG_STATE_HOME/appspec.deploy/history) when E(XDG_STATE_HOME) is set).
    type: str
    default: ""
    version_added: 0.1.0
  s3_endpoint_url:
    description:
      - An S3 history - the endpoint of an S3-compatible store; default AWS.
    type: str
    version_added: 0.1.0
  s3_region:
    description:
      - An S3 history - the bucket's region.
    type: str
    version_added: 0.1.0
  application:
    description:
      - The application. Required to block, unblock and promote; O(operation=list) lists every application without it.
    type: str
    default: ""
    version_added: 0.1.0
  deployment:
    description:
      - O(operation=record) - the deployment record of the run (C(appspec_deployment)). Each host's result is read
        from the host variables the C(appspec.deploy.lifecycle) and C(appspec.deploy.rollback) roles leave.
    type: dict
    version_added: 0.1.0
  outcome:
    description:
      - O(operation=record) - the verdict of M(appspec.deploy.deployment_outcome) (C(lifecycle_outcome)).
        Missing or of another deployment - the deployment is recorded as failed.
    type: dict
    default: {}
    version_added: 0.1.0
  started:
    description:
      - O(operation=record) - when the deployment started, in seconds since 1970. Default - when the
        C(ansible-playbook) run started (where the controller has C(/proc)), else unknown.
    type: float
    version_added: 0.1.0
  environment:
    description:
      - O(operation=promote) - the environment (deployment group) to promote to.
      - O(operation=list) - list only this environment.
    type: str
    default: ""
    version_added: 0.1.0
  environments:
    description:
      - O(operation=promote) - the environments in order, for example V([staging, production]).
    type: list
    elements: str
    default: []
    version_added: 0.1.0
  sha256:
    description:
      - The revision, by the sha256 of its archive. O(operation=promote) without it - the revision whose deployment
        last succeeded in the environment before O(environment).
    type: str
    default: ""
    version_added: 0.1.0
  reason:
    description:
      - O(operation=block) - why; required, quoted by every refusal.
    type: str
    default: ""
    version_added: 0.1.0
  limit:
    description:
      - O(operation=list) - show only the last N deployments (0 - all).
    type: int
    default: 0
    version_added: 0.1.0
  json_file:
    description:
      - O(operation=list) - also write the history as JSON to this file on the controller.
    type: path
    version_added: 0.1.0
notes:
  - Rollbacks run by C(playbooks/rollback.yml) are not recorded; RV(running) tells what the recorded deployments left.
seealso:
  - module: appspec.deploy.package
  - module: appspec.deploy.deployment_outcome
"""

EXAMPLES = r"""
- name: Record the deployment (playbooks/deploy.yml does it)
  appspec.deploy.deployment_history:
    operation: record
    deployment: "{{ appspec_deployment }}"
    outcome: "{{ hostvars['localhost'].lifecycle_outcome }}"
  delegate_to: localhost
  run_once: true

- name: What runs where
  appspec.deploy.deployment_history:
    operation: list
    application: shop
    history: s3://my-state/appspec-history
  register: history

- name: Block a revision from promotion
  appspec.deploy.deployment_history:
    operation: block
    application: shop
    sha256: 0f3c4e6b0e1c0d4f8f1f4c6ab0bb3b43bde8aa1f4bd5f1ba7c0a5bd3c26e8d51
    reason: CVE-2026-1234 in libfoo

- name: Check that the revision may go to production
  appspec.deploy.deployment_history:
    operation: promote
    application: shop
    environments: [staging, production]
    environment: production
  register: promotion
"""

RETURN = r"""
history:
  description: Where the history is.
  returned: always
  type: str
  sample: /home/ci/.local/state/appspec.deploy/history
record:
  description: O(operation=record) - the record written (or that would be written in check mode).
  returned: O(operation=record)
  type: dict
  sample:
    application: shop
    environment: staging
    deployment_id: d-ABCDEFGHI
    revision: /srv/dist/shop.tar.gz
    sha256: 0f3c4e6b0e1c0d4f8f1f4c6ab0bb3b43bde8aa1f4bd5f1ba7c0a5bd3c26e8d51
    status: succeeded
    hosts: {web1: {status: succeeded, running: true, events: []}}
    started: "2026-12-01T10:00:00Z"
    ended: "2026-12-01T10:02:13Z"
    who: ci@build1
recorded:
  description: O(operation=record) - whether the record was written (false - see the warning).
  returned: O(operation=record) outside check mode
  type: bool
  sample: true
deployments:
  description: O(operation=list) - the records, newest first.
  returned: O(operation=list)
  type: list
  elements: dict
  sample: []
running:
  description:
    - O(operation=list) - per application, environment and host, the revision the host runs (C(sha256), C(revision)),
      the deployment that put it there (C(deployment_id)), since when (C(since)) and by whom (C(who)).
  returned: O(operation=list)
  type: list
  elements: dict
  sample: [{application: shop, environment: production, host: web1, sha256: 0f3c..., deployment_id: d-ABCDEFGHI,
            since: "2026-12-01T10:02:13Z", who: alice, revision: /srv/dist/shop.tar.gz}]
blocked:
  description: O(operation=list) - the blocked revisions (C(sha256), C(reason), C(who), C(at)).
  returned: O(operation=list)
  type: list
  elements: dict
  sample: []
text:
  description: O(operation=list) - the same as lines of text.
  returned: O(operation=list)
  type: list
  elements: str
  sample: ["Running now (which revision runs where, since when, deployed by whom):"]
block:
  description: O(operation=block) or O(operation=unblock) - the block record after the change.
  returned: O(operation=block) or O(operation=unblock)
  type: dict
  sample: {sha256: 0f3c..., blocked: true, reason: CVE-2026-1234 in libfoo, who: bob@ci, at: "2026-12-01T10:00:00Z"}
promotion:
  description:
    - O(operation=promote) - the revision allowed (C(sha256), C(revision)), where it succeeded (C(from_environment),
      C(from_deployment_id), C(from_ended)), and C(variables), those of C(playbooks/deploy.yml) that deploy it.
  returned: O(operation=promote)
  type: dict
  sample: {sha256: 0f3c..., environment: production, from_environment: staging, from_deployment_id: d-ABCDEFGHI,
           variables: {appspec_revision: /srv/dist/shop.tar.gz, appspec_revision_sha256: 0f3c...}}
problems:
  description: O(operation=promote) - every reason the revision is refused.
  returned: failure
  type: list
  elements: str
  sample: ["revision 0f3c4e6b0e1c was never deployed to staging, the environment before production: it must succeed there first"]
"""
