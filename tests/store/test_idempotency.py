"""Idempotency records in the store: written with their job in one transaction, found again by principal
and key (by a new leader too), the first use of a key kept, old ones pruned."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import Connection

from corral.domain.idempotency import IdempotencyRecord
from corral.store import FencedError, SqlStore, StoreError, WriteBatch
from corral.store.protocol import UnwritableRecord
from tests.store.factories import make_job

SURROGATE = "\ud800"


def key(n: int, principal: str = "alice", created_at: float = 10.0, job: str = "") -> IdempotencyRecord:
    return IdempotencyRecord(principal, f"key-{n}", f"sha256:{n:02x}", "job", job or f"j{n}", created_at)


def test_a_key_is_stored_with_its_job_and_found_by_principal_and_key(store: SqlStore) -> None:
    store.write(WriteBatch([make_job("j1")], idempotency=[key(1)]), epoch=0)
    assert store.get_idempotency("alice", "key-1") == key(1)
    assert store.get_idempotency("bob", "key-1") is None  # keys are per principal
    assert store.get_idempotency("alice", "key-2") is None


def test_the_first_use_of_a_key_stays(store: SqlStore) -> None:
    store.write(WriteBatch([make_job("j1")], idempotency=[key(1)]), epoch=0)
    other = IdempotencyRecord("alice", "key-1", "sha256:ff", "job", "j9", 20.0)
    store.write(WriteBatch([make_job("j9")], idempotency=[other]), epoch=0)
    assert store.get_idempotency("alice", "key-1") == key(1)
    store.write(WriteBatch(idempotency=[key(1)]), epoch=0)  # a retried batch: no error, no change
    assert store.get_idempotency("alice", "key-1") == key(1)


def test_a_job_and_its_key_commit_or_fail_together(store: SqlStore) -> None:
    with pytest.raises(UnwritableRecord):
        store.write(WriteBatch([make_job("j1", labels={"v": SURROGATE})], idempotency=[key(1)]), epoch=0)
    assert store.get_idempotency("alice", "key-1") is None
    store.acquire_lease("a", "http://a", 30)
    with pytest.raises(FencedError):
        store.write(WriteBatch([make_job("j1")], idempotency=[key(1)]), epoch=0)
    assert store.get_idempotency("alice", "key-1") is None and store.get_job("j1") is None


def test_a_new_leader_loads_the_recent_keys_oldest_first(store: SqlStore) -> None:
    records = [key(n, created_at=float(100 - n), principal=f"p{n % 3}") for n in range(10)]
    store.write(WriteBatch(idempotency=records), epoch=0)
    recent = store.load_idempotency(95.0)
    assert recent == sorted((r for r in records if r.created_at >= 95.0), key=lambda r: r.created_at)
    assert [r.created_at for r in recent] == [95.0, 96.0, 97.0, 98.0, 99.0, 100.0]


def test_keys_older_than_the_retention_are_pruned(store: SqlStore) -> None:
    store.write(WriteBatch(idempotency=[key(n, created_at=float(n)) for n in range(10)]), epoch=0)
    assert store.prune_idempotency(4.0, epoch=0) == 4
    assert [r.created_at for r in store.load_idempotency(0.0)] == [float(n) for n in range(4, 10)]
    assert store.prune_idempotency(4.0, epoch=0) == 0
    store.verify()


def test_keys_are_found_in_groups_by_principal_and_key(store: SqlStore) -> None:
    store.write(WriteBatch([make_job("j1"), make_job("j2")], idempotency=[key(1), key(2)]), epoch=0)
    found = store.find_idempotency([("alice", "key-1"), ("bob", "key-2"), ("alice", "key-2"), ("x", "y")])
    assert sorted(found, key=lambda r: r.key) == [key(1), key(2)]
    assert store.find_idempotency([]) == []


async def _lookup_twice(store: SqlStore) -> None:
    lookup = store.async_key_lookup()
    assert lookup is not None
    try:
        assert await lookup([]) == []
        found = await lookup([("alice", "key-1"), ("bob", "key-1"), ("alice", "key-9")])
        assert found == [key(1)]
        # The server ends the lookup's session (a restart, a failover of the database): that lookup fails
        # as a store error, and the next opens a new connection.
        with raw_engine(store) as conn:
            conn.exec_driver_sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE pid <> pg_backend_pid() AND query LIKE 'SELECT principal, key, request_hash%%'"
            )
        with pytest.raises(StoreError, match="cannot look up idempotency keys"):
            await lookup([("alice", "key-1")])
        assert await lookup([("alice", "key-1")]) == [key(1)]
    finally:
        await lookup.close()


def test_postgresql_offers_a_lookup_the_event_loop_awaits_sqlite_does_not(store: SqlStore) -> None:
    store.write(WriteBatch([make_job("j1")], idempotency=[key(1)]), epoch=0)
    if store.engine.dialect.name == "sqlite":
        assert store.async_key_lookup() is None
        return
    asyncio.run(_lookup_twice(store))


@contextmanager
def raw_engine(store: SqlStore) -> Iterator[Connection]:
    with store.engine.connect() as conn:
        yield conn
        conn.commit()
