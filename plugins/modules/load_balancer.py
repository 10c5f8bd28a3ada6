#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: load_balancer
short_description: Read and change servers at a load balancer - haproxy runtime API or nginx upstreams
version_added: 0.1.0
description:
  - Reads the servers of one haproxy backend or nginx upstream (state, status, weight and, for haproxy, traffic
    counters), and moves them in and out of traffic or changes their weights.
  - "All O(servers) changes are checked first (an unknown server or a bad value changes nothing), then made in this
    order: servers going to V(ready), each waited for until the load balancer reports it up (or else every server
    changed so far is put back and the task fails); then weight-only changes; then servers leaving traffic, drained
    together until their open sessions end (up to O(drain_timeout), then the task carries on with a warning) and
    put in maintenance when asked."
  - A server going to V(maint) while it serves is always drained first.
  - "haproxy: through its runtime API unix socket (C(stats socket ... level admin)), with no other tool. A server
    leaving maintenance is held down until its health checks pass, so that up means checked."
  - "nginx: open-source nginx has no runtime API. The C(server ADDRESS ...;) lines of the upstream block(s) in
    O(upstream_file) get or lose the C(down) flag and their C(weight=N), keeping comments and other parameters.
    All changes are written at once (temp file and rename), O(test_command) validates them (on failure the previous
    file is put back and nginx is not reloaded), then O(reload_command) reloads nginx gracefully and, when a server
    left traffic, the task waits (up to O(drain_timeout)) for the old workers, which finish the open requests, to
    exit. There is no drain state in nginx - V(drain) means V(maint) - and a weight of 0 means V(maint)."
author:
  - appspec.deploy developers (@appspec-deploy)
extends_documentation_fragment:
  - appspec.deploy.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  idempotent:
    support: full
options:
  type:
    description:
      - The load balancer.
    type: str
    required: true
    choices: [haproxy, nginx]
    version_added: 0.1.0
  state:
    description:
      - V(present) applies O(servers); V(query) only reads.
    type: str
    choices: [present, query]
    default: present
    version_added: 0.1.0
  servers:
    description:
      - The changes, one per server. A server not listed is left alone.
    type: list
    elements: dict
    default: []
    version_added: 0.1.0
    suboptions:
      name:
        description:
          - The haproxy server name, or the nginx C(server) address as written in the file (C(host:port)).
        type: str
        required: true
      state:
        description:
          - V(ready) takes traffic, V(drain) takes no new traffic, V(maint) is out of service (after a drain).
          - Unset keeps the server's state.
        type: str
        choices: [ready, drain, maint]
      weight:
        description:
          - The server's weight, 0 to 256 on haproxy; 1 or more on nginx, where 0 means V(maint).
          - Unset keeps the server's weight.
        type: int
  socket:
    description:
      - haproxy's runtime API socket (C(stats socket ... level admin)).
    type: path
    default: /run/haproxy/admin.sock
    version_added: 0.1.0
  backend:
    description:
      - The haproxy backend holding the servers.
    type: str
    default: app
    version_added: 0.1.0
  upstream_file:
    description:
      - The nginx file holding the upstream block(s) and their C(server) lines.
    type: path
    default: /etc/nginx/conf.d/appspec-upstream.conf
    version_added: 0.1.0
  upstream:
    description:
      - The nginx upstream to use. Unset, the C(server) lines of every upstream block in O(upstream_file) are used,
        and a server listed in several blocks is changed in all of them.
    type: str
    version_added: 0.1.0
  test_command:
    description:
      - The command validating nginx's configuration after the file is changed (split like a shell would, run without one).
    type: str
    default: nginx -t
    version_added: 0.1.0
  reload_command:
    description:
      - The command reloading nginx gracefully once the test passed.
    type: str
    default: nginx -s reload
    version_added: 0.1.0
  drain_timeout:
    description:
      - Seconds to wait for the open sessions (haproxy) or the old workers (nginx) of servers leaving traffic,
        then carry on with a warning, as an ELB deregistration delay does.
    type: int
    default: 30
    version_added: 0.1.0
  allow_timeout:
    description:
      - Seconds to wait for servers going to V(ready) to be reported up (haproxy), then fail and put them back.
    type: int
    default: 30
    version_added: 0.1.0
  deployment_id:
    description:
      - The deployment this change belongs to, returned as RV(deployment_id) for the report of the
        C(appspec.deploy.deployment_summary) callback. It changes nothing else.
    type: str
    version_added: 0.1.0
notes:
  - Run it on the load balancer's host (C(delegate_to)). Runs against one nginx file should not overlap (C(throttle=1)).
seealso:
  - name: haproxy management guide, the runtime API
    description: The C(set server) and C(show stat) commands.
    link: https://docs.haproxy.org/2.6/management.html#9.3
  - name: nginx upstream module
    description: The C(server) directive and its C(down) and C(weight) parameters.
    link: https://nginx.org/en/docs/http/ngx_http_upstream_module.html#server
"""

EXAMPLES = r"""
- name: Take web1 out of traffic (drain, then maintenance)
  appspec.deploy.load_balancer:
    type: haproxy
    backend: app
    servers:
      - name: web1
        state: maint
  delegate_to: lb1

- name: Switch blue/green at once - green serves, blue drains
  appspec.deploy.load_balancer:
    type: haproxy
    servers:
      - {name: green1, state: ready}
      - {name: green2, state: ready}
      - {name: blue1, state: maint}
      - {name: blue2, state: maint}
    drain_timeout: 60
  delegate_to: lb1

