# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The revision history (a real directory, a real S3-compatible server) and the promotion rules."""

from __future__ import annotations

import json
import multiprocessing
import os

import pytest

from bundle_fixtures import moto_endpoint, s3  # noqa: F401 pylint: disable=unused-import

from ansible_collections.appspec.deploy.plugins.plugin_utils import _history

SHA_A, SHA_B, SHA_C = "a" * 64, "b" * 64, "c" * 64
T0 = 1796083200  # 2026-12-01T00:00:00Z


def deployment(deployment_id, environment, sha256, hosts=("h1", "h2"), application="shop"):
    return {"deployment_id": deployment_id, "rollback_deployment_id": "r" + deployment_id, "application_name": application,
            "deployment_group_name": environment, "deployment_group_id": "g-" + environment, "revision": "/dist/%s.zip" % sha256[:4],
            "revision_kind": "local", "sha256": sha256, "bundle_env": {}, "deployment_config": "CodeDeployDefault.AllAtOnce",
            "hosts": list(hosts)}


def hostvars_for(dep, statuses, rollback=None):
    """Host variables as roles/lifecycle and roles/rollback leave them."""
    variables = {}
    for host, status in statuses.items():
        variables[host] = {"lifecycle_deployment": dep["deployment_id"], "lifecycle_status": status,
                           "lifecycle_failure": {"event": "ValidateService", "msg": "exit 3"} if status == "failed" else {},
                           "lifecycle_events": [{"event": "Install", "status": "succeeded", "duration": 0.1, "scripts": []}]}
        if rollback and host in rollback:
            variables[host].update(rollback_deployment=dep["rollback_deployment_id"], rollback_status=rollback[host],
                                   rollback_message="back to d-OLD")
    return variables


def record(store, dep, statuses, ended, rollback=None, user="ci@build"):
    failed = [h for h, s in statuses.items() if s != "succeeded"]
    outcome = {"deployment_id": dep["deployment_id"], "failed": bool(failed), "failed_hosts": failed,
               "succeeded": [h for h, s in statuses.items() if s == "succeeded"]}
    rec = _history.make_record(dep, outcome, _history.host_results(dep, hostvars_for(dep, statuses, rollback)),
                               started=ended - 30, ended=ended, user=user)
    _history.write_record(store, rec)
    return rec


def test_a_record_holds_what_the_deployment_did(tmp_path):
    store = _history.open_store(str(tmp_path / "history"))
    dep = deployment("d-AAAAAAAA1", "staging", SHA_A)
    rec = record(store, dep, {"h1": "succeeded", "h2": "failed"}, T0, rollback={"h2": "succeeded"})
    name = "shop/deployments/20261201T000000Z-d-AAAAAAAA1.json"
    assert sorted(os.listdir(str(tmp_path / "history" / "shop" / "deployments"))) == [os.path.basename(name)]
    on_disk = json.loads((tmp_path / "history" / name).read_text())
    assert on_disk == rec
    assert (rec["application"], rec["environment"], rec["sha256"], rec["status"]) == ("shop", "staging", SHA_A, "failed")
    assert (rec["started"], rec["ended"], rec["who"]) == ("2026-11-30T23:59:30Z", "2026-12-01T00:00:00Z", "ci@build")
    assert rec["hosts"]["h1"] == {"status": "succeeded", "running": True,
                                  "events": [{"event": "Install", "status": "succeeded", "duration": 0.1}]}
    assert rec["hosts"]["h2"]["failure"] == {"event": "ValidateService", "msg": "exit 3"}
    assert rec["hosts"]["h2"]["rollback"] == {"status": "succeeded", "msg": "back to d-OLD"}
    assert rec["hosts"]["h2"]["running"] is False
    assert _history.read_records(store, "shop") == [rec]
    # A record is never overwritten: the same deployment id again in the same second is a record of its own.
    assert _history.write_record(store, rec) == "shop/deployments/20261201T000000Z-d-AAAAAAAA1-2.json"
    assert len(_history.read_records(store, "shop")) == 2


def test_a_host_the_deployment_never_reached(tmp_path):
    dep = deployment("d-AAAAAAAA1", "staging", SHA_A)
    hosts = _history.host_results(dep, {"h1": {"lifecycle_deployment": "d-OTHER", "lifecycle_status": "succeeded"}})
    assert hosts == {"h1": {"status": "not_deployed", "running": False}, "h2": {"status": "not_deployed", "running": False}}


