"""Fencing without gaps (issue 11, point 3), on both backends: every write carries its epoch and is checked
against the lease inside its own transaction, under a lock a takeover must wait for."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.exc import DBAPIError, OperationalError

from corral.control.fenced import FencedStore
from corral.domain.auth import Role, Team, Token
from corral.domain.capacity import CapacityGroup, Tier
from corral.domain.idempotency import IdempotencyRecord
from corral.domain.resources import Resources
from corral.domain.states import JobState
from corral.store import FencedError, SqlStore, StoreError, WriteBatch, open_store
from corral.store import backup as backups
from tests.store.factories import make_job, make_task
from tests.store.rawdb import raw
from tests.support.cluster import wait_for
from tests.support.postgres import fresh_database

TOKEN = Token("tok-1", "alice", "payments", Role.USER, "ab" * 32, 1.0)
KEY = IdempotencyRecord("alice", "k1", "h", "job", "j1", 1.0)

WRITES: dict[str, Callable[[SqlStore, int], object]] = {
    "write": lambda s, e: s.write(
        WriteBatch([make_job("j-new")], [make_task("t-new", "j-new")], [KEY]), epoch=e
    ),
    "put_group": lambda s, e: s.put_group(CapacityGroup("g", Tier.FLEX, Resources(1, 1)), epoch=e),
    "delete_group": lambda s, e: s.delete_group("g-old", epoch=e),
    "put_setting": lambda s, e: s.put_setting("scheduler.mode.flex", "spread", epoch=e),
    "put_team": lambda s, e: s.put_team(Team("payments"), epoch=e),
    "delete_team": lambda s, e: s.delete_team("team-old", epoch=e),
    "put_token": lambda s, e: s.put_token(TOKEN, epoch=e),
    "prune_finished": lambda s, e: s.prune_finished(100.0, epoch=e),
    "prune_idempotency": lambda s, e: s.prune_idempotency(100.0, epoch=e),
    "reseal": lambda s, e: s.reseal(epoch=e),
}


def _history(store: SqlStore) -> None:
    store.write(WriteBatch([make_job("j-done", state=JobState.FINISHED, finished_at=1.0)]), epoch=0)
    store.put_group(CapacityGroup("g-old", Tier.FLEX, Resources(1, 1)), epoch=0)
    store.put_team(Team("team-old"), epoch=0)


def _everything(url: str) -> list[Any]:
    """Every row of every table but the lease's (whose renewals are not writes of data)."""
    tables = ("corral_jobs", "corral_tasks", "corral_job_labels", "corral_capacity_groups", "corral_settings",
              "corral_teams", "corral_tokens", "corral_idempotency", "corral_integrity")  # fmt: skip
    with raw(url) as conn:
        return [sorted(map(tuple, conn.execute(text(f"SELECT * FROM {t}")).all())) for t in tables]


@pytest.mark.parametrize("method", sorted(WRITES))
def test_every_write_from_a_deposed_epoch_is_refused_and_changes_nothing(
    store: SqlStore, database_url: str, method: str
) -> None:
    _history(store)
    assert store.acquire_lease("a", "http://a", 30) == 1
    assert store.acquire_lease("b", "http://b", 30, take_from=1) == 2  # b took over from a
    before = _everything(database_url)
    with pytest.raises(FencedError, match="epoch 1 is over: epoch 2 leads now"):
        WRITES[method](store, 1)
    with pytest.raises(FencedError):
        WRITES[method](store, 3)  # an epoch that never led is no better
    assert _everything(database_url) == before
    WRITES[method](store, 2)  # the current leader writes as usual
    store.verify()


