"""The write-behind: coalescing, group commit, flush-means-durable, stepping down when the store cannot be
written or the term is fenced, and rejecting only the records the store refuses."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from corral.control.fenced import FencedStore
from corral.control.writer import RecordRejected, StoreWriter, WriterFailed
from corral.domain.idempotency import IdempotencyRecord
from corral.domain.states import JobState, TaskState
from corral.store import FencedError, SqlStore, TaskQuery, WriteBatch, open_store
from tests.control.aio import running
from tests.store.factories import make_job, make_task
from tests.support.postgres import fresh_database

SURROGATE = "\ud800"  # a lone UTF-16 surrogate: valid in a Python str, not encodable as UTF-8


class SlowStore(SqlStore):
    """The real store, but each write takes a while, so a batch is in flight long enough to see."""

    def __init__(self, store: SqlStore, delay_s: float = 0.05) -> None:
        super().__init__(store.engine)
        self.delay_s = delay_s

    def write(self, batch: WriteBatch, *, epoch: int) -> None:
        time.sleep(self.delay_s)
        super().write(batch, epoch=epoch)


class FailingStore(SqlStore):
    """Fails its first ``failures`` writes as an unreachable database would, then writes for real."""

    def __init__(self, store: SqlStore, failures: int) -> None:
        super().__init__(store.engine)
        self.failures = failures
        self.attempts = 0

    def write(self, batch: WriteBatch, *, epoch: int) -> None:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise OperationalError("INSERT", {}, RuntimeError(f"disk on fire (attempt {self.attempts})"))
        super().write(batch, epoch=epoch)


class CountingStore(SqlStore):
    def __init__(self, store: SqlStore) -> None:
        super().__init__(store.engine)
        self.attempts = 0

    def write(self, batch: WriteBatch, *, epoch: int) -> None:
        self.attempts += 1
        super().write(batch, epoch=epoch)


def fenced(store: SqlStore, epoch: int = 0) -> FencedStore:
    """``store`` as a term of ``epoch`` sees it (0: a store nobody has led yet)."""
    return FencedStore(store, epoch)


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlStore]:
    """A real store of each backend (the ``store`` fixture of tests/control is SQLite only)."""
    if request.param == "sqlite":
        opened = open_store(f"sqlite:///{tmp_path / 'corral.db'}", sqlite_synchronous="NORMAL")
        yield opened
        opened.close()
        return
    with fresh_database() as url:
        opened = open_store(url)
        yield opened
        opened.close()


def test_puts_are_coalesced_by_id_newest_wins(store: SqlStore) -> None:
    async def scenario() -> None:
        writer = StoreWriter(fenced(store))
        writer.put_job(make_job("j1"))
        writer.put_task(make_task("t1", "j1"))
        writer.put_task(make_task("t1", "j1", state=TaskState.LAUNCHED, host_id="h1"))
        writer.put_job(make_job("j1", state=JobState.KILL_INITIATED))
        writer.put_task(make_task("t1", "j1", state=TaskState.STARTED, host_id="h1"))
        assert writer.backlog == 2
        async with running(writer):
            await writer.flush()
        assert writer.batches == 1
        assert writer.records == 2
        assert store.get_job("j1") == make_job("j1", state=JobState.KILL_INITIATED)
        assert store.get_task("t1") == make_task("t1", "j1", state=TaskState.STARTED, host_id="h1")

    asyncio.run(scenario())


def test_flush_returns_only_once_the_data_is_readable(store: SqlStore) -> None:
    async def scenario() -> None:
        writer = StoreWriter(fenced(SlowStore(store)))
        async with running(writer):
            writer.put_job(make_job("j1"))
            writer.put_task(make_task("t1", "j1"))
            assert not writer.is_clean("j1")
            await writer.flush("j1", "t1")
            # Read through a different store (its own engine and connections), not the writer's.
            assert store.get_job("j1") == make_job("j1")
            assert store.get_task("t1") == make_task("t1", "j1")
            assert writer.is_clean("j1")
            assert writer.is_clean("t1")
            assert writer.backlog == 0

    asyncio.run(scenario())


def test_flush_with_nothing_put_returns_at_once(store: SqlStore) -> None:
    async def scenario() -> None:
        writer = StoreWriter(fenced(store))  # not even running
        await asyncio.wait_for(writer.flush(), timeout=1)
        assert writer.batches == 0

    asyncio.run(scenario())


def test_put_during_an_in_flight_write_goes_in_the_next_batch(store: SqlStore) -> None:
    async def scenario() -> None:
        writer = StoreWriter(fenced(SlowStore(store, delay_s=0.1)))
        async with running(writer):
            writer.put_job(make_job("j1"))
            while writer.backlog:  # wait until the writer has taken the first batch
                await asyncio.sleep(0.001)
            assert not writer.is_clean("j1")
            assert writer.backlog == 0
            writer.put_job(make_job("j1", state=JobState.FINISHED, finished_at=5.0))
            await writer.flush()
            assert writer.batches == 2
            assert store.get_job("j1") == make_job("j1", state=JobState.FINISHED, finished_at=5.0)
            assert writer.is_clean("j1")

    asyncio.run(scenario())


def test_a_burst_of_puts_becomes_few_batches(store: SqlStore) -> None:
    puts = 3000

    async def scenario() -> None:
        writer = StoreWriter(fenced(store))
        async with running(writer):
            writer.put_job(make_job("j1"))
            for i in range(puts):
                writer.put_task(make_task(f"t{i:05d}", "j1", index=i))
                if i % 100 == 0:
                    await asyncio.sleep(0)  # let the writer run now and then, as the real loop would
            await writer.flush()
        assert writer.records == puts + 1
        assert writer.batches <= puts // 50
        assert len(store.list_tasks(TaskQuery(job_id="j1", limit=puts + 1))) == puts
        store.verify()  # the integrity record kept up with every batch

    asyncio.run(scenario())


def test_is_clean_for_an_id_never_put(store: SqlStore) -> None:
    async def scenario() -> None:
        writer = StoreWriter(fenced(store))
        writer.put_task(make_task("t1", "j1"))
        assert writer.is_clean("unknown")
        assert not writer.is_clean("t1")

    asyncio.run(scenario())


def test_transient_write_failures_are_retried(store: SqlStore) -> None:
    async def scenario() -> None:
        flaky = FailingStore(store, failures=2)
        fatal: list[BaseException] = []
        writer = StoreWriter(fenced(flaky), retries=3, retry_delay_s=0.001, on_fatal=fatal.append)
        async with running(writer) as loop:
            writer.put_job(make_job("j1"))
            await writer.flush()
            assert not loop.done()
        assert flaky.attempts == 3
        assert fatal == []
        assert store.get_job("j1") == make_job("j1")

    asyncio.run(scenario())


def test_store_that_keeps_failing_makes_flush_raise_and_calls_on_fatal(store: SqlStore) -> None:
    async def scenario() -> None:
        broken = FailingStore(store, failures=1000)
        fatal: list[BaseException] = []
        writer = StoreWriter(fenced(broken), retries=2, retry_delay_s=0.001, on_fatal=fatal.append)
        async with running(writer) as loop:
            writer.put_job(make_job("j1"))
            with pytest.raises(WriterFailed, match=r"failed 3 times: .*disk on fire"):
                await asyncio.wait_for(writer.flush(), timeout=5)
            with pytest.raises(WriterFailed):
                await loop  # the loop itself stops: the leader must step down
            with pytest.raises(WriterFailed):
                await asyncio.wait_for(writer.flush(), timeout=1)  # and later flushes do not hang
        assert broken.attempts == 3
        assert len(fatal) == 1
        assert isinstance(fatal[0], WriterFailed)
        assert store.get_job("j1") is None

    asyncio.run(scenario())


# -- fencing -----------------------------------------------------------------------------------------


def test_a_fenced_write_ends_the_term_at_once_without_retrying(any_store: SqlStore) -> None:
    async def scenario() -> None:
        epoch = any_store.acquire_lease("a", "http://a", 30)
        assert epoch == 1
        counting = CountingStore(any_store)
        fatal: list[BaseException] = []
        writer = StoreWriter(fenced(counting, epoch), retries=5, retry_delay_s=1.0, on_fatal=fatal.append)
        async with running(writer) as loop:
            writer.put_job(make_job("j-before"))
            await writer.flush()
            assert any_store.acquire_lease("b", "http://b", 30, take_from=epoch) == 2  # a takeover
            writer.put_job(make_job("j-after"))
            with pytest.raises(WriterFailed, match="epoch 1 is over: epoch 2 leads now"):
                await asyncio.wait_for(writer.flush(), timeout=5)  # no retries: 5 would take 31 s
            with pytest.raises(FencedError):
                await loop
        assert counting.attempts == 2
        assert len(fatal) == 1 and isinstance(fatal[0], FencedError)
        assert any_store.get_job("j-before") is not None
        assert any_store.get_job("j-after") is None

    asyncio.run(scenario())


def test_a_write_already_in_flight_when_the_term_ends_keeps_its_epoch_and_is_refused(
    any_store: SqlStore,
) -> None:
    """The gap of issue 11: the term ends while its batch sits in a worker thread; a newer leader takes
    the lease before the batch reaches the database. The batch still carries the old epoch."""

    async def scenario() -> None:
        epoch = any_store.acquire_lease("a", "http://a", 30)
        assert epoch is not None
        slow = SlowStore(any_store, delay_s=0.3)
        fatal: list[BaseException] = []
        writer = StoreWriter(fenced(slow, epoch), on_fatal=fatal.append)
        async with running(writer) as loop:
            writer.put_job(make_job("j-late"))
            while writer.backlog:  # the batch is now in the worker thread, sleeping
                await asyncio.sleep(0.001)
            assert any_store.acquire_lease("b", "http://b", 30, take_from=epoch) == epoch + 1
            with pytest.raises(FencedError):
                await asyncio.wait_for(loop, timeout=10)
        assert any_store.get_job("j-late") is None
        assert len(fatal) == 1

    asyncio.run(scenario())


# -- records the store refuses ----------------------------------------------------------------------


def test_an_unwritable_record_is_rejected_and_the_rest_of_the_batch_commits(any_store: SqlStore) -> None:
    poison = {"j-surrogate": SURROGATE}
    if any_store.engine.dialect.name == "postgresql":
        poison["j-nul"] = "a\x00b"  # PostgreSQL text cannot hold NUL (SQLite can)

    async def scenario() -> None:
        fatal: list[BaseException] = []
        rejected: list[tuple[str, str]] = []
        writer = StoreWriter(
            fenced(any_store), on_fatal=fatal.append, on_rejected=lambda k, i, e: rejected.append((k, i))
        )
        good = [f"j{i}" for i in range(7)]
        async with running(writer) as loop:
            for n, job_id in enumerate([*good[:3], *poison, *good[3:]]):
                labels = {"v": poison.get(job_id, "fine")}
                writer.put_job(make_job(job_id, labels=labels))
                writer.put_task(make_task(f"{job_id}-t0", job_id))
                writer.put_task(make_task(f"{job_id}-t1", job_id, index=1))
                if n == 1:
                    writer.put_idempotency(IdempotencyRecord("alice", "k-good", "h", "job", job_id, 1.0))
            writer.put_idempotency(IdempotencyRecord("alice", "k-bad", "h", "job", "j-surrogate", 1.0))
            assert writer.backlog == 3 * (len(good) + len(poison)) + 2
            await asyncio.wait_for(writer.flush(*good), timeout=30)  # one batch, split around the poison
            for job_id in poison:
                with pytest.raises(RecordRejected, match=f"{job_id} was not stored") as refused:
                    await writer.flush(job_id)
                assert refused.value.ident == job_id
                with pytest.raises(RecordRejected):
                    await writer.flush(f"{job_id}-t0")  # its tasks went with it: no orphan rows

            # A later task of a job that was never stored is refused too, without troubling the store.
            writer.put_task(make_task("j-surrogate-t0", "j-surrogate", state=TaskState.LAUNCHED))
            writer.put_task(make_task("j0-t0", "j0", state=TaskState.LAUNCHED))
            with pytest.raises(RecordRejected, match="its job j-surrogate was not stored"):
                await writer.flush("j0-t0", "j-surrogate-t0")
            assert not loop.done()  # the writer goes on: no step-down
        assert fatal == []
        assert writer.batches == 2
        for job_id in good:
            assert any_store.get_job(job_id) is not None
            assert {t.id for t in any_store.list_tasks(TaskQuery(job_id=job_id))} == {
                f"{job_id}-t0",
                f"{job_id}-t1",
            }
        for job_id in poison:
            assert any_store.get_job(job_id) is None
            assert any_store.list_tasks(TaskQuery(job_id=job_id)) == []
        assert any_store.get_task("j0-t0") == make_task("j0-t0", "j0", state=TaskState.LAUNCHED)
        assert any_store.get_idempotency("alice", "k-good") is not None
        assert any_store.get_idempotency("alice", "k-bad") is None  # it names a job that was refused
        expected = [("job", j) for j in poison] + [("task", f"{j}-t{i}") for j in poison for i in (0, 1)]
        expected += [("idempotency", "alice/k-bad"), ("task", "j-surrogate-t0")]
        assert sorted(rejected) == sorted(expected)
        assert len(any_store.load_active().jobs) == len(good)  # and the store still loads: nothing orphaned

    asyncio.run(scenario())


def test_a_refused_update_of_a_stored_job_does_not_hold_back_its_tasks(store: SqlStore) -> None:
    async def scenario() -> None:
        writer = StoreWriter(fenced(store))
        async with running(writer):
            writer.put_job(make_job("j1"))
            writer.put_task(make_task("t1", "j1"))
            await writer.flush()
            writer.put_job(make_job("j1", labels={"v": SURROGATE}))
            with pytest.raises(RecordRejected):
                await writer.flush("j1")
            writer.put_task(make_task("t1", "j1", state=TaskState.LAUNCHED, host_id="h1"))
            await writer.flush("t1")  # its job is in the store (an older version): the task is written
        assert store.get_task("t1") == make_task("t1", "j1", state=TaskState.LAUNCHED, host_id="h1")
        assert store.get_job("j1") == make_job("j1")

    asyncio.run(scenario())


def test_a_record_rejected_once_is_written_when_put_again_fixed(store: SqlStore) -> None:
    async def scenario() -> None:
        writer = StoreWriter(fenced(store))
        async with running(writer):
            writer.put_job(make_job("j1", labels={"v": SURROGATE}))
            with pytest.raises(RecordRejected):
                await writer.flush("j1")
            writer.put_job(make_job("j1"))
            writer.put_task(make_task("t1", "j1"))
            await writer.flush("j1", "t1")
        assert store.get_task("t1") is not None

    asyncio.run(scenario())


def test_a_job_and_its_idempotency_key_commit_together(store: SqlStore) -> None:
    async def scenario() -> None:
        writer = StoreWriter(fenced(store))
        key = IdempotencyRecord("alice", "k1", "sha256:00", "job", "j1", 10.0)
        async with running(writer):
            writer.put_job(make_job("j1"))
            writer.put_idempotency(key)
            await writer.flush("j1", key.ident)
        assert store.get_idempotency("alice", "k1") == key
        assert store.get_job("j1") == make_job("j1")

    asyncio.run(scenario())
