"""The write-behind: coalescing, group commit, flush-means-durable, and stepping down when writes fail."""

from __future__ import annotations

import asyncio
import time

import pytest

from corral.control.writer import StoreWriter, WriterFailed
from corral.domain.states import JobState, TaskState
from corral.store import SqlStore, TaskQuery, WriteBatch
from tests.control.aio import running
from tests.store.factories import make_job, make_task


class SlowStore(SqlStore):
    """The real SQLite store, but each write takes a while, so a batch is in flight long enough to see."""

    def __init__(self, store: SqlStore, delay_s: float = 0.05) -> None:
        super().__init__(store.engine)
        self.delay_s = delay_s

    def write(self, batch: WriteBatch) -> None:
        time.sleep(self.delay_s)
        super().write(batch)


class FailingStore(SqlStore):
    """Fails its first ``failures`` writes, then writes for real."""

    def __init__(self, store: SqlStore, failures: int) -> None:
        super().__init__(store.engine)
        self.failures = failures
        self.attempts = 0

    def write(self, batch: WriteBatch) -> None:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise RuntimeError(f"disk on fire (attempt {self.attempts})")
        super().write(batch)


def test_puts_are_coalesced_by_id_newest_wins(store: SqlStore) -> None:
    async def scenario() -> None:
        writer = StoreWriter(store)
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
        writer = StoreWriter(SlowStore(store))
        async with running(writer):
            writer.put_job(make_job("j1"))
            writer.put_task(make_task("t1", "j1"))
            assert not writer.is_clean("j1")
            await writer.flush()
            # Read through a different store (its own engine and connections), not the writer's.
            assert store.get_job("j1") == make_job("j1")
            assert store.get_task("t1") == make_task("t1", "j1")
            assert writer.is_clean("j1")
            assert writer.is_clean("t1")
            assert writer.backlog == 0

    asyncio.run(scenario())


def test_flush_with_nothing_put_returns_at_once(store: SqlStore) -> None:
    async def scenario() -> None:
        writer = StoreWriter(store)  # not even running
        await asyncio.wait_for(writer.flush(), timeout=1)
        assert writer.batches == 0

    asyncio.run(scenario())


def test_put_during_an_in_flight_write_goes_in_the_next_batch(store: SqlStore) -> None:
    async def scenario() -> None:
        writer = StoreWriter(SlowStore(store, delay_s=0.1))
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
        writer = StoreWriter(store)
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

    asyncio.run(scenario())


def test_is_clean_for_an_id_never_put(store: SqlStore) -> None:
    async def scenario() -> None:
        writer = StoreWriter(store)
        writer.put_task(make_task("t1", "j1"))
        assert writer.is_clean("unknown")
        assert not writer.is_clean("t1")

    asyncio.run(scenario())


def test_transient_write_failures_are_retried(store: SqlStore) -> None:
    async def scenario() -> None:
        flaky = FailingStore(store, failures=2)
        fatal: list[BaseException] = []
        writer = StoreWriter(flaky, retries=3, retry_delay_s=0.001, on_fatal=fatal.append)
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
        writer = StoreWriter(broken, retries=2, retry_delay_s=0.001, on_fatal=fatal.append)
        async with running(writer) as loop:
            writer.put_job(make_job("j1"))
            with pytest.raises(WriterFailed, match="failed 3 times: disk on fire"):
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
