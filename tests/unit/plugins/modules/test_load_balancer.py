# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""load_balancer's main() against a real haproxy and a real nginx: query, check, apply, again, diff, failures."""

from __future__ import annotations

import json
import typing as t

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.appspec.deploy.plugins.modules import load_balancer
from lb_fixtures import Backend, HAProxyInstance, NginxInstance, get


def run(capsys: t.Any, args: t.Dict[str, t.Any], check: bool = False) -> t.Dict[str, t.Any]:
    with patch_module_args(dict(args, _ansible_check_mode=check, _ansible_diff=True)):
        with pytest.raises(SystemExit):
            load_balancer.main()
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def backends() -> t.Iterator[t.Dict[str, Backend]]:
    made = {name: Backend(name) for name in ("web1", "web2")}
    yield made
    for backend in made.values():
        backend.stop()


def test_haproxy_check_apply_again(capsys: t.Any, backends: t.Dict[str, Backend]) -> None:
    lb = HAProxyInstance([
        "web1 127.0.0.1:%d check inter 100 rise 1 fall 1" % backends["web1"].port,
        "web2 127.0.0.1:%d check inter 100 rise 1 fall 1 disabled" % backends["web2"].port,
    ])
    try:
        base = {"type": "haproxy", "socket": lb.socket, "backend": "app"}
        get(lb.port)
        query = run(capsys, dict(base, state="query"))
        assert query["changed"] is False and query["servers"]["web1"]["counters"]["hrsp_2xx"] == 1
        assert query["servers"]["web2"]["state"] == "maint" and query["moves"] == []
        args = dict(base, servers=[{"name": "web2", "state": "ready", "weight": 4}, {"name": "web1", "state": "maint"}])
        check = run(capsys, args, check=True)
        assert check["changed"] and check["diff"] == {
            "before": "web1: ready weight 1\nweb2: maint weight 1\n",
            "after": "web1: maint weight 1\nweb2: ready weight 4\n",
        }
        assert run(capsys, dict(base, state="query"))["servers"]["web2"]["state"] == "maint", "check mode changed nothing"
        real = run(capsys, args)
        assert real["changed"] and real["diff"] == check["diff"]
        assert [{k: m[k] for k in ("name", "from", "to", "weight_from", "weight_to")} for m in real["moves"]] == check["moves"]
        assert real["moves"][1]["sessions_left"] == 0
        assert {name: (s["state"], s["weight"]) for name, s in real["servers"].items()} == {"web1": ("maint", 1), "web2": ("ready", 4)}
        assert get(lb.port) == (200, "web2")
        assert run(capsys, args, check=True)["changed"] is False
        again = run(capsys, args)
        assert again["changed"] is False and again["moves"] == [] and again["diff"]["before"] == again["diff"]["after"]
        unknown = run(capsys, dict(base, servers=[{"name": "web9", "state": "maint"}]))
        assert unknown["failed"] and "has no server web9" in unknown["msg"] and unknown["server"] == "web9"
        nosocket = run(capsys, dict(base, socket=lb.socket + ".none", state="query"))
        assert nosocket["failed"] and "does not exist" in nosocket["msg"]
    finally:
        lb.stop()


def test_nginx_check_apply_again(capsys: t.Any, backends: t.Dict[str, Backend], tmp_path: t.Any) -> None:
    web1, web2 = ("127.0.0.1:%d" % backends[n].port for n in ("web1", "web2"))
    lb = NginxInstance(str(tmp_path / "nginx"), "upstream app {\n    server %s;\n    server %s down;\n}\n" % (web1, web2))
    try:
        base = {"type": "nginx", "upstream_file": lb.upstream_file, "test_command": lb.test_command, "reload_command": lb.reload_command}
        args = dict(base, servers=[{"name": web1, "state": "drain"}, {"name": web2, "state": "ready"}], drain_timeout=5)
        check = run(capsys, args, check=True)
        assert check["changed"] and [(m["name"], m["to"]) for m in check["moves"]] == [(web2, "ready"), (web1, "maint")]
        assert "%s down;" % web2 in open(lb.upstream_file).read()
        real = run(capsys, args)
        assert real["changed"] and real["diff"] == check["diff"] and real["servers"][web1]["state"] == "maint"
        assert open(lb.upstream_file).read() == "upstream app {\n    server %s down;\n    server %s;\n}\n" % (web1, web2)
        assert get(lb.port) == (200, "web2")
        assert run(capsys, args)["changed"] is False
        with open(lb.conf, "a") as handle:
            handle.write("broken;\n")
        failed = run(capsys, dict(base, servers=[{"name": web2, "weight": 3}]))
        assert failed["failed"] and "nginx was not reloaded" in failed["msg"] and "broken" in failed["test_output"]
        assert "weight" not in open(lb.upstream_file).read()
    finally:
        lb.stop()