def test_rows_carry_the_epoch_that_wrote_them(store: SqlStore, database_url: str) -> None:
    store.write(WriteBatch([make_job("j1")], [make_task("t1", "j1")]), epoch=0)
    epoch = store.acquire_lease("a", "http://a", 30)
    assert epoch == 1
    store.write(WriteBatch(tasks=[make_task("t2", "j1")]), epoch=epoch)
    with raw(database_url) as conn:
        assert dict(conn.execute(text("SELECT id, epoch FROM corral_tasks")).all()) == {"t1": 0, "t2": 1}
        assert conn.execute(text("SELECT epoch FROM corral_jobs")).scalar_one() == 0
        assert conn.execute(text("SELECT epoch FROM corral_integrity")).scalar_one() == 1


def test_the_fenced_store_writes_with_its_terms_epoch_for_good(store: SqlStore) -> None:
    epoch = store.acquire_lease("a", "http://a", 30)
    assert epoch == 1
    term = FencedStore(store, epoch)
    term.write(WriteBatch([make_job("j1")]))
    with pytest.raises(AttributeError):
        term.epoch = 2  # type: ignore[misc]
    store.release_lease("a", epoch)
    assert store.acquire_lease("b", "http://b", 30) == 2
    with pytest.raises(FencedError):
        term.put_setting("k", "v")
    assert term.get_job("j1") is not None  # reads go on (a standby reads too)


def test_restore_is_refused_while_a_master_leads(store: SqlStore, tmp_path: Any, database_url: str) -> None:
    source = open_store(f"sqlite:///{tmp_path / 'source.db'}")
    try:
        source.write(WriteBatch([make_job("j1")]), epoch=0)
        backups.backup(source, tmp_path / "b.jsonl")
    finally:
        source.close()
    store.acquire_lease("m", "http://m", 30)
    with pytest.raises(StoreError, match=r"a master leads this store \(m at http://m, epoch 1\)"):
        backups.restore(store, tmp_path / "b.jsonl")
    assert store.get_job("j1") is None
    store.release_lease("m", 1)
    backups.restore(store, tmp_path / "b.jsonl")
    assert [j.id for j in store.load_active().jobs] == ["j1"]


@contextmanager
def held_after_the_fence(store: SqlStore) -> Iterator[tuple[threading.Event, threading.Event]]:
    """Park the next fenced write of ``store`` just after its fence check (its lock held), until released."""
    inside, release = threading.Event(), threading.Event()

    def after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("UPDATE corral_leader SET generation") and not inside.is_set():
            inside.set()
            release.wait(30)

    event.listen(store.engine, "after_cursor_execute", after)
    try:
        yield inside, release
    finally:
        release.set()
        event.remove(store.engine, "after_cursor_execute", after)


@contextmanager
def parked_after_the_fence(database_url: str) -> Iterator[tuple[Callable[[], bool], Callable[[], None]]]:
    """Park the next fenced write to the PostgreSQL store at ``database_url`` just after its fence (the
    lease row locked): another session holds the integrity record's row, which the write updates next.
    Yields whether a write is parked there, and how to let it go on."""
    engine = create_engine(database_url)
    holder = engine.connect()
    try:
        holder.execute(text("SELECT 1 FROM corral_integrity WHERE id = 1 FOR UPDATE"))

        def parked() -> bool:
            with engine.connect() as probe:
                waiting = probe.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                        "AND query LIKE 'UPDATE corral_integrity%'"
                    )
                ).scalar_one()
            return bool(waiting)

        yield parked, holder.rollback
    finally:
        holder.rollback()
        holder.close()
        engine.dispose()


def test_an_expired_lease_is_not_taken_while_a_write_that_passed_its_fence_runs_postgresql() -> None:
    with fresh_database() as database_url:
        leader, other = open_store(database_url), open_store(database_url)
        try:
            assert leader.acquire_lease("a", "http://a", 0.2) == 1
            with parked_after_the_fence(database_url) as (parked, release):
                writing = threading.Thread(target=lambda: leader.write(WriteBatch([make_job("j1")]), epoch=1))
                writing.start()
                wait_for(parked, 30, what="the write to pass its fence")
                wait_for(lambda: not other.lease().live, 30, what="the lease to run out")
                assert other.acquire_lease("b", "http://b", 30) is None  # busy: look again later
                release()
                writing.join(30)
            assert leader.get_job("j1") is not None  # committed before any takeover, under epoch 1
            assert other.acquire_lease("b", "http://b", 30) == 2
            with pytest.raises(FencedError):
                leader.write(WriteBatch([make_job("j2")]), epoch=1)
        finally:
            leader.close()
            other.close()


