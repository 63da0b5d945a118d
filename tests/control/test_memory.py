"""evict_finished: what may leave the leader's memory, and only once the store holds its latest version."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from corral.control.bus import EventBus
from corral.control.fenced import FencedStore
from corral.control.ledger import Ledger
from corral.control.memory import evict_finished
from corral.control.state import ClusterState
from corral.control.writer import StoreWriter
from corral.domain.job import JobGroup
from corral.domain.states import FinishedReason, JobState, TaskState
from corral.store import SqlStore
from tests.control.aio import running
from tests.store.factories import make_job, make_task

FAILED = FinishedReason.FAILED


def _run(store: SqlStore, scenario: Callable[[Ledger], Awaitable[None]]) -> None:
    """Run ``scenario`` with a ledger whose writer writes through to ``store``."""

    async def main() -> None:
        ledger = Ledger(ClusterState(), StoreWriter(FencedStore(store, 0)), EventBus())
        async with running(ledger.writer):
            await scenario(ledger)

    asyncio.run(main())


def test_finished_job_leaves_with_its_tasks_once_clean(store: SqlStore) -> None:
    async def scenario(ledger: Ledger) -> None:
        state = ledger.state
        group = JobGroup("prod", "", "v1")
        ledger.set_job(make_job("j1", group=group))
        ledger.set_task(make_task("t1", "j1", state=TaskState.FINISHED, finished_at=2.0))
        ledger.set_task(make_task("t2", "j1", index=1, state=TaskState.FINISHED, finished_at=3.0))
        ledger.set_job(make_job("j1", group=group, state=JobState.FINISHED, finished_at=3.0))
        ledger.set_job(make_job("j2"))  # an active job, untouched

        assert evict_finished(ledger) == 0  # nothing is committed yet
        assert "j1" in state.jobs
        assert "j1" in ledger.finished

        await ledger.writer.flush()
        assert evict_finished(ledger) == 3  # the job and its two tasks
        assert set(state.jobs) == {"j2"}
        assert state.tasks == {}
        assert state.job_with_group("app-prod--v1") is None
        assert ledger.finished == {}
        # Gone from memory, not from the store.
        assert store.get_job("j1") == make_job("j1", group=group, state=JobState.FINISHED, finished_at=3.0)
        assert store.get_task("t2") is not None

    _run(store, scenario)


def test_finished_job_with_an_unwritten_task_stays(store: SqlStore) -> None:
    async def scenario(ledger: Ledger) -> None:
        ledger.set_job(make_job("j1", state=JobState.FINISHED, finished_at=3.0))
        ledger.set_task(make_task("t1", "j1", state=TaskState.FINISHED))
        await ledger.writer.flush()
        ledger.set_task(make_task("t1", "j1", state=TaskState.FINISHED, reason=FinishedReason.KILLED))
        assert evict_finished(ledger) == 0
        assert "j1" in ledger.state.jobs
        assert "j1" in ledger.finished  # it is tried again next time
        await ledger.writer.flush()
        assert evict_finished(ledger) == 2
        assert ledger.state.jobs == {}

    _run(store, scenario)


def test_active_batch_job_drops_older_attempts_but_keeps_the_newest_of_each_index(store: SqlStore) -> None:
    async def scenario(ledger: Ledger) -> None:
        state = ledger.state
        ledger.set_job(make_job("j1"))
        # Index 0: two failed attempts, then a running retry.
        ledger.set_task(make_task("a0", "j1", state=TaskState.FINISHED, reason=FAILED))
        ledger.set_task(make_task("a1", "j1", state=TaskState.FINISHED, created_at=1.0, resubmit_of="a0"))
        ledger.set_task(
            make_task("a2", "j1", state=TaskState.STARTED, host_id="h", created_at=2.0, resubmit_of="a1")
        )
        # Index 1: succeeded, the last word on its index.
        ledger.set_task(make_task("b0", "j1", index=1, state=TaskState.FINISHED))
        # Index 2: an older attempt known only by age, not by resubmit_of.
        ledger.set_task(make_task("c0", "j1", index=2, state=TaskState.FINISHED, reason=FAILED))
        ledger.set_task(make_task("c1", "j1", index=2, state=TaskState.FINISHED, created_at=5.0, attempt=1))
        await ledger.writer.flush()

        assert evict_finished(ledger) == 3
        assert set(state.tasks) == {"a2", "b0", "c1"}
        assert {t.id for t in state.tasks_of("j1")} == {"a2", "b0", "c1"}
        assert "j1" in state.jobs
        assert store.get_task("a0") is not None  # still in the history

    _run(store, scenario)


def test_active_service_job_drops_replaced_tasks_only(store: SqlStore) -> None:
    async def scenario(ledger: Ledger) -> None:
        state = ledger.state
        ledger.set_job(make_job("svc", service=True))
        ledger.set_task(make_task("s1", "svc", index=None, state=TaskState.FINISHED, reason=FAILED))
        ledger.set_task(
            make_task("s2", "svc", index=None, state=TaskState.STARTED, host_id="h", resubmit_of="s1")
        )
        # Scaled down and not replaced: the reconciler would resume this line from it.
        ledger.set_task(
            make_task("s3", "svc", index=None, state=TaskState.FINISHED, reason=FinishedReason.SCALED_DOWN)
        )
        await ledger.writer.flush()

        assert evict_finished(ledger) == 1
        assert set(state.tasks) == {"s2", "s3"}

    _run(store, scenario)


def test_superseded_task_not_yet_written_waits_for_the_writer(store: SqlStore) -> None:
    async def scenario(ledger: Ledger) -> None:
        state = ledger.state
        ledger.set_job(make_job("j1"))
        ledger.set_task(make_task("a0", "j1", state=TaskState.FINISHED, reason=FAILED))
        ledger.set_task(make_task("a1", "j1", created_at=1.0, resubmit_of="a0"))

        assert evict_finished(ledger) == 0  # a0's finished version is not in the store yet
        assert "a0" in state.tasks
        assert "a0" in ledger.finished
        await ledger.writer.flush()
        assert evict_finished(ledger) == 1
        assert set(state.tasks) == {"a1"}
        assert store.get_task("a0") == make_task("a0", "j1", state=TaskState.FINISHED, reason=FAILED)

    _run(store, scenario)


def test_records_no_longer_in_memory_are_ignored(store: SqlStore) -> None:
    async def scenario(ledger: Ledger) -> None:
        ledger.finished.update({"ghost-job": None, "ghost-task": None})
        assert evict_finished(ledger) == 0
        assert ledger.finished == {}

    _run(store, scenario)


def test_a_task_superseded_after_an_earlier_pass_still_leaves(store: SqlStore) -> None:
    # The newest of its line is kept by one pass; when a retry later replaces it, it must go too.
    async def scenario(ledger: Ledger) -> None:
        ledger.set_job(make_job("j1"))
        ledger.set_task(make_task("a0", "j1", state=TaskState.FINISHED, reason=FAILED, finished_at=1.0))
        await ledger.writer.flush()
        assert evict_finished(ledger) == 0
        assert "a0" in ledger.state.tasks
        ledger.set_task(make_task("a1", "j1", created_at=2.0, attempt=1, resubmit_of="a0"))
        await ledger.writer.flush()
        assert evict_finished(ledger) == 1
        assert set(ledger.state.tasks) == {"a1"}

    _run(store, scenario)
