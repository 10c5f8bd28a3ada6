# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Load balancer backends against a real haproxy (runtime API) and a real nginx (upstream file + reload)."""

from __future__ import annotations

import os
import time
import typing as t

import pytest

from ansible_collections.appspec.deploy.plugins.module_utils._errors import DeployError
from ansible_collections.appspec.deploy.plugins.module_utils._load_balancer import HAProxy, Nginx
from lb_fixtures import Backend, HAProxyInstance, NginxInstance, Request, free_port, get, wait_for


@pytest.fixture
def backends() -> t.Iterator[t.Dict[str, Backend]]:
    made = {name: Backend(name) for name in ("web1", "web2")}
    yield made
    for backend in made.values():
        backend.stop()


@pytest.fixture
def haproxy(backends: t.Dict[str, Backend]) -> t.Iterator[HAProxyInstance]:
    """web1 serving, web2 in maintenance, web3 checked on a port where nothing listens (DOWN)."""
    lines = [
        "web1 127.0.0.1:%d check inter 100 rise 1 fall 1" % backends["web1"].port,
        "web2 127.0.0.1:%d check inter 100 rise 1 fall 1 disabled" % backends["web2"].port,
        "web3 127.0.0.1:%d check inter 100 rise 1 fall 1 disabled" % free_port(),
    ]
    instance = HAProxyInstance(lines)
    yield instance
    instance.stop()


def lb_of(instance: HAProxyInstance) -> HAProxy:
    return HAProxy(instance.socket, "app")


def summary(servers: t.Dict[str, t.Dict[str, t.Any]]) -> t.Dict[str, t.Tuple[str, int]]:
    return {name: (s["state"], s["weight"]) for name, s in servers.items()}


# --- haproxy -----------------------------------------------------------------------------------------

def test_haproxy_query_states_and_counters(haproxy: HAProxyInstance) -> None:
    lb = lb_of(haproxy)
    for dummy in range(3):
        assert get(haproxy.port) == (200, "web1")
    servers = lb.servers()
    assert summary(servers) == {"web1": ("ready", 1), "web2": ("maint", 1), "web3": ("maint", 1)}
    assert servers["web1"]["status"].startswith("UP") and servers["web2"]["status"] == "MAINT"
    web1 = servers["web1"]["counters"]
    assert web1["hrsp_2xx"] == 3 and web1["stot"] == 3 and web1["scur"] == 0 and web1["hrsp_5xx"] == 0
    assert set(web1) >= {"rtime", "ttime", "eresp", "econ", "lbtot", "hrsp_other"}


def test_haproxy_switch_drains_open_request(haproxy: HAProxyInstance, backends: t.Dict[str, Backend]) -> None:
    lb = lb_of(haproxy)
    slow = Request(haproxy.port, "/slow?s=1.5")
    wait_for(lambda: len(backends["web1"].slow_started) > 0, "the slow request to reach web1 through haproxy")
    assert lb.servers()["web1"]["counters"]["scur"] == 1
    start = time.monotonic()
    got = lb.apply([{"name": "web1", "state": "maint"}, {"name": "web2", "state": "ready"}], drain_timeout=10)
    took = time.monotonic() - start
    assert got["changed"] and not got["warnings"]
    assert [(m["name"], m["from"], m["to"]) for m in got["moves"]] == [("web2", "maint", "ready"), ("web1", "ready", "maint")]
    web1_move = got["moves"][1]
    # Drained until the open request was answered.
    answered_after = backends["web1"].slow_started[0] + 1.5 - start
    assert web1_move["sessions_left"] == 0 and answered_after - 0.1 <= web1_move["drain_seconds"] <= took + 0.01
    slow.join(5)
    assert slow.result == (200, "web1"), slow.error
    assert summary(lb.servers())["web1"] == ("maint", 1)
    assert {get(haproxy.port)[1] for dummy in range(4)} == {"web2"}
    again = lb.apply([{"name": "web1", "state": "maint"}, {"name": "web2", "state": "ready"}])
    assert again == {"changed": False, "moves": [], "warnings": []}