def _writer(root, index):
    store = _history.open_store(root)
    for round_ in range(30):
        store.put("shop/blocks/%s.json" % SHA_A, {"writer": index, "round": round_, "pad": "x" * 20000})


def test_writes_are_atomic(tmp_path):
    """Readers never see half a record while writers replace it, and no temp file stays behind."""
    root = str(tmp_path / "history")
    store = _history.open_store(root)
    store.put("shop/blocks/%s.json" % SHA_A, {"writer": -1, "round": 0, "pad": ""})
    writers = [multiprocessing.Process(target=_writer, args=(root, index)) for index in range(3)]
    for process in writers:
        process.start()
    reads = 0
    while any(process.is_alive() for process in writers):
        data = store.get("shop/blocks/%s.json" % SHA_A)  # raises HistoryError on a torn JSON document
        assert set(data) == {"writer", "round", "pad"}
        reads += 1
    for process in writers:
        process.join()
        assert process.exitcode == 0
    assert reads > 0
    assert os.listdir(os.path.join(root, "shop", "blocks")) == [SHA_A + ".json"]


def test_an_unwritable_history_is_an_error_naming_it(tmp_path):
    (tmp_path / "file").write_text("")
    store = _history.open_store(str(tmp_path / "file" / "history"))
    with pytest.raises(_history.HistoryError, match="cannot write the history"):
        store.put("shop/x.json", {})
    with pytest.raises(_history.HistoryError, match="cannot read"):
        store.names("shop/deployments")


def test_what_runs_where_since_when(tmp_path):
    store = _history.open_store(str(tmp_path))
    record(store, deployment("d-000000001", "staging", SHA_A), {"h1": "succeeded", "h2": "succeeded"}, T0)
    record(store, deployment("d-000000002", "staging", SHA_B), {"h1": "succeeded", "h2": "failed"}, T0 + 60,
           rollback={"h2": "succeeded"})
    record(store, deployment("d-000000003", "production", SHA_A, hosts=("p1",)), {"p1": "succeeded"}, T0 + 120, user="alice")
    running = _history.current(_history.read_records(store, "shop"))
    assert [(r["environment"], r["host"], r["sha256"], r["deployment_id"], r["since"], r["who"]) for r in running] == [
        ("production", "p1", SHA_A, "d-000000003", "2026-12-01T00:02:00Z", "alice"),
        ("staging", "h1", SHA_B, "d-000000002", "2026-12-01T00:01:00Z", "ci@build"),
        ("staging", "h2", SHA_A, "d-000000001", "2026-12-01T00:00:00Z", "ci@build"),  # rolled back: still the old one
    ]
    listing = _history.listing(store, "shop")
    assert [r["deployment_id"] for r in listing["deployments"]] == ["d-000000003", "d-000000002", "d-000000001"]
    text = "\n".join(listing["text"])
    assert "shop         production   p1    aaaaaaaaaaaa  d-000000003  2026-12-01T00:02:00Z  alice" in text
    assert "staging      d-000000002  failed     1/2       bbbbbbbbbbbb" in text
    assert [r["deployment_id"] for r in _history.listing(store, None, "production")["deployments"]] == ["d-000000003"]
    assert len(_history.listing(store, "shop", limit=1)["deployments"]) == 1


def test_promotion_needs_success_in_the_previous_environment(tmp_path):
    store = _history.open_store(str(tmp_path))
    envs = ["staging", "production"]

    def promote(sha256=None, target="production"):
        return _history.check_promotion(_history.read_records(store, "shop"), _history.read_blocks(store, "shop"),
                                        envs, target, sha256, "shop")

    with pytest.raises(_history.PromotionError, match="no deployment of shop has succeeded in staging yet"):
        promote()
    record(store, deployment("d-000000001", "staging", SHA_A), {"h1": "succeeded", "h2": "succeeded"}, T0)
    record(store, deployment("d-000000002", "staging", SHA_B), {"h1": "succeeded", "h2": "failed"}, T0 + 60)
    with pytest.raises(_history.PromotionError) as err:
        promote(SHA_B)
    assert "the last deployment of revision bbbbbbbbbbbb to staging, d-000000002 (2026-12-01T00:01:00Z), failed on h2" in str(err.value)
    with pytest.raises(_history.PromotionError) as err:
        promote(SHA_C)
    assert ("revision cccccccccccc was never deployed to staging, the environment before production: it must succeed there "
            "first; the last revision that succeeded there is aaaaaaaaaaaa (d-000000001") in str(err.value)
    with pytest.raises(_history.PromotionError, match="not an environment of shop"):
        promote(SHA_A, "qa")
    with pytest.raises(_history.PromotionError, match="first environment"):
        promote(SHA_A, "staging")
    allowed = promote(SHA_A.upper())
    assert allowed["variables"] == {"appspec_revision": "/dist/aaaa.zip", "appspec_revision_sha256": SHA_A}
    assert (allowed["from_environment"], allowed["from_deployment_id"]) == ("staging", "d-000000001")
    assert promote()["sha256"] == SHA_A  # the last success in staging, by default
    # A later failure of the same revision in staging withdraws it.
    record(store, deployment("d-000000003", "staging", SHA_A), {"h1": "failed", "h2": "failed"}, T0 + 120)
    with pytest.raises(_history.PromotionError, match="d-000000003"):
        promote(SHA_A)


