"""The leader lease and fencing, on both backends: one leader at a time, and a stale leader cannot write."""

from __future__ import annotations

import time

import pytest

from corral.store import FencedError, SqlStore, WriteBatch, open_store
from tests.store.factories import make_job


def test_one_leader_at_a_time_and_epochs_go_up(store: SqlStore, database_url: str) -> None:
    assert store.lease().live is False
    assert store.acquire_lease("a", "http://a", 30) == 1
    other = open_store(database_url)
    try:
        assert other.acquire_lease("b", "http://b", 30) is None  # a's lease is live
        lease = other.lease()
        assert (lease.holder, lease.url, lease.epoch, lease.live) == ("a", "http://a", 1, True)
        assert store.renew_lease("a", 1, 30) is True
        store.release_lease("a", 1)  # a clean shutdown: no need to wait for the lease to run out
        assert other.acquire_lease("b", "http://b", 30) == 2
        assert store.renew_lease("a", 1, 30) is False  # a's epoch is over
    finally:
        other.close()


def test_a_lease_that_runs_out_can_be_taken(store: SqlStore, database_url: str) -> None:
    assert store.acquire_lease("a", "http://a", 0.3) == 1
    other = open_store(database_url)
    try:
        assert other.acquire_lease("b", "http://b", 5) is None
        time.sleep(0.5)
        assert other.acquire_lease("b", "http://b", 5) == 2
    finally:
        other.close()


def test_a_stale_leader_cannot_write(store: SqlStore, database_url: str) -> None:
    store.epoch = store.acquire_lease("a", "http://a", 0.2)
    store.write(WriteBatch(jobs=[make_job("before")]))
    time.sleep(0.3)  # a pauses; its lease runs out; b takes over
    other = open_store(database_url)
    try:
        other.epoch = other.acquire_lease("b", "http://b", 30)
        assert other.epoch == 2
        with pytest.raises(FencedError):
            store.write(WriteBatch(jobs=[make_job("after")]))
        with pytest.raises(FencedError):
            store.put_setting("scheduler.mode.flex", "spread")
        assert store.get_job("after") is None
        other.write(WriteBatch(jobs=[make_job("by-b")]))  # the current leader writes as usual
        assert other.get_job("by-b") is not None
    finally:
        other.close()


def test_a_leader_that_stops_renewing_can_be_replaced_early(store: SqlStore, database_url: str) -> None:
    assert store.acquire_lease("a", "http://a", 3.0) == 1
    other = open_store(database_url)
    try:
        assert other.lease().overdue is False  # just renewed
        time.sleep(1.7)  # more than half the TTL without a renewal: a missed renewal
        lease = other.lease()
        assert lease.live and lease.overdue
        assert other.acquire_lease("b", "http://b", 3.0, take_from=5) is None  # only from the epoch it saw
        assert other.acquire_lease("b", "http://b", 3.0, take_from=lease.epoch) == 2
        assert other.acquire_lease("c", "http://c", 3.0, take_from=lease.epoch) is None  # one taker wins
        assert store.renew_lease("a", 1, 3.0) is False  # and the old leader learns it at its next renewal
    finally:
        other.close()
