"""Host lock: atomic, complete, fails fast naming the holder, stale locks broken explicitly."""

from __future__ import annotations

import json
import multiprocessing
import os
import time

import pytest

from ansible_collections.appspec.deploy.plugins.module_utils._errors import DeployError
from ansible_collections.appspec.deploy.plugins.module_utils._lock import HostLock, LockHeldError


def test_acquire_writes_complete_json(tmp_path):
    lock = HostLock(str(tmp_path), "g1")
    got = lock.acquire("d-AAA", ttl=60, owner="ops@ctl")
    assert got["changed"] is True
    data = json.loads(open(lock.path).read())
    assert data["deployment_id"] == "d-AAA" and data["owner"] == "ops@ctl" and data["pid"] == os.getpid()
    assert 59 <= data["expires"] - data["acquired"] <= 60
    assert lock.path == str(tmp_path / "locks" / "g1.lock")
    assert not [n for n in os.listdir(tmp_path / "locks") if n != "g1.lock"], "no temp files left"


def test_second_deployment_fails_fast_naming_holder(tmp_path):
    lock = HostLock(str(tmp_path), "g1")
    lock.acquire("d-AAA", owner="alice@ctl")
    start = time.monotonic()
    with pytest.raises(LockHeldError) as err:
        lock.acquire("d-BBB")
    assert time.monotonic() - start < 0.5
    assert "d-AAA" in str(err.value) and "alice@ctl" in str(err.value)
    assert err.value.details["holder"]["deployment_id"] == "d-AAA"


def test_reacquire_by_holder_extends(tmp_path):
    lock = HostLock(str(tmp_path), "g1")
    first = lock.acquire("d-AAA", ttl=10)
    again = lock.acquire("d-AAA", ttl=1000)
    assert again["changed"] is False
    assert again["lock"]["expires"] > first["lock"]["expires"]
    assert lock.read()["expires"] == again["lock"]["expires"]


def test_release_only_by_holder(tmp_path):
    lock = HostLock(str(tmp_path), "g1")
    lock.acquire("d-AAA")
    with pytest.raises(DeployError, match="held by deployment d-AAA"):
        lock.release("d-BBB")
    assert lock.read()["deployment_id"] == "d-AAA"
    assert lock.release("d-AAA") is True
    assert lock.read() is None
    assert lock.release("d-AAA") is False


def test_stale_lock_is_not_taken_silently_but_can_be_broken(tmp_path):
    lock = HostLock(str(tmp_path), "g1")
    lock.acquire("d-OLD", ttl=1)
    data = lock.read()
    data["expires"] = time.time() - 5
    open(lock.path, "w").write(json.dumps(data))
    with pytest.raises(LockHeldError, match="stale"):
        lock.acquire("d-NEW")
    got = lock.acquire("d-NEW", break_stale=True)
    assert got["changed"] and lock.read()["deployment_id"] == "d-NEW"


def test_break_stale_does_not_break_a_live_lock(tmp_path):
    lock = HostLock(str(tmp_path), "g1")
    lock.acquire("d-LIVE", ttl=600)
    with pytest.raises(LockHeldError, match="if it is no longer running .* state=unlocked force=true"):
        lock.acquire("d-NEW", break_stale=True)


def test_break_lock_and_unreadable_lock(tmp_path):
    lock = HostLock(str(tmp_path), "g1")
    assert lock.break_lock() is None
    os.makedirs(os.path.dirname(lock.path))
    open(lock.path, "w").write("{torn")
    assert lock.read() == {}
    with pytest.raises(LockHeldError, match="unreadable"):
        lock.acquire("d-NEW")
    assert lock.break_lock() == {}
    assert lock.acquire("d-NEW")["changed"]


def test_check_mode_changes_nothing(tmp_path):
    lock = HostLock(str(tmp_path), "g1")
    assert lock.acquire("d-AAA", check_mode=True)["changed"] is True
    assert lock.read() is None