def test_haproxy_drain_timeout_carries_on(haproxy: HAProxyInstance) -> None:
    lb = lb_of(haproxy)
    slow = Request(haproxy.port, "/slow?s=2")
    time.sleep(0.3)
    got = lb.apply([{"name": "web1", "state": "drain"}], drain_timeout=0.5)
    move = got["moves"][0]
    assert move["to"] == "drain" and move["sessions_left"] == 1 and move["drain_seconds"] >= 0.5
    assert "still had 1 sessions" in got["warnings"][0]
    servers = lb.servers()
    assert servers["web1"]["state"] == "drain" and servers["web1"]["status"] == "DRAIN"
    slow.join(5)
    assert slow.result == (200, "web1")


def test_haproxy_weights_and_check_mode(haproxy: HAProxyInstance) -> None:
    lb = lb_of(haproxy)
    changes = [{"name": "web1", "weight": 30}, {"name": "web2", "state": "ready", "weight": 10}]
    predicted = lb.apply(changes, check_mode=True)
    assert summary(lb.servers())["web1"] == ("ready", 1), "check mode changed nothing"
    real = lb.apply(changes)
    assert predicted == real and predicted["changed"]
    assert [(m["name"], m["weight_from"], m["weight_to"]) for m in real["moves"]] == [("web2", 1, 10), ("web1", 1, 30)]
    assert summary(lb.servers()) == {"web1": ("ready", 30), "web2": ("ready", 10), "web3": ("maint", 1)}
    counts = {"web1": 0, "web2": 0}
    for dummy in range(40):
        counts[get(haproxy.port)[1]] += 1
    assert counts["web1"] > 2 * counts["web2"] > 0
    assert lb.apply(changes, check_mode=True)["changed"] is False
    assert lb.apply(changes)["changed"] is False


@pytest.mark.parametrize(
    "changes, message",
    [
        ([{"name": "web1", "weight": 10}, {"name": "nope", "state": "maint"}], "has no server nope"),
        ([{"name": "web1", "weight": 10}, {"name": "web2", "weight": 300}], "weight must be an integer from 0 to 256"),
        ([{"name": "web1", "state": "gone"}], "state must be one of"),
        ([{"name": "web1", "weight": 10}, {"name": "web1", "state": "maint"}], "listed twice"),
    ],
)
def test_haproxy_refuses_before_any_change(haproxy: HAProxyInstance, changes: t.List[t.Dict[str, t.Any]], message: str) -> None:
    lb = lb_of(haproxy)
    before = summary(lb.servers())
    with pytest.raises(DeployError, match=message):
        lb.apply(changes)
    assert summary(lb.servers()) == before


def test_haproxy_missing_socket_and_backend(haproxy: HAProxyInstance, tmp_path: t.Any) -> None:
    with pytest.raises(DeployError, match="does not exist: check that haproxy runs"):
        HAProxy(str(tmp_path / "none.sock"), "app").servers()
    with pytest.raises(DeployError, match="haproxy backend other .*check the backend name"):
        HAProxy(haproxy.socket, "other").servers()


def test_haproxy_ready_waits_for_up(haproxy: HAProxyInstance) -> None:
    lb = lb_of(haproxy)
    web3_port = int(haproxy_server_port(haproxy, "web3"))
    late = {}  # type: t.Dict[str, Backend]

    def start_late() -> None:
        time.sleep(1)
        late["web3"] = Backend("web3", web3_port)

    import threading
    starter = threading.Thread(target=start_late)
    starter.start()
    try:
        start = time.monotonic()
        got = lb.apply([{"name": "web3", "state": "ready"}], allow_timeout=10)
        assert time.monotonic() - start >= 0.9
        assert got["changed"] and lb.servers()["web3"]["status"].startswith("UP")
    finally:
        starter.join()
        late["web3"].stop()


def test_haproxy_ready_at_weight_zero_then_weighted(haproxy: HAProxyInstance) -> None:
    lb = lb_of(haproxy)
    got = lb.apply([{"name": "web2", "state": "ready", "weight": 0}], allow_timeout=5)
    web2 = lb.servers()["web2"]
    assert got["changed"] and web2["status"] == "UP" and (web2["state"], web2["weight"]) == ("ready", 0)
    assert {get(haproxy.port)[1] for dummy in range(4)} == {"web1"}, "weight 0: no traffic yet"
    lb.apply([{"name": "web2", "weight": 5}])
    assert "web2" in {get(haproxy.port)[1] for dummy in range(6)}


