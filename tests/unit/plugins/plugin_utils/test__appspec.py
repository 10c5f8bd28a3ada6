# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The AppSpec parser: a table of valid inputs (normalized result) and invalid ones (path + line)."""

from __future__ import annotations

import json
import os
import textwrap
import typing as t

import pytest
import yaml

from ansible_collections.appspec.deploy.plugins.plugin_utils import _appspec
from ansible_collections.appspec.deploy.plugins.plugin_utils._appspec import (
    IN_PLACE_EVENTS,
    LAST_SUCCESSFUL_EVENTS,
    RESERVED_EVENTS,
    AppSpecError,
    find_appspec,
    load_appspec,
    parse_appspec,
)
from ansible_collections.appspec.deploy.plugins.module_utils._errors import DeployError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
MIN = "version: 0.0\nos: linux\n"
# Files installed at the objects the permission cases name (an object elsewhere matches nothing: a warning).
INSTALLS = MIN + "files:\n  - source: /\n    destination: /a\n  - source: /\n    destination: /opt/app\n"


def doc(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def script(location: str, timeout: int = 3600, runas: t.Optional[str] = None, sudo: bool = False) -> dict:
    return {"location": location, "timeout": timeout, "runas": runas, "sudo": sudo}


def perm(obj: str, **over: t.Any) -> dict:
    value = {
        "object": obj,
        "pattern": "**",
        "except": [],
        "owner": None,
        "group": None,
        "mode": None,
        "acls": [],
        "context": None,
        "type": ["file", "directory"],
    }
    value.update(over)
    return value


ECS = doc("""
    version: 0.0
    Resources:
      - TargetService:
          Type: AWS::ECS::Service
          Properties:
            TaskDefinition: "arn:aws:ecs:eu-west-1:111122223333:task-definition/web:3"
            LoadBalancerInfo:
              ContainerName: "web"
              ContainerPort: 8080
            PlatformVersion: "LATEST"
            NetworkConfiguration:
              AwsvpcConfiguration:
                Subnets: ["subnet-1", "subnet-2"]
                SecurityGroups: ["sg-1"]
                AssignPublicIp: "DISABLED"
            CapacityProviderStrategy:
              - CapacityProvider: FARGATE_SPOT
                Base: 1
                Weight: 2
    Hooks:
      - BeforeInstall: "CheckBeforeInstall"
      - AfterAllowTestTraffic: "CheckTestTraffic"
    """)

LAMBDA = doc("""
    version: 0.0
    resources:
      - myFunction:
          type: AWS::Lambda::Function
          properties:
            name: myFunction
            alias: live
            currentversion: 1
            targetversion: "2"
    hooks:
      - BeforeAllowTraffic: PreTrafficCheck
      - AfterAllowTraffic: PostTrafficCheck
    """)

# id, text, kwargs, expected (subset of the normalized appspec; "compute_platform" checked too),
# substrings expected in the warnings (exactly that many warnings).
VALID = [
    ("minimal", MIN, {}, {"version": "0.0", "os": "linux", "files": [], "permissions": [], "hooks": {}, "file_exists_behavior": None}, []),
    ("version-int-zero", "version: 0\nos: linux\n", {}, {"version": "0.0"}, []),
    ("version-quoted-warns", "version: '0.0'\nos: linux\n", {}, {"version": "0.0"}, ["agent rejects a quoted"]),
    ("document-markers", "---\nversion: 0.0\nos: linux\n...\n", {}, {"os": "linux"}, []),
    ("trailing-empty-document", MIN + "---\n", {}, {"os": "linux"}, []),
    (
        "bom-and-crlf",
        "\ufeffversion: 0.0\r\nos: linux\r\nhooks:\r\n  AfterInstall:\r\n    - location: a.sh\r\n",
        {},
        {"hooks": {"AfterInstall": [script("a.sh")]}},
        [],
    ),
    (
        "json",
        json.dumps({"version": 0.0, "os": "linux", "files": [{"source": "/", "destination": "/srv/app"}]}),
        {},
        {"files": [{"source": "/", "destination": "/srv/app"}]},
        [],
    ),
    (
        "json-tab-indented",
        '{\n\t"version": 0.0,\n\t"os": "linux",\n\t"hooks": {\n\t\t"ApplicationStart": '
        + '[{"location": "s.sh", "timeout": 10}]\n\t}\n}\n',
        {},
        {"hooks": {"ApplicationStart": [script("s.sh", 10)]}},
        [],
    ),
    ("tab-as-separator", "version:\t0.0\nos: linux\t# tab before a comment\n", {}, {"os": "linux"}, []),
    (
        "files",
        MIN + doc("""
        files:
          - source: app
            destination: /opt/app
          - source: /
            destination: /srv/all
        """),
        {},
        {"files": [{"source": "app", "destination": "/opt/app"}, {"source": "/", "destination": "/srv/all"}]},
        [],
    ),
    ("files-null", MIN + "files:\n", {}, {"files": []}, []),
    ("permission-defaults", INSTALLS + "permissions:\n  - object: /opt/app\n", {}, {"permissions": [perm("/opt/app")]}, []),
    (
        "mode-unquoted-octal-is-text",
        INSTALLS + "permissions:\n  - object: /a\n    mode: 0644\n",
        {},
        {"permissions": [perm("/a", mode="0644")]},
        ["YAML integer 420: the CodeDeploy agent would apply mode 0420"],
    ),
    (
        "mode-unquoted-0755-agent-refuses",
        INSTALLS + "permissions:\n  - object: /a\n    mode: 0755\n",
        {},
        {"permissions": [perm("/a", mode="0755")]},
        ["would refuse it as mode 493"],
    ),
    ("mode-quoted", INSTALLS + "permissions:\n  - object: /a\n    mode: '0755'\n", {}, {"permissions": [perm("/a", mode="0755")]}, []),
    ("mode-three-digits", INSTALLS + "permissions:\n  - object: /a\n    mode: 755\n", {}, {"permissions": [perm("/a", mode="0755")]}, []),
    ("mode-setuid", INSTALLS + "permissions:\n  - object: /a\n    mode: 4755\n", {}, {"permissions": [perm("/a", mode="4755")]}, []),
    ("mode-one-digit", INSTALLS + "permissions:\n  - object: /a\n    mode: 7\n", {}, {"permissions": [perm("/a", mode="0007")]}, []),
    (
        "permission-full",
        INSTALLS + doc("""
        permissions:
          - object: /opt/app
            pattern: "*.sh"
            except: ["skip.sh"]
            owner: deploy
            group: www-data
            mode: 750
            acls:
              - u:deploy:rwx
              - d:g:web:r-x
              - m::rx
              - bob:7
            context:
              name: system_u
              type: httpd_sys_content_t
              range: s0-s1:c0.c5,c7
            type:
              - file
        """),
        {},
        {
            "permissions": [
                perm(
                    "/opt/app",
                    pattern="*.sh",
                    owner="deploy",
                    group="www-data",
                    mode="0750",
                    acls=["u:deploy:rwx", "d:g:web:r-x", "m::rx", "bob:7"],
                    context={"name": "system_u", "type": "httpd_sys_content_t", "range": "s0-s1:c0.c5,c7"},
                    type=["file"],
                    **{"except": ["skip.sh"]},
                )
            ]
        },
        [],
    ),
    (
        "permission-type-scalar-warns",
        INSTALLS + "permissions:\n  - object: /a\n    type: directory\n",
        {},
        {"permissions": [perm("/a", type=["directory"])]},
        ["needs a list"],
    ),
    ("permission-outside-files-warns", MIN + "permissions:\n  - object: /etc\n    mode: 777\n", {},
     {"permissions": [perm("/etc", mode="0777")]}, ["'/etc' is not a files destination, nor below or above one"]),
    ("permission-above-below-files", INSTALLS + "permissions:\n  - object: /opt\n  - object: /a/b/c\n  - object: /a/\n", {},
     {"permissions": [perm("/opt"), perm("/a/b/c"), perm("/a/")]}, []),
    ("permission-under-root-destination", MIN + "files:\n  - source: /\n    destination: /\npermissions:\n  - object: /srv\n", {},
     {"permissions": [perm("/srv")]}, []),
    ("permission-sibling-is-outside", INSTALLS + "permissions:\n  - object: /ab\n", {}, {"permissions": [perm("/ab")]},
     ["matches nothing a deployment installs"]),
    ("hooks-defaults", MIN + "hooks:\n  BeforeInstall:\n    - location: scripts/a.sh\n", {}, {"hooks": {"BeforeInstall": [script("scripts/a.sh")]}}, []),
    (
        "hooks-runas-sudo",
        MIN + doc("""
        hooks:
          ApplicationStart:
            - location: start.sh
              timeout: 60
              runas: www-data
              sudo: true
            - location: yes.sh
              timeout: 10
              sudo: yes
        """),
        {},
        {"hooks": {"ApplicationStart": [script("start.sh", 60, "www-data", True), script("yes.sh", 10, sudo=True)]}},
        [],
    ),
    (
        "timeout-digit-string",
        MIN + "hooks:\n  AfterInstall:\n    - location: a.sh\n      timeout: '300'\n",
        {},
        {"hooks": {"AfterInstall": [script("a.sh", 300)]}},
        [],
    ),
    ("hook-event-null-dropped", MIN + "hooks:\n  ApplicationStop:\n  AfterInstall: []\n", {}, {"hooks": {"AfterInstall": []}}, []),
    (
        "hooks-canonical-order",
        MIN + doc("""
        hooks:
          ValidateService:
            - location: v.sh
          ApplicationStop:
            - location: s.sh
          BeforeBlockTraffic:
            - location: b.sh
        """),
        {},
        {"hooks": {"BeforeBlockTraffic": [script("b.sh")], "ApplicationStop": [script("s.sh")], "ValidateService": [script("v.sh")]}},
        [],
    ),
    (
        "unknown-event-warns",
        MIN + "hooks:\n  AfterDeploy:\n    - location: a.sh\n",
        {},
        {"hooks": {"AfterDeploy": [script("a.sh")]}},
        ["hooks.AfterDeploy (line 4): unknown lifecycle event"],
    ),
    (
        "timeouts-sum-exactly-3600",
        MIN + doc("""
        hooks:
          ApplicationStart:
            - location: a.sh
              timeout: 1800
            - location: b.sh
              timeout: 1800
        """),
        {},
        {"hooks": {"ApplicationStart": [script("a.sh", 1800), script("b.sh", 1800)]}},
        [],
    ),
    (
        "timeouts-sum-over-limit-by-default-warns",
        MIN + "hooks:\n  ApplicationStart:\n    - location: a.sh\n    - location: b.sh\n",
        {},
        {"hooks": {"ApplicationStart": [script("a.sh"), script("b.sh")]}},
        ["hooks.ApplicationStart (line 4): the scripts of ApplicationStart may run 7200 s together"],
    ),
    (
        "max-event-timeout-raised",
        MIN + doc("""
        hooks:
          ApplicationStart:
            - location: a.sh
              timeout: 3000
            - location: b.sh
              timeout: 3000
        """),
        {"max_event_timeout": 7200},
        {"hooks": {"ApplicationStart": [script("a.sh", 3000), script("b.sh", 3000)]}},
        [],
    ),
    ("file-exists-behavior", MIN + "file_exists_behavior: OVERWRITE\n", {}, {"file_exists_behavior": "OVERWRITE"}, []),
    ("unknown-top-level-key-warns", MIN + "owner: team-a\n", {}, {"os": "linux"}, ["unknown key 'owner'"]),
    (
        "anchors-and-merge-keys",
        MIN + doc("""
        hooks:
          BeforeInstall:
            - &base
              location: a.sh
              timeout: 30
          AfterInstall:
            - <<: *base
              location: b.sh
        """),
        {},
        {"hooks": {"BeforeInstall": [script("a.sh", 30)], "AfterInstall": [script("b.sh", 30)]}},
        [],
    ),
    (
        "leading-slash-location-warns",
        MIN + "hooks:\n  AfterInstall:\n    - location: /scripts/a.sh\n",
        {},
        {"hooks": {"AfterInstall": [script("/scripts/a.sh")]}},
        ["relative to the revision root"],
    ),
    ("comments-everywhere", "# app\nversion: 0.0  # fixed\nos: linux # only\n# end\n", {}, {"os": "linux"}, []),
    (
        "ecs",
        ECS,
        {},
        {
            "compute_platform": "ecs",
            "version": "0.0",
            "resources": [
                {
                    "name": "TargetService",
                    "type": "AWS::ECS::Service",
                    "properties": {
                        "TaskDefinition": "arn:aws:ecs:eu-west-1:111122223333:task-definition/web:3",
                        "LoadBalancerInfo": {"ContainerName": "web", "ContainerPort": 8080},
                        "PlatformVersion": "LATEST",
                        "NetworkConfiguration": {
                            "AwsvpcConfiguration": {"Subnets": ["subnet-1", "subnet-2"], "SecurityGroups": ["sg-1"], "AssignPublicIp": "DISABLED"}
                        },
                        "CapacityProviderStrategy": [{"CapacityProvider": "FARGATE_SPOT", "Base": 1, "Weight": 2}],
                    },
                }
            ],
            "hooks": {"BeforeInstall": "CheckBeforeInstall", "AfterAllowTestTraffic": "CheckTestTraffic"},
        },
        [],
    ),
    (
        "ecs-minimal-lowercase-keys",
        doc("""
        version: 0.0
        resources:
          - TargetService:
              type: AWS::ECS::Service
              properties:
                taskdefinition: td:1
                loadbalancerinfo:
                  containername: web
                  containerport: "80"
        """),
        {},
        {
            "compute_platform": "ecs",
            "hooks": {},
            "resources": [
                {
                    "name": "TargetService",
                    "type": "AWS::ECS::Service",
                    "properties": {
                        "TaskDefinition": "td:1",
                        "LoadBalancerInfo": {"ContainerName": "web", "ContainerPort": 80},
                        "PlatformVersion": None,
                        "NetworkConfiguration": None,
                        "CapacityProviderStrategy": None,
                    },
                }
            ],
        },
        [],
    ),
    (
        "lambda",
        LAMBDA,
        {},
        {
            "compute_platform": "lambda",
            "resources": [
                {
                    "name": "myFunction",
                    "type": "AWS::Lambda::Function",
                    "properties": {"Name": "myFunction", "Alias": "live", "CurrentVersion": "1", "TargetVersion": "2"},
                }
            ],
            "hooks": {"BeforeAllowTraffic": "PreTrafficCheck", "AfterAllowTraffic": "PostTrafficCheck"},
        },
        [],
    ),
    ("ecs-quoted-version-is-fine", ECS.replace("version: 0.0", 'version: "0.0"'), {"strict": True}, {"compute_platform": "ecs", "version": "0.0"}, []),
    (
        "lambda-foreign-event-warns",
        LAMBDA + "  - BeforeInstall: Nope\n",
        {},
        {"compute_platform": "lambda"},
        ["unknown Lambda lifecycle event 'BeforeInstall'"],
    ),
]

# id, text, kwargs, [(path, line, substring of the message)] - the complete error list, in file order.
INVALID = [
    # Issue 14.1: a control character in a path reached the host's line-based cleanup list.
    ("files-destination-newline", MIN + 'files:\n  - source: app\n    destination: "/srv/app\\n/etc/cron.d"\n', {},
     [("files[0].destination", 5, "control character")]),
    ("files-source-tab", MIN + 'files:\n  - source: "a\\tb"\n    destination: /srv/app\n', {},
     [("files[0].source", 4, "control character")]),
    ("hook-location-nul", MIN + 'hooks:\n  AfterInstall:\n    - location: "a\\0.sh"\n', {},
     [("hooks.AfterInstall[0].location", 5, "control character")]),
    ("permissions-object-del", MIN + 'permissions:\n  - object: "/srv/a\\x7fb"\n', {},
     [("permissions[0].object", 4, "control character")]),
    ("permissions-pattern-and-except-newline",
     MIN + 'permissions:\n  - object: /srv/app\n    pattern: "a\\nb"\n    except: ["c\\rd"]\n', {},
     [("permissions[0].pattern", 5, "control character"), ("permissions[0].except[0]", 6, "control character")]),
    ("empty", "", {}, [("", 1, "the minimum AppSpec is the two lines 'version: 0.0' and 'os: linux'")]),
    ("comments-only", "# nothing yet\n\n", {}, [("", 1, "the AppSpec is empty")]),
    ("marker-only", "---\n", {}, [("", 1, "the AppSpec is empty")]),
    ("scalar-document", "appspec\n", {}, [("", 1, "not a string; the minimum AppSpec")]),
    ("list-document", "- version: 0.0\n", {}, [("", 1, "must be a mapping of AppSpec sections")]),
    ("missing-version", "os: linux\n", {}, [("version", 1, "is required")]),
    ("version-one", "version: 1.0\nos: linux\n", {}, [("version", 1, "must be 0.0")]),
    ("version-string", "version: latest\nos: linux\n", {}, [("version", 1, "'latest'")]),
    ("missing-os", "version: 0.0\n", {}, [("os", 1, "is required and must be linux")]),
    ("os-windows", "version: 0.0\nos: windows\n", {}, [("os", 2, "windows is not supported by this collection (Linux hosts only)")]),
    ("os-capitalized", "version: 0.0\nos: Linux\n", {}, [("os", 2, "lower case")]),
    ("duplicate-top-level-key", "version: 0.0\nos: linux\nos: linux\n", {}, [("os", 3, "duplicate key 'os' (first at line 2)")]),
    (
        "duplicate-event",
        MIN + doc("""
        hooks:
          AfterInstall:
            - location: a.sh
          AfterInstall:
            - location: b.sh
        """),
        {},
        [("hooks.AfterInstall", 6, "duplicate key")],
    ),
    (
        "duplicate-script-key",
        MIN + "hooks:\n  AfterInstall:\n    - location: a.sh\n      location: b.sh\n",
        {},
        [("hooks.AfterInstall[0].location", 6, "duplicate key")],
    ),
    ("tab-indentation", MIN + "hooks:\n  AfterInstall:\n\t- location: a.sh\n", {}, [("", 5, "a tab is used for indentation")]),
    (
        "tab-indentation-every-line",
        MIN + "hooks:\n\tAfterInstall:\n\t\t- location: a.sh\n",
        {},
        [("", 4, "a tab is used for indentation"), ("", 5, "a tab is used for indentation")],
    ),
    ("yaml-syntax", MIN + "hooks: [unclosed\n", {}, [("", 4, "invalid YAML")]),
    ("two-documents", MIN + "---\nversion: 0.0\nos: linux\n", {}, [("", 4, "2 YAML documents")]),
    ("files-not-list", MIN + "files:\n  source: a\n  destination: /b\n", {}, [("files", 4, "must be a list")]),
    ("files-missing-destination", MIN + "files:\n  - source: app\n", {}, [("files[0].destination", 4, "is required")]),
    ("files-missing-source", MIN + "files:\n  - destination: /opt\n", {}, [("files[0].source", 4, "is required")]),
    ("files-relative-destination", MIN + "files:\n  - source: app\n    destination: opt/app\n", {}, [("files[0].destination", 5, "absolute path")]),
    ("files-source-escapes", MIN + "files:\n  - source: ../secrets\n    destination: /opt\n", {}, [("files[0].source", 4, "outside the revision")]),
    ("files-empty-entry", MIN + "files:\n  -\n", {}, [("files[0]", 4, "empty entry")]),
    ("permission-missing-object", MIN + "permissions:\n  - mode: 644\n", {}, [("permissions[0].object", 4, "is required")]),
    ("permission-relative-object", MIN + "permissions:\n  - object: app\n", {}, [("permissions[0].object", 4, "absolute path")]),
    ("mode-bad-digit", MIN + "permissions:\n  - object: /a\n    mode: 0855\n", {}, [("permissions[0].mode", 5, "'8', which is not an octal digit")]),
    ("mode-too-long", MIN + "permissions:\n  - object: /a\n    mode: 12345\n", {}, [("permissions[0].mode", 5, "1 to 4 octal digits")]),
    ("mode-letters", MIN + "permissions:\n  - object: /a\n    mode: rwxr-xr-x\n", {}, [("permissions[0].mode", 5, "'r', which is not an octal digit")]),
    ("mode-list", MIN + "permissions:\n  - object: /a\n    mode: [644]\n", {}, [("permissions[0].mode", 5, "not a list")]),
    ("acl-base-entry", MIN + "permissions:\n  - object: /a\n    acls: ['u::rwx']\n", {}, [("permissions[0].acls[0]", 5, "use mode")]),
    ("acl-malformed", MIN + "permissions:\n  - object: /a\n    acls:\n      - deploy\n", {}, [("permissions[0].acls[0]", 6, "invalid ACL entry 'deploy'")]),
    ("acl-bad-perms", MIN + "permissions:\n  - object: /a\n    acls:\n      - u:bob:rwz\n", {}, [("permissions[0].acls[0]", 6, "invalid permissions 'rwz'")]),
    (
        "context-missing-type",
        MIN + "permissions:\n  - object: /a\n    context:\n      name: system_u\n",
        {},
        [("permissions[0].context.type", 6, "is required")],
    ),
    (
        "context-inverted-range",
        MIN + "permissions:\n  - object: /a\n    context:\n      type: t\n      range: s3-s2\n",
        {},
        [("permissions[0].context.range", 7, "s2 is below s3")],
    ),
    (
        "context-category-too-big",
        MIN + "permissions:\n  - object: /a\n    context: {type: t, range: 's0:c1024'}\n",
        {},
        [("permissions[0].context.range", 5, "category 'c1024'")],
    ),
    (
        "permission-bad-type",
        MIN + "permissions:\n  - object: /a\n    type: [file, socket]\n",
        {},
        [("permissions[0].type[1]", 5, "'socket' is not a permission type")],
    ),
    ("reserved-event", MIN + "hooks:\n  Install:\n    - location: a.sh\n", {}, [("hooks.Install", 4, "run by CodeDeploy itself")]),
    ("reserved-event-downloadbundle", MIN + "hooks:\n  DownloadBundle: []\n", {}, [("hooks.DownloadBundle", 4, "no script can be attached")]),
    ("event-wrong-case", MIN + "hooks:\n  afterInstall:\n    - location: a.sh\n", {}, [("hooks.afterInstall", 4, "did you mean 'AfterInstall'?")]),
    ("event-value-mapping", MIN + "hooks:\n  AfterInstall:\n    location: a.sh\n", {}, [("hooks.AfterInstall", 5, "must be a list of scripts")]),
    ("empty-hook-entry", MIN + "hooks:\n  AfterInstall:\n    - \n    - location: b.sh\n", {}, [("hooks.AfterInstall[0]", 5, "empty hook entry")]),
    ("hook-missing-location", MIN + "hooks:\n  AfterInstall:\n    - timeout: 30\n", {}, [("hooks.AfterInstall[0].location", 5, "is required")]),
    ("hook-empty-location", MIN + "hooks:\n  AfterInstall:\n    - location: ''\n", {}, [("hooks.AfterInstall[0].location", 5, "must not be empty")]),
    (
        "timeout-with-unit",
        MIN + "hooks:\n  AfterInstall:\n    - location: a.sh\n      timeout: 30s\n",
        {},
        [("hooks.AfterInstall[0].timeout", 6, "whole number of seconds such as 300, not '30s'")],
    ),
    ("timeout-zero", MIN + "hooks:\n  AfterInstall:\n    - location: a.sh\n      timeout: 0\n", {}, [("hooks.AfterInstall[0].timeout", 6, "positive")]),
    ("timeout-negative", MIN + "hooks:\n  AfterInstall:\n    - location: a.sh\n      timeout: -5\n", {}, [("hooks.AfterInstall[0].timeout", 6, "positive")]),
    ("timeout-float", MIN + "hooks:\n  AfterInstall:\n    - location: a.sh\n      timeout: 30.5\n", {}, [("hooks.AfterInstall[0].timeout", 6, "not '30.5'")]),
    ("timeout-bool", MIN + "hooks:\n  AfterInstall:\n    - location: a.sh\n      timeout: true\n", {}, [("hooks.AfterInstall[0].timeout", 6, "whole number")]),
    (
        "sudo-string-false",
        MIN + "hooks:\n  AfterInstall:\n    - location: a.sh\n      sudo: 'false'\n",
        {},
        [("hooks.AfterInstall[0].sudo", 6, 'even "false", as true')],
    ),
    (
        "runas-number",
        MIN + "hooks:\n  AfterInstall:\n    - location: a.sh\n      runas: 1000\n",
        {},
        [("hooks.AfterInstall[0].runas", 6, "must be a string, not an integer (quote it)")],
    ),
    (
        "location-escapes",
        MIN + "hooks:\n  AfterInstall:\n    - location: scripts/../../x.sh\n",
        {},
        [("hooks.AfterInstall[0].location", 5, "outside the revision")],
    ),
    (
        "timeouts-sum-over-limit",
        MIN + doc("""
        hooks:
          ApplicationStart:
            - location: a.sh
              timeout: 3000
            - location: b.sh
              timeout: 1000
        """),
        {},
        [("hooks.ApplicationStart", 4, "may run 4000 s together (timeouts 3000+1000)")],
    ),
    (
        "timeouts-sum-over-limit-by-default-strict",
        MIN + "hooks:\n  ApplicationStart:\n    - location: a.sh\n    - location: b.sh\n",
        {"strict": True},
        [("hooks.ApplicationStart", 4, "may run 7200 s together (timeouts 3600+3600)")],
    ),
    (
        "max-event-timeout-lowered",
        MIN + doc("""
        hooks:
          ApplicationStart:
            - location: a.sh
              timeout: 30
            - location: b.sh
              timeout: 30
        """),
        {"max_event_timeout": 50},
        [("hooks.ApplicationStart", 4, "more than the 50 s")],
    ),
    ("file-exists-behavior-lowercase", MIN + "file_exists_behavior: overwrite\n", {}, [("file_exists_behavior", 3, "write it in upper case: OVERWRITE")]),
    ("key-wrong-case", MIN + "Hooks:\n  AfterInstall: []\n", {}, [("Hooks", 3, "did you mean 'hooks'?")]),
    ("strict-unknown-event", MIN + "hooks:\n  AfterDeploy: []\n", {"strict": True}, [("hooks.AfterDeploy", 4, "an error in strict mode")]),
    ("strict-unknown-key", MIN + "team: a\n", {"strict": True}, [("team", 3, "unknown key 'team'")]),
    ("strict-quoted-version", "version: '0.0'\nos: linux\n", {"strict": True}, [("version", 1, "quoted version")]),
    ("strict-unquoted-mode", MIN + "permissions:\n  - object: /a\n    mode: 0644\n" + INSTALLS[len(MIN):], {"strict": True},
     [("permissions[0].mode", 5, "YAML integer 420")]),
    ("strict-permission-outside-files", MIN + "permissions:\n  - object: /etc\n" + INSTALLS[len(MIN):], {"strict": True},
     [("permissions[0].object", 4, "'/etc' is not a files destination, nor below or above one")]),
    (
        "every-error-reported",
        doc("""
        version: 0.0
        os: linux
        files:
          - source: app
        hooks:
          AfterInstall:
            - location: a.sh
              timeout: 30s
            -
        file_exists_behavior: KEEP
        """),
        {},
        [
            ("files[0].destination", 4, "is required"),
            ("hooks.AfterInstall[0].timeout", 8, "30s"),
            ("hooks.AfterInstall[1]", 9, "empty hook entry"),
            ("file_exists_behavior", 10, "must be one of DISALLOW, OVERWRITE, RETAIN"),
        ],
    ),
    (
        "ecs-missing-fields",
        doc("""
        version: 0.0
        Resources:
          - TargetService:
              Type: AWS::ECS::Service
              Properties:
                LoadBalancerInfo:
                  ContainerName: web
        """),
        {},
        [
            ("Resources[0].TargetService.Properties.TaskDefinition", 6, "is required"),
            ("Resources[0].TargetService.Properties.LoadBalancerInfo.ContainerPort", 7, "is required"),
        ],
    ),
    (
        "ecs-bad-port",
        ECS.replace("ContainerPort: 8080", "ContainerPort: 70000"),
        {},
        [("Resources[0].TargetService.Properties.LoadBalancerInfo.ContainerPort", 9, "1-65535")],
    ),
    (
        "ecs-partial-network",
        ECS.replace('            Subnets: ["subnet-1", "subnet-2"]\n', ""),
        {},
        [("Resources[0].TargetService.Properties.NetworkConfiguration.AwsvpcConfiguration.Subnets", 13, "all of Subnets, SecurityGroups and AssignPublicIp")],
    ),
    (
        "ecs-assign-public-ip",
        ECS.replace('"DISABLED"', "yes"),
        {},
        [("Resources[0].TargetService.Properties.NetworkConfiguration.AwsvpcConfiguration.AssignPublicIp", 15, "must be a string, not a boolean")],
    ),
    ("ecs-event-wrong-case", ECS.replace("- BeforeInstall:", "- beforeinstall:"), {}, [("Hooks[0].beforeinstall", 21, "did you mean 'BeforeInstall'?")]),
    ("ecs-hooks-mapping", ECS.split("Hooks:")[0] + "Hooks:\n  BeforeInstall: Check\n", {}, [("Hooks", 21, "must be a list of '- Event: FunctionName' items")]),
    (
        "lambda-bad-version",
        LAMBDA.replace("currentversion: 1", "currentversion: latest"),
        {},
        [("resources[0].myFunction.properties.currentversion", 8, "published version number")],
    ),
    ("lambda-missing-alias", LAMBDA.replace("        alias: live\n", ""), {}, [("resources[0].myFunction.properties.Alias", 6, "is required")]),
    ("lambda-strict-foreign-event", LAMBDA + "  - BeforeInstall: Nope\n", {"strict": True}, [("hooks[2].BeforeInstall", 13, "an error in strict mode")]),
    (
        "resources-two",
        LAMBDA.split("hooks:")[0] + "  - other:\n      type: AWS::Lambda::Function\n",
        {},
        [("resources", 3, "exactly one resource"), ("resources[1].other.Properties", 11, "is required")],
    ),
    (
        "resources-unknown-type",
        "version: 0.0\nResources:\n  - X:\n      Type: AWS::EC2::Instance\n",
        {},
        [("Resources[0].X.Type", 4, "must be AWS::ECS::Service or AWS::Lambda::Function")],
    ),
    (
        "resources-with-os",
        "version: 0.0\nos: linux\nResources: []\n",
        {},
        [("os", 2, "belongs to EC2/on-premises AppSpecs"), ("Resources", 3, "exactly one resource")],
    ),
]


def _subset(expected: dict, parsed: _appspec.ParsedAppSpec) -> None:
    for key, value in expected.items():
        if key == "compute_platform":
            assert parsed.compute_platform == value
        else:
            assert parsed.appspec[key] == value, key


@pytest.fixture(params=["libyaml", "pure-python"])
def yaml_parser(request: t.Any, monkeypatch: t.Any) -> str:
    """Run the table with libyaml (as the agent's Psych) and with pure-Python PyYAML (some hosts)."""
    if request.param == "pure-python":
        monkeypatch.delattr(yaml, "CSafeLoader", raising=False)
    elif not hasattr(yaml, "CSafeLoader"):
        pytest.skip("PyYAML without libyaml")
    return request.param


@pytest.mark.parametrize("text,kwargs,expected,warnings", [c[1:] for c in VALID], ids=[c[0] for c in VALID])
def test_valid(yaml_parser: str, text: str, kwargs: dict, expected: dict, warnings: t.List[str]) -> None:
    parsed = parse_appspec(text, "appspec.yml", **kwargs)
    _subset(expected, parsed)
    assert len(parsed.warnings) == len(warnings), parsed.warnings
    for needle in warnings:
        assert any(needle in w for w in parsed.warnings), (needle, parsed.warnings)
    assert parsed.deployable is (parsed.compute_platform == "server")
    assert parsed.source == "appspec.yml"
    json.dumps(parsed.appspec)  # module return values must be JSON-able


@pytest.mark.parametrize("text,kwargs,expected", [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid(yaml_parser: str, text: str, kwargs: dict, expected: t.List[t.Tuple[str, int, str]]) -> None:
    with pytest.raises(AppSpecError) as info:
        parse_appspec(text, "appspec.yml", **kwargs)
    errors = info.value.errors
    assert [(e["path"], e["line"]) for e in errors] == [(p, line) for p, line, _m in expected], errors
    for error, (_path, _line, needle) in zip(errors, expected):
        assert needle in error["message"], (needle, error)
        assert isinstance(error["column"], int) and error["column"] >= 1
    assert info.value.details["errors"] is errors
    assert str(info.value).startswith("appspec.yml: ")


def test_table_size() -> None:
    assert len(VALID) + len(INVALID) >= 50


def test_error_message_summarizes_all_errors() -> None:
    text = MIN + "hooks:\n  AfterInstall:\n    - location: a.sh\n      timeout: 30s\n      sudo: 'no'\n"
    with pytest.raises(AppSpecError) as info:
        parse_appspec(text, "appspec.yml")
    assert str(info.value) == (
        "appspec.yml: 2 errors: line 6 col 16 hooks.AfterInstall[0].timeout: must be a whole number of seconds "
        "such as 300, not '30s'; line 7 col 13 hooks.AfterInstall[0].sudo: must be true or false (unquoted), "
        "not 'no': the CodeDeploy agent would treat any such value, even \"false\", as true"
    )
    assert isinstance(info.value, DeployError)


def test_constants() -> None:
    assert IN_PLACE_EVENTS[0] == "BeforeBlockTraffic" and IN_PLACE_EVENTS[-1] == "AfterAllowTraffic"
    assert (
        IN_PLACE_EVENTS.index("DownloadBundle")
        < IN_PLACE_EVENTS.index("Install")
        < IN_PLACE_EVENTS.index("AfterInstall")
        < IN_PLACE_EVENTS.index("ApplicationStart")
    )
    assert set(LAST_SUCCESSFUL_EVENTS) == {"ApplicationStop", "BeforeBlockTraffic", "AfterBlockTraffic"}
    assert "Install" in RESERVED_EVENTS and "ApplicationStop" not in RESERVED_EVENTS


def test_hooks_for() -> None:
    parsed = parse_appspec(MIN + "hooks:\n  AfterInstall:\n    - location: a.sh\n      timeout: 5\n")
    assert parsed.hooks_for("AfterInstall") == [script("a.sh", 5)]
    assert parsed.hooks_for("ApplicationStart") == []
    parsed.hooks_for("AfterInstall")[0]["timeout"] = 1  # a copy: the parsed value does not change
    assert parsed.appspec["hooks"]["AfterInstall"][0]["timeout"] == 5
    lam = parse_appspec(LAMBDA)
    assert lam.hooks_for("BeforeAllowTraffic") == [{"function_name": "PreTrafficCheck"}]
    assert lam.deployable is False and "AWS Lambda" in (lam.not_deployable_reason or "")


def test_alias_bomb_is_refused() -> None:
    lines = [MIN.rstrip("\n"), "a0: &a0 {k: v}"]
    for n in range(1, 25):
        lines.append("a%d: &a%d {<<: [%s]}" % (n, n, ", ".join(["*a%d" % (n - 1)] * 4)))
    lines.append("hooks:\n  AfterInstall:\n    - <<: *a24\n      location: a.sh")
    with pytest.raises(AppSpecError) as info:
        parse_appspec("\n".join(lines) + "\n")
    assert "too many nodes" in str(info.value)


def test_example_revision_parses_cleanly() -> None:
    parsed = load_appspec(os.path.join(REPO, "examples", "webapp"))
    assert parsed.warnings == []
    assert parsed.compute_platform == "server" and parsed.deployable
    hooked = [e for e in IN_PLACE_EVENTS if e not in RESERVED_EVENTS]
    assert list(parsed.appspec["hooks"]) == hooked  # a script in every event, in run order


# --- finding and reading files -----------------------------------------------------------------


def test_find_appspec_order(tmp_path: t.Any) -> None:
    (tmp_path / "appspec.yaml").write_text(MIN)
    assert find_appspec(str(tmp_path)) == str(tmp_path / "appspec.yaml")
    (tmp_path / "appspec.yml").write_text(MIN)
    assert find_appspec(str(tmp_path)) == str(tmp_path / "appspec.yml")
    (tmp_path / "deploy-spec.yml").write_text(MIN)
    assert find_appspec(str(tmp_path), "deploy-spec.yml") == str(tmp_path / "deploy-spec.yml")
    # a missing custom name falls back to the defaults
    assert find_appspec(str(tmp_path), "other.yml") == str(tmp_path / "appspec.yml")


def test_find_appspec_missing(tmp_path: t.Any) -> None:
    (tmp_path / "myapp-1.2").mkdir()
    (tmp_path / "myapp-1.2" / "appspec.yml").write_text(MIN)
    with pytest.raises(DeployError, match=r"looked for appspec\.yml, appspec\.yaml .*myapp-1\.2/appspec\.yml exists"):
        find_appspec(str(tmp_path))
    with pytest.raises(DeployError, match="not a directory"):
        find_appspec(str(tmp_path / "nope"))
    with pytest.raises(DeployError, match="inside the revision"):
        find_appspec(str(tmp_path), "../appspec.yml")


def test_load_appspec_file_and_dir(tmp_path: t.Any) -> None:
    (tmp_path / "appspec.yml").write_text(MIN + "hooks:\n  AfterInstall:\n    - location: a.sh\n")
    from_dir = load_appspec(str(tmp_path))
    from_file = load_appspec(str(tmp_path / "appspec.yml"))
    assert from_dir.appspec == from_file.appspec
    assert from_dir.source == str(tmp_path / "appspec.yml")
    with pytest.raises(DeployError, match="does not exist"):
        load_appspec(str(tmp_path / "missing.yml"))


def test_load_appspec_error_names_the_file(tmp_path: t.Any) -> None:
    path = tmp_path / "appspec.yml"
    path.write_text("version: 0.0\nos: windows\n")
    with pytest.raises(AppSpecError, match="^%s: line 2 col 5 os: windows is not supported" % path):
        load_appspec(str(tmp_path))


def test_load_appspec_encodings(tmp_path: t.Any) -> None:
    path = tmp_path / "appspec.yml"
    path.write_bytes(("\ufeff" + MIN).encode("utf-16"))
    assert load_appspec(str(path)).appspec["os"] == "linux"
    path.write_bytes(b"\xef\xbb\xbf" + MIN.encode())
    assert load_appspec(str(path)).appspec["os"] == "linux"
    path.write_bytes(MIN.encode() + b"hooks:\n  AfterInstall:\n    - location: caf\xe9.sh\n")
    with pytest.raises(AppSpecError) as info:
        load_appspec(str(path))
    assert (info.value.errors[0]["line"], info.value.errors[0]["column"]) == (5, 20)
    assert "not valid utf-8" in info.value.errors[0]["message"]


def test_max_event_timeout_must_be_positive() -> None:
    with pytest.raises(DeployError, match="max_event_timeout"):
        parse_appspec(MIN, max_event_timeout=0)


# --- the host-side fixtures are what this parser returns -----------------------------------------


@pytest.mark.parametrize(
    "yaml_text, kwargs",
    [
        (MIN, {}),
        (MIN + "hooks:\n  AfterInstall:\n    - location: a.sh\n", {"hooks": {"AfterInstall": ["a.sh"]}}),
        (MIN + "hooks:\n  ApplicationStop:\n    - location: s.sh\n      timeout: 60\n      runas: app\n      sudo: true\n"
         "  ValidateService:\n    - location: v.sh\n",
         {"hooks": {"ApplicationStop": [{"location": "s.sh", "timeout": 60, "runas": "app", "sudo": True}],
                    "ValidateService": ["v.sh"]}}),
        (MIN + "files:\n  - source: app\n    destination: /srv/app\nfile_exists_behavior: OVERWRITE\n",
         {"files": [{"source": "app", "destination": "/srv/app"}], "file_exists_behavior": "OVERWRITE"}),
    ],
)
def test_host_side_fixtures_match_the_parser(yaml_text: str, kwargs: t.Dict[str, t.Any]) -> None:
    """tests/unit/bundle_fixtures.server_appspec builds appspec.json for host-side tests without YAML:
    it must stay exactly what the controller sends for the same AppSpec."""
    from bundle_fixtures import lambda_appspec, parsed_appspec, server_appspec

    assert parse_appspec(yaml_text, "appspec.yml").as_dict() == server_appspec(**kwargs).as_dict()
    assert parsed_appspec(yaml_text).as_dict() == server_appspec(**kwargs).as_dict()
    lambda_text = ("version: 0.0\nResources:\n  - fn:\n      Type: AWS::Lambda::Function\n      Properties:\n"
                   "        Name: f\n        Alias: live\n        CurrentVersion: '1'\n        TargetVersion: '2'\n")
    assert dict(parse_appspec(lambda_text).as_dict(), source=None) == dict(lambda_appspec().as_dict(), source=None)
