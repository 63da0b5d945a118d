"""Reading the history: get and list jobs and tasks, with filters and id-order paging."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from corral.domain.job import Job
from corral.domain.states import JobState, JobType, TaskState
from corral.domain.task import Task
from corral.store import JobQuery, SqlStore, TaskQuery, WriteBatch
from tests.store.factories import make_job, make_task

JOBS = [
    make_job("j01", owner="a@x.io", application="web", labels={"env": "prod", "tier": "1"}, service=True),
    make_job("j02", owner="a@x.io", application="etl", labels={"env": "prod"}),
    make_job("j03", owner="b@x.io", application="web", capacity_group="gpu", labels={"env": "test"}),
    make_job("j04", owner="b@x.io", application="etl", state=JobState.FINISHED, labels={"tier": "1"}),
    make_job("j05", owner="a@x.io", application="web", state=JobState.KILL_INITIATED, service=True),
    make_job("j06", owner="c@x.io", application="web", capacity_group="gpu", state=JobState.FINISHED),
]
TASKS = [
    make_task("t01", "j01", index=None, state=TaskState.STARTED, host_id="h1"),
    make_task("t02", "j01", index=None, state=TaskState.FINISHED),
    make_task("t03", "j02", state=TaskState.ACCEPTED),
    make_task("t04", "j02", index=1, state=TaskState.LAUNCHED, host_id="h2"),
    make_task("t05", "j03", state=TaskState.STARTED, host_id="h1"),
    make_task("t06", "j04", state=TaskState.FINISHED, host_id="h1"),
    make_task("t07", "j01", index=None, state=TaskState.DISCONNECTED, host_id="h2"),
]


@pytest.fixture
def seeded(store: SqlStore) -> SqlStore:
    # Written in two batches and out of id order: queries must not depend on insertion order.
    store.write(WriteBatch(JOBS[3:], TASKS[3:]), epoch=0)
    store.write(WriteBatch(JOBS[:3], TASKS[:3]), epoch=0)
    return store


def _ids(items: Sequence[Job | Task]) -> list[str]:
    return [item.id for item in items]


def test_get_job_and_task(seeded: SqlStore) -> None:
    assert seeded.get_job("j03") == JOBS[2]
    assert seeded.get_job("nope") is None
    assert seeded.get_task("t04") == TASKS[3]
    assert seeded.get_task("nope") is None


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (JobQuery(), ["j01", "j02", "j03", "j04", "j05", "j06"]),
        (JobQuery(owner="a@x.io"), ["j01", "j02", "j05"]),
        (JobQuery(application="web"), ["j01", "j03", "j05", "j06"]),
        (JobQuery(capacity_group="gpu"), ["j03", "j06"]),
        (JobQuery(job_type=JobType.SERVICE), ["j01", "j05"]),
        (JobQuery(job_type=JobType.BATCH), ["j02", "j03", "j04", "j06"]),
        (JobQuery(states=frozenset({JobState.FINISHED})), ["j04", "j06"]),
        (
            JobQuery(states=frozenset({JobState.ACCEPTED, JobState.KILL_INITIATED})),
            ["j01", "j02", "j03", "j05"],
        ),
        (JobQuery(labels={"env": "prod"}), ["j01", "j02"]),
        (JobQuery(labels={"env": "prod", "tier": "1"}), ["j01"]),  # several labels are ANDed
        (JobQuery(labels={"tier": "1"}), ["j01", "j04"]),
        (JobQuery(labels={"env": "staging"}), []),
        (JobQuery(owner="a@x.io", application="web", job_type=JobType.SERVICE), ["j01", "j05"]),
        (JobQuery(application="web", states=frozenset({JobState.FINISHED})), ["j06"]),
        (JobQuery(after_id="j03"), ["j04", "j05", "j06"]),
        (JobQuery(after_id="j03", owner="a@x.io"), ["j05"]),
        (JobQuery(limit=2), ["j01", "j02"]),
        (JobQuery(after_id="j06"), []),
        (JobQuery(newest_first=True, limit=3), ["j06", "j05", "j04"]),
        (JobQuery(newest_first=True, after_id="j04"), ["j03", "j02", "j01"]),
        (JobQuery(newest_first=True, owner="a@x.io"), ["j05", "j02", "j01"]),
    ],
)
def test_list_jobs_filters(seeded: SqlStore, query: JobQuery, expected: list[str]) -> None:
    assert _ids(seeded.list_jobs(query)) == expected


def test_list_jobs_pages_through_everything_once_in_id_order(seeded: SqlStore) -> None:
    seen: list[str] = []
    after: str | None = None
    while True:
        page = seeded.list_jobs(JobQuery(after_id=after, limit=4))
        if not page:
            break
        seen.extend(_ids(page))
        after = page[-1].id
    assert seen == sorted(j.id for j in JOBS)


def test_list_jobs_returns_whole_records(seeded: SqlStore) -> None:
    assert seeded.list_jobs(JobQuery(labels={"env": "test"})) == [JOBS[2]]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (TaskQuery(), ["t01", "t02", "t03", "t04", "t05", "t06", "t07"]),
        (TaskQuery(job_id="j01"), ["t01", "t02", "t07"]),
        (TaskQuery(job_id="nope"), []),
        (TaskQuery(host_id="h1"), ["t01", "t05", "t06"]),
        (TaskQuery(states=frozenset({TaskState.FINISHED})), ["t02", "t06"]),
        (TaskQuery(states=frozenset({TaskState.STARTED, TaskState.LAUNCHED})), ["t01", "t04", "t05"]),
        (TaskQuery(job_id="j01", states=frozenset({TaskState.DISCONNECTED})), ["t07"]),
        (TaskQuery(job_id="j01", host_id="h1"), ["t01"]),
        (TaskQuery(after_id="t04"), ["t05", "t06", "t07"]),
        (TaskQuery(after_id="t01", job_id="j01", limit=1), ["t02"]),
        (TaskQuery(limit=3), ["t01", "t02", "t03"]),
    ],
)
def test_list_tasks_filters(seeded: SqlStore, query: TaskQuery, expected: list[str]) -> None:
    assert _ids(seeded.list_tasks(query)) == expected


def test_list_tasks_pages_by_cursor(seeded: SqlStore) -> None:
    first = seeded.list_tasks(TaskQuery(limit=3))
    second = seeded.list_tasks(TaskQuery(after_id=first[-1].id, limit=3))
    third = seeded.list_tasks(TaskQuery(after_id=second[-1].id, limit=3))
    assert [*first, *second, *third] == sorted(TASKS, key=lambda t: t.id)
    assert seeded.list_tasks(TaskQuery(after_id=third[-1].id, limit=3)) == []
