"""The leader lease and fencing, on both backends: one leader at a time, and a stale leader cannot write."""

from __future__ import annotations

import time

import pytest

from corral.store import FencedError, SqlStore, WriteBatch, open_store
from tests.store.factories import make_job
from tests.support.cluster import wait_for

# A lease short enough to wait out, long enough that what a test does while it is live (a query or two, a
# few ms) has a margin far beyond 5x on a loaded machine. Where a test needs it to run out, it polls.
TTL_S = 2.0


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
    other = open_store(database_url)  # opened first: the live-lease check below runs right after acquiring
    try:
        started = time.time()
        assert store.acquire_lease("a", "http://a", TTL_S) == 1
        assert other.acquire_lease("b", "http://b", 30) is None  # one query after a's: well inside its TTL
        epoch = wait_for(
            lambda: other.acquire_lease("b", "http://b", 30), timeout=10 * TTL_S, what="a's lease to run out"
        )
        assert epoch == 2
        assert time.time() - started >= TTL_S  # not before a's lease ran out (both read the same clock)
    finally:
        other.close()


def test_a_stale_leader_cannot_write(store: SqlStore, database_url: str) -> None:
    other = open_store(database_url)
    try:
        a = store.acquire_lease("a", "http://a", TTL_S)
        assert a == 1
        store.write(WriteBatch(jobs=[make_job("before")]), epoch=a)
        # a pauses; its lease runs out; b takes over
        b = wait_for(
            lambda: other.acquire_lease("b", "http://b", 30), timeout=10 * TTL_S, what="a's lease to run out"
        )
        assert b == 2
        with pytest.raises(FencedError):
            store.write(WriteBatch(jobs=[make_job("after")]), epoch=a)
        with pytest.raises(FencedError):
            store.put_setting("scheduler.mode.flex", "spread", epoch=a)
        assert store.get_job("before") is not None
        assert store.get_job("after") is None
        other.write(WriteBatch(jobs=[make_job("by-b")]), epoch=b)  # the current leader writes as usual
        assert other.get_job("by-b") is not None
    finally:
        other.close()


def test_a_leader_that_stops_renewing_can_be_replaced_early(store: SqlStore, database_url: str) -> None:
    ttl = 5.0  # overdue 2.5 s after its renewal, live until 5 s: the checks below have 2.5 s and need ms
    other = open_store(database_url)
    try:
        assert store.acquire_lease("a", "http://a", ttl) == 1
        assert other.lease().overdue is False  # just renewed
        # More than half the TTL without a renewal: a missed renewal.
        lease = wait_for(lambda: (seen := other.lease()).overdue and seen, timeout=5 * ttl, what="overdue")
        assert lease.live
        assert other.acquire_lease("b", "http://b", ttl, take_from=5) is None  # only from the epoch it saw
        assert other.acquire_lease("b", "http://b", ttl, take_from=lease.epoch) == 2
        assert other.acquire_lease("c", "http://c", ttl, take_from=lease.epoch) is None  # one taker wins
        assert store.renew_lease("a", 1, ttl) is False  # and the old leader learns it at its next renewal
        assert other.lease().holder == "b"
    finally:
        other.close()