def test_haproxy_ready_timeout_puts_back(haproxy: HAProxyInstance) -> None:
    lb = lb_of(haproxy)
    lb.apply([{"name": "web1", "weight": 7}])
    before = summary(lb.servers())
    with pytest.raises(DeployError) as err:
        lb.apply([{"name": "web2", "state": "ready", "weight": 3}, {"name": "web3", "state": "ready"},
                  {"name": "web1", "state": "maint"}], allow_timeout=1)
    assert "server web3 is DOWN" in str(err.value) and "web2, web3 put back" in str(err.value)
    assert err.value.details == {"server": "web3", "status": err.value.details["status"]}
    assert summary(lb.servers()) == before == {"web1": ("ready", 7), "web2": ("maint", 1), "web3": ("maint", 1)}


def haproxy_server_port(instance: HAProxyInstance, name: str) -> str:
    for line in open(instance.config):
        if line.split()[:2] == ["server", name]:
            return line.split()[2].rsplit(":", 1)[1]
    raise AssertionError(name)


# --- nginx -------------------------------------------------------------------------------------------

UPSTREAM = """# managed by the deployment
upstream app {
    # the blue group
    server 127.0.0.1:{web1} max_fails=2   fail_timeout=5s;  # web1
    server 127.0.0.1:{web2} weight=2 down;
    keepalive 4;
}
"""


@pytest.fixture
def nginx(backends: t.Dict[str, Backend], tmp_path: t.Any) -> t.Iterator[NginxInstance]:
    text = UPSTREAM.replace("{web1}", str(backends["web1"].port)).replace("{web2}", str(backends["web2"].port))
    instance = NginxInstance(str(tmp_path / "nginx"), text)
    yield instance
    instance.stop()


def nginx_lb(instance: NginxInstance) -> Nginx:
    return Nginx(instance.upstream_file, "app", test_command=instance.test_command, reload_command=instance.reload_command)


def test_nginx_query(nginx: NginxInstance, backends: t.Dict[str, Backend]) -> None:
    web1, web2 = ("127.0.0.1:%d" % backends[n].port for n in ("web1", "web2"))
    servers = nginx_lb(nginx).servers()
    assert summary(servers) == {web1: ("ready", 1), web2: ("maint", 2)}
    assert servers[web1]["counters"] == {} and servers[web1]["upstream"] == "app"
    assert {get(nginx.port)[1] for dummy in range(4)} == {"web1"}


def test_nginx_switch_drains_old_workers(nginx: NginxInstance, backends: t.Dict[str, Backend]) -> None:
    web1, web2 = ("127.0.0.1:%d" % backends[n].port for n in ("web1", "web2"))
    lb = nginx_lb(nginx)
    original = open(nginx.upstream_file).read()
    changes = [{"name": web1, "state": "drain"}, {"name": web2, "state": "ready", "weight": 5}]
    predicted = lb.apply(changes, check_mode=True)
    assert open(nginx.upstream_file).read() == original
    slow = Request(nginx.port, "/slow?s=1.5")
    wait_for(lambda: len(backends["web1"].slow_started) > 0, "the slow request to reach web1 through nginx")
    old_workers = nginx.workers()
    start = time.monotonic()
    got = lb.apply(changes, drain_timeout=10)
    took = time.monotonic() - start
    assert [(m["name"], m["from"], m["to"], m["weight_to"]) for m in got["moves"]] == [(web2, "maint", "ready", 5), (web1, "ready", "maint", 1)]
    assert [{k: v for k, v in m.items() if k in ("name", "from", "to", "weight_from", "weight_to")} for m in got["moves"]] == predicted["moves"]
    # The old worker was waited for until the slow request was answered (it arrived before the reload).
    answered_after = backends["web1"].slow_started[0] + 1.5 - start
    assert got["moves"][1]["old_workers_left"] == 0 and answered_after - 0.1 <= got["moves"][1]["drain_seconds"] <= took + 0.01
    assert not set(old_workers) & set(nginx.workers()), "the old worker finished its request and exited"
    slow.join(5)
    assert slow.result == (200, "web1"), slow.error
    assert open(nginx.upstream_file).read() == (
        original.replace("fail_timeout=5s;", "fail_timeout=5s down;").replace("weight=2 down;", "weight=5;")
    ), "comments, other parameters and spacing are kept"
    assert {get(nginx.port)[1] for dummy in range(4)} == {"web2"}
    assert summary(lb.servers()) == {web1: ("maint", 1), web2: ("ready", 5)}
    mtime = os.stat(nginx.upstream_file).st_mtime_ns
    assert lb.apply(changes) == {"changed": False, "moves": [], "warnings": []}
    assert os.stat(nginx.upstream_file).st_mtime_ns == mtime


