# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: deployment_plan
short_description: Resolve and validate a revision on the controller and plan its deployment
version_added: 0.1.0
description:
  - Runs on the controller before any host is touched. Resolves the revision whatever its source (a
    controller directory is packed; an archive's AppSpec is read from the archive after the same safety
    checks hosts apply, without unpacking it; HTTP(S), C(s3://) and git revisions are fetched once
    into the controller's cache), parses and validates its AppSpec, and refuses what cannot be deployed.
  - Applies the deployment config to the hosts (minimum of healthy hosts, batch size, successes required),
    derives the deployment group id and makes one deployment id for the whole run.
  - With O(revision_download=host) the hosts download the revision themselves instead of receiving it from the
    controller; the controller still fetches and validates it once and pins its sha256, which every host checks.
  - Returns the deployment record that C(appspec.deploy.revision) leaves as C(revision_deployment) and the
    playbooks hand to every host as C(appspec_deployment).
  - The options that playbook variables set (docs/variables.md) are converted by the plugin itself, so AWX
    survey text such as V("5") or V("true") is accepted and an empty value means the default; a wrong value
    fails with one line naming the playbook variable (for example C(appspec_keep_releases)) and what it must be.
  - Every variable the task sees whose name starts with C(appspec_) and that is not a playbook variable of
    the collection is reported as a warning naming the closest known one, or fails the task with
    O(strict_variables=true).
author:
  - appspec.deploy developers (@appspec-deploy)
extends_documentation_fragment:
  - appspec.deploy.attributes
  - appspec.deploy.attributes.controller_action
attributes:
  check_mode:
    support: full
    details:
      - Resolves and plans the same way in check mode; nothing on any host changes in either mode.
  idempotent:
    support: partial
    details:
      - A new deployment id is made on each run unless O(deployment_id) is given.
options:
  revision:
    description:
      - "The revision: a controller path (directory or zip/tar/tar.gz), an C(http(s)://) URL, C(s3://bucket/key) or a git URL."
      - "Empty deploys the bundled example (C(examples/webapp)), but only when O(hosts) is C(localhost) alone;
        with any other hosts an empty revision is refused, so that a mistyped variable cannot deploy the example
        to a fleet. O(resolve=false) needs no revision."
    type: str
    default: ""
    version_added: 0.1.0
  sha256:
    description:
      - "Expected SHA-256 of the revision archive; empty for none. A mismatch refuses the deployment before any host is touched."
    type: str
    default: ""
    version_added: 0.1.0
  headers:
    description:
      - "Extra HTTP headers for an C(http(s)://) revision (C(appspec_http_headers)), sent by the controller only."
    type: dict
    default: {}
    version_added: 0.1.0
  s3_version_id:
    description:
      - "Version id of an S3 revision."
    type: str
    version_added: 0.1.0
  s3_endpoint_url:
    description:
      - "Endpoint of an S3-compatible store."
    type: str
    version_added: 0.1.0
  s3_region:
    description:
      - "Region of the S3 bucket."
    type: str
    version_added: 0.1.0
  git_ref:
    description:
      - "Branch, tag or commit of a git revision."
    type: str
    version_added: 0.1.0
  revision_download:
    description:
      - "Who moves the revision to the hosts. V(controller) uploads the archive the controller resolved to each host
        that lacks it (C(download_url) is null)."
      - "V(host) sets C(download_url), which each host downloads itself with the Python standard library and checks
        against the pinned sha256 before unpacking anything: for an C(http(s)://) revision the URL as given, for
        C(s3://) a GET URL presigned on the controller (same endpoint, region and credentials as the fetch, pinned
        to the object version the controller validated), valid for 24 hours, or less when the controller's
        credentials are temporary and expire first. Hosts need network access to the source, no boto3."
      - "V(host) is refused for a controller path (hosts cannot read it) and a git revision (hosts have no git, the
        controller makes the archive), and for an C(http(s)://) revision that needs O(headers)."
      - "A presigned URL lets anyone holding it read the object until it expires: keep verbose logs of the run private."
    type: str
    choices: [controller, host]
    default: controller
    version_added: 0.1.0
  max_unpacked_size:
    description:
      - "Refuse archives whose files add up to more than this unpacked (units such as V(500M))."
    type: str
    default: 10G
    version_added: 0.1.0
  application_name:
    description:
      - "CodeDeploy's application name. Required, except for the bundled example (V(webapp)): it is never guessed
        from the revision's file name, which would make each version of an archive another application."
    type: str
    default: ""
    version_added: 0.1.0
  deployment_group_name:
    description:
      - "CodeDeploy's deployment group name."
    type: str
    default: default
    version_added: 0.1.0
  deployment_group_id:
    description:
      - "Overrides the stable UUID derived from the application and group names."
    type: str
    default: ""
    version_added: 0.1.0
  deployment_config:
    description:
      - "A C(CodeDeployDefault) config name, C(HOST_COUNT:n), C(FLEET_PERCENT:p) or a C(minimum_healthy_hosts) dict (see docs/variables.md)."
    type: raw
    default: CodeDeployDefault.OneAtATime
    version_added: 0.1.0
  file_exists_behavior:
    description:
      - "C(DISALLOW), C(OVERWRITE) or C(RETAIN)."
    type: str
    default: DISALLOW
    version_added: 0.1.0
  ignore_application_stop_failures:
    description:
      - "Carry on when the last successful revision's ApplicationStop fails."
    type: bool
    default: false
    version_added: 0.1.0
  auto_rollback:
    description:
      - "Roll back the hosts a failed deployment touched."
    type: bool
    default: true
    version_added: 0.1.0
  root_dir:
    description:
      - "The agent's deployment root on the hosts."
    type: str
    default: /opt/codedeploy-agent/deployment-root
    version_added: 0.1.0
  release_root:
    description:
      - "Release mode root on the hosts; empty installs in place, except the bundled example (C(/opt/appspec-example))."
    type: str
    default: ""
    version_added: 0.1.0
  keep_releases:
    description:
      - "Release mode: finished releases kept, at least 1."
    type: int
    default: 5
    version_added: 0.1.0
  shared_paths:
    description:
      - "Release mode: paths linked to C(<release_root>/shared/)."
    type: list
    elements: str
    default: []
    version_added: 0.1.0
  load_balancer:
    description:
      - "The load balancer hosts are drained from (see docs/variables.md)."
    type: dict
    default: {}
    version_added: 0.1.0
  hosts:
    description:
      - "The inventory hosts of the deployment (the hosts the deployment config counts)."
    type: list
    elements: str
    required: true
    version_added: 0.1.0
  hosts_pattern:
    description:
      - "The pattern the hosts came from, for messages."
    type: str
    default: all
    version_added: 0.1.0
  deployment_id:
    description:
      - "Reuse this deployment id; empty makes a new C(d-XXXXXXXXX)."
    type: str
    default: ""
    version_added: 0.1.0
  appspec_filename:
    description:
      - "Another AppSpec file name in the revision; C(appspec.yml), then C(appspec.yaml) are tried after it."
    type: str
    default: ""
    version_added: 0.1.0
  strict_variables:
    description:
      - "Fail, instead of warning, when the task sees a variable whose name starts with C(appspec_) and that is not
        a playbook variable of the collection (a typo such as C(appspec_revison))."
    type: bool
    default: false
    version_added: 0.1.0
  resolve:
    description:
      - "V(false) plans ids, names and batches only and does not look at the revision (rollback)."
    type: bool
    default: true
    version_added: 0.1.0
requirements:
  - boto3 on the controller for C(s3://) revisions; the git command on the controller for git revisions.
seealso:
  - module: appspec.deploy.appspec_info
  - module: appspec.deploy.bundle
"""

EXAMPLES = r"""
- name: Plan the deployment of a revision to the web servers
  appspec.deploy.deployment_plan:
    revision: /srv/builds/webapp-1.4.2.zip
    deployment_config: CodeDeployDefault.HalfAtATime
    hosts: "{{ query('ansible.builtin.inventory_hostnames', 'webservers') }}"
  register: plan
"""

RETURN = r"""
deployment:
  description:
    - The deployment record (fields in docs/variables.md), among them C(deployment_id), C(deployment_group_id),
      C(archive) (the controller file hosts receive), C(download_url) (the URL hosts download the revision from
      themselves with O(revision_download=host), else null), C(sha256), C(appspec) (normalized), C(bundle_env),
      C(min_healthy), C(max_unhealthy) (the batch size) and C(required_successes).
  returned: success
  type: dict
"""