def test_bad_name_and_ttl(tmp_path):
    with pytest.raises(DeployError):
        HostLock(str(tmp_path), "../x")
    with pytest.raises(DeployError):
        HostLock(str(tmp_path), "g").acquire("d-A", ttl=0)


def _contend(root: str, index: int, queue) -> None:
    try:
        HostLock(root, "g1").acquire("d-%03d" % index)
        queue.put(index)
    except LockHeldError:
        queue.put(None)


def test_exactly_one_of_many_processes_wins(tmp_path):
    queue = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=_contend, args=(str(tmp_path), i, queue)) for i in range(12)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(10)
    results = [queue.get(timeout=5) for proc in procs]
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert HostLock(str(tmp_path), "g1").read()["deployment_id"] == "d-%03d" % winners[0]


# --- expiry: short by default, renewed while the deployment runs (issue 14) ---------------------------


def test_default_expiry_is_ten_minutes_and_remembered_for_renewals(tmp_path):
    lock = HostLock(str(tmp_path), "g1")
    got = lock.acquire("d-AAA")["lock"]
    assert got["expires"] - got["acquired"] == pytest.approx(600) and got["ttl"] == 600
    lock.break_lock()
    lock.acquire("d-BBB", ttl=5)
    before = lock.read()["expires"]
    time.sleep(0.05)
    assert lock.refresh("d-BBB") is True
    assert before < lock.read()["expires"] <= time.time() + 5  # renewed for its own ttl, not the default
    assert lock.refresh("d-OTHER") is False and lock.read()["deployment_id"] == "d-BBB"


def _hold_and_die(root: str, ready) -> None:  # pragma: no cover - runs in a child process
    HostLock(root, "g1").acquire("d-DEAD", ttl=1, owner="killed@controller")
    ready.set()
    time.sleep(60)


def test_the_lock_of_a_killed_holder_expires_and_is_breakable(tmp_path):
    # A controller killed in the middle: its lock must not block the group beyond its (short) expiry.
    ready = multiprocessing.Event()
    holder = multiprocessing.Process(target=_hold_and_die, args=(str(tmp_path), ready))
    holder.start()
    assert ready.wait(10)
    holder.kill()
    holder.join()
    lock = HostLock(str(tmp_path), "g1")
    with pytest.raises(LockHeldError, match="if it is no longer running"):
        lock.acquire("d-NEXT", break_stale=True)  # not expired yet: never broken
    time.sleep(1.1)
    assert HostLock.is_stale(lock.read())
    with pytest.raises(LockHeldError, match="The lock is stale: break it"):
        lock.acquire("d-NEXT")
    taken = lock.acquire("d-NEXT", break_stale=True)
    assert taken["changed"] is True
    assert lock.read()["deployment_id"] == "d-NEXT"


def test_a_long_run_keeps_its_lock_fresh_and_stops_renewing_after(tmp_path):
    lock = HostLock(str(tmp_path), "g1")
    lock.acquire("d-LONG", ttl=1)
    other = HostLock(str(tmp_path), "g1")
    with lock.kept_fresh("d-LONG", interval=0.2):
        for dummy in range(6):  # three times the ttl
            time.sleep(0.5)
            assert not HostLock.is_stale(other.read())
            with pytest.raises(LockHeldError):
                other.acquire("d-OTHER", break_stale=True)
    time.sleep(1.1)  # no renewal any more: the lock expires as a dead holder's would
    assert HostLock.is_stale(other.read())


def test_renewal_stops_when_the_lock_is_no_longer_ours(tmp_path):
    lock = HostLock(str(tmp_path), "g1")
    lock.acquire("d-LONG", ttl=1)
    with lock.kept_fresh("d-LONG", interval=0.1):
        lock.break_lock()
        lock.acquire("d-OTHER", ttl=1)
        written = lock.read()
        time.sleep(0.4)
        assert lock.read() == written  # never rewritten by the old holder's thread