def test_nginx_weight_zero_is_down(nginx: NginxInstance, backends: t.Dict[str, Backend]) -> None:
    web1 = "127.0.0.1:%d" % backends["web1"].port
    lb = nginx_lb(nginx)
    got = lb.apply([{"name": web1, "weight": 0}], drain_timeout=5)
    assert [(m["from"], m["to"], m["weight_to"]) for m in got["moves"]] == [("ready", "maint", 1)]
    assert lb.servers()[web1]["state"] == "maint"
    status, body = get(nginx.port)
    assert status == 502, "every server is down now"
    with pytest.raises(DeployError, match="contradicts state ready"):
        lb.apply([{"name": web1, "weight": 0, "state": "ready"}])


def test_nginx_failed_test_restores_and_does_not_reload(nginx: NginxInstance, backends: t.Dict[str, Backend]) -> None:
    web1 = "127.0.0.1:%d" % backends["web1"].port
    lb = nginx_lb(nginx)
    original = open(nginx.upstream_file).read()
    workers = nginx.workers()
    with open(nginx.conf, "a") as handle:  # someone broke the main configuration since nginx started
        handle.write("this_is_not_a_directive on;\n")
    with pytest.raises(DeployError) as err:
        lb.apply([{"name": web1, "state": "maint"}])
    assert "was put back and nginx was not reloaded" in str(err.value) and "this_is_not_a_directive" in str(err.value)
    assert open(nginx.upstream_file).read() == original
    assert [n for n in os.listdir(os.path.dirname(nginx.upstream_file)) if n.startswith(".tmp-")] == []
    time.sleep(0.3)
    assert nginx.workers() == workers, "no reload"
    assert get(nginx.port) == (200, "web1")


@pytest.mark.parametrize(
    "text, upstream, message",
    [
        ("upstream app {\n    server 10.0.0.1:80;\n", None, "block is not closed"),
        ("upstream app {\n    keepalive 2;\n}\n", None, "no `server ADDRESS"),
        ("upstream app {\n    server 10.0.0.1:80;\n}\n", "other", "no upstream other in the file \\(it has: app\\)"),
    ],
)
def test_nginx_unparsable(tmp_path: t.Any, text: str, upstream: t.Optional[str], message: str) -> None:
    path = tmp_path / "up.conf"
    path.write_text(text)
    with pytest.raises(DeployError, match=message):
        Nginx(str(path), upstream).servers()


def test_nginx_unknown_server_and_missing_file(tmp_path: t.Any) -> None:
    path = tmp_path / "up.conf"
    path.write_text("upstream a {\n    server 10.0.0.1:80;\n}\nupstream b {\n    server 10.0.0.1:80 down;\n    server 10.0.0.2:80;\n}\n")
    lb = Nginx(str(path), test_command="false", reload_command="false")
    assert summary(lb.servers()) == {"10.0.0.1:80": ("maint", 1), "10.0.0.2:80": ("ready", 1)}
    assert lb.servers()["10.0.0.1:80"]["upstreams"] == ["a", "b"]
    with pytest.raises(DeployError, match="has no server 10.0.0.9:80"):
        lb.apply([{"name": "10.0.0.2:80", "state": "maint"}, {"name": "10.0.0.9:80", "state": "maint"}])
    with pytest.raises(DeployError, match="does not exist: check the upstream file option"):
        Nginx(str(tmp_path / "none.conf")).servers()
