#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: appspec_info
short_description: Parse and validate an AWS CodeDeploy AppSpec file
version_added: 0.1.0
description:
  - Reads an AppSpec file (YAML or JSON) of an AWS CodeDeploy revision, validates it field by field
    as the CodeDeploy documentation defines it, and returns it normalized.
  - EC2/on-premises AppSpecs (O(path) or O(content) with C(version), C(os), C(files), C(permissions),
    C(hooks), C(file_exists_behavior)) are the ones this collection deploys.
    Amazon ECS and AWS Lambda AppSpecs (C(Resources) and C(Hooks)) are validated and returned too,
    with RV(deployable=false).
  - Every problem found is reported at once, each with the field path and the line and column of the file.
  - An unquoted C(mode) of C(0644) means mode 0644 (the text as written), not the YAML 1.1 integer 420.
    Duplicate keys are errors. See C(docs/appspec-reference.md) for each place where this module is
    stricter or more lenient than the CodeDeploy agent.
author:
  - appspec.deploy developers (@appspec-deploy)
extends_documentation_fragment:
  - appspec.deploy.attributes
  - appspec.deploy.attributes.info_module
options:
  path:
    description:
      - An AppSpec file, or a revision directory.
      - In a directory the module looks for O(appspec_filename), then C(appspec.yml), then C(appspec.yaml).
      - The path is on the managed host; its content is read through the connection and parsed on the controller.
    type: path
    version_added: 0.1.0
  content:
    description:
      - The AppSpec text itself, instead of O(path).
    type: str
    version_added: 0.1.0
  appspec_filename:
    description:
      - The name of the AppSpec file inside a revision directory given as O(path), like CodeDeploy's
        C(AppSpecFilename). When it is not there, C(appspec.yml) and C(appspec.yaml) are tried.
      - Ignored when O(path) is a file.
    type: str
    version_added: 0.1.0
  strict:
    description:
      - Turn every warning into an error, for example an unknown lifecycle event name, an unknown key,
        or a value that the CodeDeploy agent would read differently (an unquoted C(mode) of C(0644), a quoted
        C(version) of C('0.0')).
    type: bool
    default: false
    version_added: 0.1.0
  max_event_timeout:
    description:
      - The most seconds the scripts of one lifecycle event may take together (the sum of their
        C(timeout) values). CodeDeploy allows 3600 seconds per event.
    type: int
    default: 3600
    version_added: 0.1.0
notes:
  - Exactly one of O(path) and O(content) is required.
  - The AppSpec is parsed on the controller (this module is an action plugin). A file on the managed host is
    read through the connection, so the host needs no YAML parser, only Python's standard library.
seealso:
  - name: AppSpec file reference
    description: The AWS CodeDeploy documentation of the AppSpec file.
    link: https://docs.aws.amazon.com/codedeploy/latest/userguide/reference-appspec-file.html
"""

EXAMPLES = r"""
- name: Validate the AppSpec of a revision directory
  appspec.deploy.appspec_info:
    path: /srv/revisions/webapp
  register: spec

- name: Show the scripts of AfterInstall
  ansible.builtin.debug:
    var: spec.appspec.hooks.AfterInstall

- name: Validate AppSpec text strictly, allowing long events
  appspec.deploy.appspec_info:
    content: "{{ lookup('ansible.builtin.file', 'appspec.yml') }}"
    strict: true
    max_event_timeout: 7200
"""

RETURN = r"""
appspec:
  description:
    - The AppSpec, normalized.
    - For C(server) AppSpecs the keys C(version) (always V(0.0)), C(os) (always V(linux)),
      C(files) (list of C(source), C(destination)), C(permissions) (list of C(object), C(pattern) (default V(**)),
      C(except), C(owner), C(group), C(mode) (four octal digits as a string, or null), C(acls),
      C(context) (null or C(name), C(type), C(range)), C(type) (default V([file, directory]))),
      C(hooks) (event name to a list of C(location), C(timeout) (seconds, default 3600), C(runas), C(sudo)),
      C(file_exists_behavior) (V(DISALLOW), V(OVERWRITE), V(RETAIN) or null).
    - For C(ecs) and C(lambda) AppSpecs the keys C(version), C(resources) (list of C(name), C(type),
      C(properties)) and C(hooks) (event name to a Lambda function name).
  returned: success
  type: dict
  sample:
    version: "0.0"
    os: linux
    files:
      - source: app
        destination: /opt/app
    permissions:
      - object: /opt/app
        pattern: "*.py"
        except: []
        owner: null
        group: null
        mode: "0755"
        acls: []
        context: null
        type: [file]
    hooks:
      ApplicationStart:
        - location: scripts/start.sh
          timeout: 60
          runas: null
          sudo: false
    file_exists_behavior: null
compute_platform:
  description: The compute platform the AppSpec is written for.
  returned: success
  type: str
  choices: [server, ecs, lambda]
  sample: server
deployable:
  description: Whether this collection can deploy the AppSpec to hosts (only C(server) AppSpecs).
  returned: success
  type: bool
  sample: true
not_deployable_reason:
  description: Why RV(deployable) is false; null when it is true.
  returned: success
  type: str
  sample: null
warnings:
  description:
    - Problems that do not stop a deployment, each starting with the field path and line.
    - They are also shown as Ansible warnings. O(strict=true) turns them into errors.
  returned: success
  type: list
  elements: str
  sample: ["hooks.AfterInstal (line 12): unknown lifecycle event 'AfterInstal': its scripts never run"]
source:
  description: The file that was read (after looking inside a revision directory), or V(<content>).
  returned: success
  type: str
  sample: /srv/revisions/webapp/appspec.yml
errors:
  description:
    - On failure, every problem found, in file order.
    - C(path) is the field path such as V(hooks.AfterInstall[1].timeout) (list indexes count from 0),
      or an empty string for the whole document. C(line) and C(column) count from 1.
  returned: failure
  type: list
  elements: dict
  sample:
    - message: "must be a whole number of seconds such as 300, not '30s'"
      path: "hooks.AfterInstall[1].timeout"
      line: 14
      column: 16
"""
