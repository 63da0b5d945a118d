"""Queries: active records from memory, history from the store, merged by id with memory winning."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from corral.control.queries import Page, Queries
from corral.control.state import ClusterState
from corral.domain.errors import NotFoundError
from corral.domain.job import Job
from corral.domain.states import JobState, TaskState
from corral.domain.task import Task
from corral.store import JobQuery, SqlStore, TaskQuery, WriteBatch
from tests.store.factories import make_job, make_task

FINISHED = JobState.FINISHED


@pytest.fixture
def queries(store: SqlStore) -> Queries:
    """Memory holds j02, j04, j06 (active) and j07 (finished, not yet evicted); the store holds the
    history j01, j03, j05 (finished) and older versions of j02 and j07."""
    store.write(
        WriteBatch(
            [
                make_job("j01", state=FINISHED, owner="a@x.io"),
                make_job("j02"),
                make_job("j03", state=FINISHED, owner="b@x.io"),
                make_job("j05", state=FINISHED, owner="a@x.io", labels={"env": "prod"}),
                replace(make_job("j07", state=FINISHED), reason_detail="stale"),
                # An active job only the store knows is not the leader's truth: memory has every active job.
                make_job("j08"),
            ],
            [
                make_task("t01", "j01", state=TaskState.FINISHED, host_id="h1"),
                make_task("t02", "j02", state=TaskState.FINISHED, host_id="h1"),  # evicted from memory
                make_task("t03", "j02", index=1),
                replace(make_task("t07", "j07", state=TaskState.FINISHED), reason_detail="stale"),
            ],
        ),
        epoch=0,
    )
    state = ClusterState()
    state.put_job(make_job("j02", state=JobState.KILL_INITIATED, owner="a@x.io"))
    state.put_job(make_job("j04", owner="b@x.io", labels={"env": "prod"}))
    state.put_job(make_job("j06", owner="a@x.io", service=True))
    state.put_job(replace(make_job("j07", state=FINISHED), reason_detail="fresh"))
    state.put_task(make_task("t03", "j02", index=1, state=TaskState.STARTED, host_id="h1"))
    state.put_task(make_task("t04", "j04", state=TaskState.STARTED, host_id="h2"))
    state.put_task(replace(make_task("t07", "j07", state=TaskState.FINISHED), reason_detail="fresh"))
    return Queries(state, store)


def _jobs(queries: Queries, query: JobQuery) -> Page[Job]:
    return asyncio.run(queries.list_jobs(query))


def _tasks(queries: Queries, query: TaskQuery) -> Page[Task]:
    return asyncio.run(queries.list_tasks(query))


def test_active_jobs_from_memory_and_finished_from_the_store(queries: Queries) -> None:
    page = _jobs(queries, JobQuery())
    assert [j.id for j in page.items] == ["j01", "j02", "j03", "j04", "j05", "j06", "j07"]
    assert page.next_after is None
    by_id = {j.id: j for j in page.items}
    assert by_id["j02"].state is JobState.KILL_INITIATED  # memory's version, not the store's
    assert by_id["j07"].reason_detail == "fresh"  # memory wins on duplicates


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (JobQuery(states=frozenset({FINISHED})), ["j01", "j03", "j05", "j07"]),
        (JobQuery(states=frozenset({JobState.ACCEPTED})), ["j04", "j06"]),
        (JobQuery(states=frozenset({JobState.ACCEPTED, JobState.KILL_INITIATED})), ["j02", "j04", "j06"]),
        (JobQuery(owner="a@x.io"), ["j01", "j02", "j05", "j06"]),
        (JobQuery(labels={"env": "prod"}), ["j04", "j05"]),
        (JobQuery(owner="a@x.io", states=frozenset({FINISHED})), ["j01", "j05"]),
        (JobQuery(after_id="j04"), ["j05", "j06", "j07"]),
    ],
)
def test_job_filters_apply_to_both_sources(queries: Queries, query: JobQuery, expected: list[str]) -> None:
    assert [j.id for j in _jobs(queries, query).items] == expected


@pytest.mark.parametrize("newest_first", [False, True])
@pytest.mark.parametrize("limit", [1, 2, 3, 4, 7, 10])
def test_paging_with_after_and_next_visits_every_job_once_in_order(
    queries: Queries, limit: int, newest_first: bool
) -> None:
    seen: list[str] = []
    after: str | None = None
    for _ in range(20):
        page = _jobs(queries, JobQuery(after_id=after, limit=limit, newest_first=newest_first))
        assert len(page.items) <= limit
        seen.extend(j.id for j in page.items)
        if page.next_after is None:
            break
        assert page.next_after == page.items[-1].id
        after = page.next_after
    assert seen == sorted(["j01", "j02", "j03", "j04", "j05", "j06", "j07"], reverse=newest_first)


def test_tasks_merge_memory_and_history(queries: Queries) -> None:
    page = _tasks(queries, TaskQuery(job_id="j02"))
    assert [t.id for t in page.items] == ["t02", "t03"]
    assert page.items[1].state is TaskState.STARTED  # memory's version of t03
    by_id = {t.id: t for t in _tasks(queries, TaskQuery()).items}
    assert sorted(by_id) == ["t01", "t02", "t03", "t04", "t07"]
    assert by_id["t07"].reason_detail == "fresh"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (TaskQuery(host_id="h1"), ["t01", "t02", "t03"]),
        (TaskQuery(states=frozenset({TaskState.STARTED})), ["t03", "t04"]),
        (TaskQuery(states=frozenset({TaskState.FINISHED})), ["t01", "t02", "t07"]),
        (TaskQuery(after_id="t02", limit=2), ["t03", "t04"]),
    ],
)
def test_task_filters_apply_to_both_sources(queries: Queries, query: TaskQuery, expected: list[str]) -> None:
    assert [t.id for t in _tasks(queries, query).items] == expected


def test_task_paging(queries: Queries) -> None:
    first = _tasks(queries, TaskQuery(limit=2))
    assert [t.id for t in first.items] == ["t01", "t02"]
    assert first.next_after == "t02"
    second = _tasks(queries, TaskQuery(after_id=first.next_after, limit=2))
    assert [t.id for t in second.items] == ["t03", "t04"]
    third = _tasks(queries, TaskQuery(after_id=second.next_after, limit=2))
    assert [t.id for t in third.items] == ["t07"]
    assert third.next_after is None


def test_get_prefers_memory_and_falls_back_to_the_store(queries: Queries) -> None:
    async def scenario() -> None:
        assert (await queries.get_job("j02")).state is JobState.KILL_INITIATED
        assert (await queries.get_job("j01")).state is FINISHED
        assert (await queries.get_task("t03")).state is TaskState.STARTED
        assert (await queries.get_task("t01")).state is TaskState.FINISHED
        with pytest.raises(NotFoundError, match="job 'nope' does not exist"):
            await queries.get_job("nope")
        with pytest.raises(NotFoundError) as err:
            await queries.get_task("nope")
        assert err.value.code == "task_not_found"

    asyncio.run(scenario())