- name: Give the canary 10% of the traffic
  appspec.deploy.load_balancer:
    type: haproxy
    servers:
      - {name: canary1, state: ready, weight: 10}
      - {name: web1, weight: 45}
      - {name: web2, weight: 45}
  delegate_to: lb1

- name: Read haproxy's counters of the backend
  appspec.deploy.load_balancer:
    type: haproxy
    state: query
  delegate_to: lb1
  register: lb

- name: Block a server in an nginx upstream, validated by nginx -t before the reload
  appspec.deploy.load_balancer:
    type: nginx
    upstream_file: /etc/nginx/conf.d/app-upstream.conf
    upstream: app
    servers:
      - name: 10.0.0.11:8080
        state: maint
  delegate_to: lb1
  throttle: 1
"""

RETURN = r"""
servers:
  description:
    - The servers after the task (in check mode, as they would be), by name.
    - Each has C(state) (V(ready), V(drain), V(maint)), C(status) (haproxy's, such as C(UP), C(DOWN), C(MAINT), C(DRAIN),
      C(no check); on nginx C(no check) or C(MAINT)), C(weight) and C(counters).
    - "haproxy counters (from C(show stat)): C(scur), C(stot), C(hrsp_1xx) to C(hrsp_5xx), C(hrsp_other), C(eresp), C(econ),
      C(rtime) and C(ttime) (average milliseconds over the last 1024 requests), C(req_tot), C(lbtot). nginx has none."
    - nginx servers also have C(upstream) and C(upstreams).
  returned: success
  type: dict
  sample:
    web1: {state: ready, status: UP, weight: 1, counters: {scur: 0, stot: 120, hrsp_2xx: 118, hrsp_5xx: 2, rtime: 12}}
    web2: {state: maint, status: MAINT, weight: 1, counters: {scur: 0, stot: 98}}
before:
  description: The servers before the task, as in RV(servers).
  returned: success
  type: dict
  sample: {web1: {state: ready, status: UP, weight: 1, counters: {}}}
deployment_id:
  description: O(deployment_id).
  returned: when O(state=present)
  type: str
  sample: d-ABCDEFGHI
moves:
  description:
    - The changes made (in check mode, that would be made), in the order made, each with C(name), C(from) and C(to)
      (states), C(weight_from) and C(weight_to).
    - A server drained also has C(drain_seconds) and C(sessions_left) (haproxy; V(null) on nginx, which has
      C(old_workers_left)); a non-zero value means the drain timed out.
  returned: success
  type: list
  elements: dict
  sample:
    - {name: web2, from: maint, to: ready, weight_from: 1, weight_to: 1}
    - {name: web1, from: ready, to: maint, weight_from: 1, weight_to: 1, drain_seconds: 1.4, sessions_left: 0}
"""

import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.appspec.deploy.plugins.module_utils._errors import DeployError
from ansible_collections.appspec.deploy.plugins.module_utils._load_balancer import HAProxy, Nginx


def _diff_text(servers: t.Dict[str, t.Dict[str, t.Any]]) -> str:
    return "".join("%s: %s weight %s\n" % (name, s["state"], s["weight"]) for name, s in sorted(servers.items()))


def _predicted(before: t.Dict[str, t.Dict[str, t.Any]], moves: t.List[t.Dict[str, t.Any]]) -> t.Dict[str, t.Dict[str, t.Any]]:
    after = {name: dict(server) for name, server in before.items()}
    for move in moves:
        after[move["name"]].update(state=move["to"], weight=move["weight_to"])
    return after


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            type=dict(type="str", required=True, choices=["haproxy", "nginx"]),
            state=dict(type="str", choices=["present", "query"], default="present"),
            servers=dict(
                type="list",
                elements="dict",
                default=[],
                options=dict(
                    name=dict(type="str", required=True),
                    state=dict(type="str", choices=["ready", "drain", "maint"]),
                    weight=dict(type="int"),
                ),
            ),
            socket=dict(type="path", default="/run/haproxy/admin.sock"),
            backend=dict(type="str", default="app"),
            upstream_file=dict(type="path", default="/etc/nginx/conf.d/appspec-upstream.conf"),
            upstream=dict(type="str"),
            test_command=dict(type="str", default="nginx -t"),
            reload_command=dict(type="str", default="nginx -s reload"),
            drain_timeout=dict(type="int", default=30),
            allow_timeout=dict(type="int", default=30),
            deployment_id=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if p["type"] == "haproxy":
        lb = HAProxy(p["socket"], p["backend"])  # type: t.Union[HAProxy, Nginx]
    else:
        lb = Nginx(p["upstream_file"], p["upstream"], test_command=p["test_command"], reload_command=p["reload_command"])
    changes = [{k: v for k, v in server.items() if v is not None} for server in p["servers"]]
    try:
        before = lb.servers()
        if p["state"] == "query":
            module.exit_json(changed=False, servers=before, before=before, moves=[])
        done = lb.apply(changes, drain_timeout=p["drain_timeout"], allow_timeout=p["allow_timeout"], check_mode=module.check_mode)
        after = _predicted(before, done["moves"]) if module.check_mode else lb.servers()
    except DeployError as err:
        module.fail_json(msg=str(err), **err.details)
    for warning in done["warnings"]:
        module.warn(warning)
    result = dict(changed=done["changed"], servers=after, before=before, moves=done["moves"], deployment_id=p["deployment_id"])
    if module._diff:
        result["diff"] = {"before": _diff_text(before), "after": _diff_text(after)}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