def test_a_takeover_ends_a_gone_leaders_sessions_that_hold_the_lease_row_postgresql() -> None:
    """A leader stopped mid-write holds the lease row's lock for as long as it is stopped (no timeout ends
    a session the server is sending results to). The standby that found it gone ends those sessions: the
    write that had passed its fence is rolled back, never committed after the takeover."""
    with fresh_database() as database_url:
        leader = open_store(database_url, idle_in_transaction_s=0)  # only the taker can free the row
        other = open_store(database_url)
        try:
            assert leader.acquire_lease("a", "http://a", 30) == 1
            failed: list[BaseException] = []

            def write() -> None:
                try:
                    leader.write(WriteBatch([make_job("j1")]), epoch=1)
                except BaseException as e:
                    failed.append(e)

            taken: list[int | None] = []
            with parked_after_the_fence(database_url) as (parked, release):
                writing = threading.Thread(target=write)
                writing.start()
                wait_for(parked, 30, what="the write to pass its fence")
                taking = threading.Thread(target=lambda: taken.append(other.acquire_lease("b", "b", 30, 1)))
                taking.start()
                taking.join(30)
                assert taken == [2]
                release()
                writing.join(30)
            assert len(failed) == 1 and isinstance(failed[0], psycopg.OperationalError)  # its session ended
            assert other.get_job("j1") is None
        finally:
            leader.close()
            other.close()


def test_a_takeover_cannot_slip_between_fence_and_write_sqlite(tmp_path: Any) -> None:
    database_url = f"sqlite:///{tmp_path / 'corral.db'}"
    leader = open_store(database_url)
    impatient = SqlStore(create_engine(database_url, connect_args={"timeout": 0.05}))  # gives up at once
    try:
        assert leader.acquire_lease("a", "http://a", 30) == 1
        with held_after_the_fence(leader) as (inside, release):
            writing = threading.Thread(target=lambda: leader.write(WriteBatch([make_job("j1")]), epoch=1))
            writing.start()
            assert inside.wait(30)
            with pytest.raises(OperationalError, match="database is locked"):
                impatient.acquire_lease("b", "http://b", 30, take_from=1)
            release.set()
            writing.join(30)
        assert leader.get_job("j1") is not None
        assert impatient.acquire_lease("b", "http://b", 30, take_from=1) == 2
    finally:
        leader.close()
        impatient.close()


def test_a_session_left_in_a_transaction_is_ended_by_the_server_postgresql() -> None:
    """A process stopped between two statements of a transaction (SIGSTOP) holds its locks; the server ends
    the session after ``idle_in_transaction_s``, so the lease row is free again even for a plain acquire
    (which ends nobody's session). (A SQLite store has one master.)"""
    with fresh_database() as database_url:
        frozen = open_store(database_url, idle_in_transaction_s=0.5)
        other = open_store(database_url)
        try:
            assert frozen.acquire_lease("a", "http://a", 0.2) == 1
            conn = frozen.engine.connect()
            conn.begin()
            conn.execute(text("SELECT epoch FROM corral_leader WHERE id = 1 FOR NO KEY UPDATE"))
            # ... and the process stops here, its lease running out.
            assert wait_for(lambda: other.acquire_lease("b", "http://b", 30), 15, what="the takeover") == 2
            with pytest.raises(DBAPIError, match="idle-in-transaction timeout"):
                conn.execute(text("SELECT 1"))  # the stopped process, once it wakes, finds its session gone
            conn.close()
        finally:
            frozen.close()
            other.close()