def test_a_blocked_revision_is_refused_with_its_reason(tmp_path):
    store = _history.open_store(str(tmp_path))
    record(store, deployment("d-000000001", "staging", SHA_A), {"h1": "succeeded"}, T0)
    with pytest.raises(_history.HistoryError, match="needs a reason"):
        _history.set_block(store, "shop", SHA_A, True, " ", "bob@ci", T0)
    changed, before, after = _history.set_block(store, "shop", SHA_A, True, "CVE-2026-1 in libfoo", "bob@ci", T0, check_mode=True)
    assert changed and before is None and not _history.read_blocks(store, "shop")  # check mode wrote nothing
    assert _history.set_block(store, "shop", SHA_A, True, "CVE-2026-1 in libfoo", "bob@ci", T0)[0]
    assert not _history.set_block(store, "shop", SHA_A, True, "CVE-2026-1 in libfoo", "bob@ci", T0)[0]  # idempotent
    records = _history.read_records(store, "shop")
    with pytest.raises(_history.PromotionError) as err:
        _history.check_promotion(records, _history.read_blocks(store, "shop"), ["staging", "production"], "production", SHA_A, "shop")
    assert 'revision aaaaaaaaaaaa is blocked: "CVE-2026-1 in libfoo" (blocked by bob@ci at 2026-12-01T00:00:00Z' in str(err.value)
    assert "Blocked revisions:" in "\n".join(_history.listing(store, "shop")["text"])
    assert _history.set_block(store, "shop", SHA_A, False, "", "bob@ci", T0 + 5)[0]
    assert _history.check_promotion(records, _history.read_blocks(store, "shop"), ["staging", "production"], "production",
                                    SHA_A, "shop")["sha256"] == SHA_A


def test_history_in_s3(s3, tmp_path, monkeypatch):
    s3.create_bucket(Bucket="state")
    store = _history.open_store("s3://state/appspec/history", s3_endpoint_url=s3.endpoint, s3_region="us-east-1")
    rec = record(store, deployment("d-000000001", "staging", SHA_A), {"h1": "succeeded"}, T0)
    record(store, deployment("d-000000002", "staging", SHA_B, application="other app"), {"h1": "succeeded"}, T0 + 1)
    keys = sorted(item["Key"] for item in s3.list_objects_v2(Bucket="state")["Contents"])
    assert keys == ["appspec/history/other%20app/deployments/20261201T000001Z-d-000000002.json",
                    "appspec/history/shop/deployments/20261201T000000Z-d-000000001.json"]
    assert _history.read_records(store, "shop") == [rec]
    assert [r["application"] for r in _history.read_records(store)] == ["shop", "other app"]
    _history.set_block(store, "shop", SHA_A, True, "bad", "bob", T0)
    assert list(_history.read_blocks(store, "shop")) == [SHA_A]
    assert _history.open_store("s3://state/nothing-here", s3_endpoint_url=s3.endpoint).get("x.json") is None
    with pytest.raises(_history.HistoryError, match="cannot write s3://missing-bucket"):
        _history.open_store("s3://missing-bucket/h", s3_endpoint_url=s3.endpoint).put("x.json", {})


def test_who_and_the_default_location(monkeypatch):
    assert _history.who({"awx_user_name": "alice"}) == "alice"
    assert _history.who({"tower_user_name": "bob"}) == "bob"
    assert "@" in _history.who({})
    assert _history.default_location({"APPSPEC_DEPLOY_HISTORY_DIR": "/h"}) == "/h"
    assert _history.default_location({"XDG_STATE_HOME": "/s"}) == "/s/appspec.deploy/history"
    started = _history.process_start(os.getpid())
    assert started is None or started > T0 - 10 * 365 * 86400
