"""roles/revision: CodeDeploy deployment configs -> minimum healthy hosts, batch size, success rule.

Runs the real role with ansible-playbook (controller only, nothing deployed) over a table of fleet
sizes and configs, including configs it must refuse before touching any host.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]

# (hosts, deployment config, expected (min_healthy, max_unhealthy = batch, required_successes) or None = refused)
CASES = [
    (9, "HOST_COUNT:6", (6, 3, 6)),  # AWS's own example: up to 3 at a time, 6 must succeed
    (9, "FLEET_PERCENT:40", (4, 5, 4)),  # AWS's own example: up to 5 at a time, 4 must succeed
    (9, "CodeDeployDefault.HalfAtATime", (5, 4, 5)),  # 4 at a time (rounded down), 5 must succeed
    (4, "CodeDeployDefault.HalfAtATime", (2, 2, 2)),
    (1, "CodeDeployDefault.HalfAtATime", (1, 1, 1)),  # a built-in config still deploys a single host
    (4, "CodeDeployDefault.OneAtATime", (3, 1, 3)),  # all but the last host must succeed
    (1, "CodeDeployDefault.OneAtATime", (0, 1, 1)),
    (4, "CodeDeployDefault.AllAtOnce", (0, 4, 1)),  # at least one host must succeed
    (3, {"minimum_healthy_hosts": {"type": "HOST_COUNT", "value": 1}}, (1, 2, 1)),
    (3, "fleet_percent=50", (2, 1, 2)),
    (3, "HOST_COUNT:0", (0, 3, 1)),
    (3, "HOST_COUNT:3", None),  # no host could ever be taken out of service
    (2, "FLEET_PERCENT:99", None),
    (3, "FLEET_PERCENT:101", None),
    (3, "CodeDeployDefault.Bogus", None),
    (3, "HOST_COUNT:two", None),
]

PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.include_tasks: case.yml
      loop: "{{ cases }}"
      loop_control:
        loop_var: case
    - ansible.builtin.copy:
        content: "{{ results | default([]) | to_json }}"
        dest: "{{ out }}"
        mode: "0644"
"""

CASE = """
- block:
    - ansible.builtin.include_role:
        name: appspec.deploy.revision
      vars:
        revision_hosts: "all[0:{{ case.hosts - 1 }}]"
        revision_deployment_config: "{{ case.config }}"
        revision_validate: false
    - ansible.builtin.set_fact:
        results: "{{ results | default([]) + [{'index': case.index, 'ok': true, 'plan': revision_deployment}] }}"
  rescue:
    - ansible.builtin.set_fact:
        results: "{{ results | default([]) + [{'index': case.index, 'ok': false, 'msg': ansible_failed_result.msg}] }}"
"""


@pytest.fixture(scope="module")
def plans(tmp_path_factory):
    work = tmp_path_factory.mktemp("configs")
    inventory = {"all": {"hosts": {"h%d" % i: {"ansible_connection": "local"} for i in range(9)}}}
    (work / "inventory.yml").write_text(yaml.safe_dump(inventory))
    (work / "play.yml").write_text(PLAYBOOK)
    (work / "case.yml").write_text(CASE)
    cases = [{"index": i, "hosts": n, "config": c} for i, (n, c, _expected) in enumerate(CASES)]
    (work / "vars.json").write_text(json.dumps({"cases": cases, "out": str(work / "out.json")}))
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=str(REPO / ".cache" / "collections"))
    run = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(work / "inventory.yml"),
         str(work / "play.yml"), "-e", "@" + str(work / "vars.json")],
        cwd=str(work), env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return {r["index"]: r for r in json.loads((work / "out.json").read_text())}


@pytest.mark.parametrize("index", range(len(CASES)), ids=["%d hosts %s" % (c[0], c[1]) for c in CASES])
def test_deployment_config(plans, index):
    hosts, config, expected = CASES[index]
    result = plans[index]
    if expected is None:
        assert not result["ok"], result
        assert "appspec_deployment_config" in result["msg"] or "no host could ever" in result["msg"], result["msg"]
        return
    assert result["ok"], result
    plan = result["plan"]
    assert (plan["min_healthy"], plan["max_unhealthy"], plan["required_successes"]) == expected
    assert plan["batches"] == [expected[1]]
    assert len(plan["hosts"]) == hosts
    assert plan["deployment_id"].startswith("d-") and len(plan["deployment_id"]) == 11
    assert plan["rollback_deployment_id"] != plan["deployment_id"]
    assert plan["deployment_group_id"] == "ccfdebf6-7906-511f-9347-105ddd88ec7f"  # webapp/default, as _layout makes it
