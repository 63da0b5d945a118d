"""Writing batches (upserts, one transaction each) and loading the active state back."""

from __future__ import annotations

from dataclasses import replace

import psycopg
import pytest
from sqlalchemy import Table, func, select
from sqlalchemy.exc import IntegrityError

from corral.domain.states import JobState, TaskState
from corral.domain.task import Task
from corral.store import JobQuery, SqlStore, TaskQuery, WriteBatch, schema
from corral.store.protocol import UnwritableRecord
from tests.store.factories import make_job, make_task
from tests.store.rawdb import raw


def _count(url: str, table: Table) -> int:
    with raw(url) as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_write_then_read_back_every_field(store: SqlStore) -> None:
    job = make_job("j1", labels={"team": "a"}, service=True, created_at=5.0)
    task = replace(
        make_task("t1", "j1", index=None, state=TaskState.STARTED, host_id="h1", ports=(30001, 30002)),
        started_at=7.5,
        attempt=2,
        resubmit_of="t0",
    )
    store.write(WriteBatch([job], [task]), epoch=0)
    assert store.get_job("j1") == job
    assert store.get_task("t1") == task


def test_empty_batch_writes_nothing(store: SqlStore, database_url: str) -> None:
    store.write(WriteBatch(), epoch=0)
    assert _count(database_url, schema.jobs) == 0


def test_second_write_of_same_id_updates_state_and_body(store: SqlStore, database_url: str) -> None:
    store.write(WriteBatch([make_job("j1")], [make_task("t1", "j1")]), epoch=0)
    finished_job = make_job("j1", state=JobState.FINISHED, finished_at=9.0)
    started = make_task("t1", "j1", state=TaskState.STARTED, host_id="h2")
    store.write(WriteBatch([finished_job], [started]), epoch=0)

    assert store.get_job("j1") == finished_job
    assert store.get_task("t1") == started
    assert _count(database_url, schema.jobs) == 1
    assert _count(database_url, schema.tasks) == 1
    # The copied-out columns follow the body, so filters see the new values.
    assert store.list_jobs(JobQuery(states=frozenset({JobState.FINISHED}))) == [finished_job]
    assert store.list_jobs(JobQuery(states=frozenset({JobState.ACCEPTED}))) == []
    assert store.list_tasks(TaskQuery(host_id="h2")) == [started]
    assert store.list_tasks(TaskQuery(states=frozenset({TaskState.ACCEPTED}))) == []


def test_rewritten_job_labels_replace_the_old_ones(store: SqlStore) -> None:
    store.write(WriteBatch([make_job("j1", labels={"env": "test", "old": "x"})]), epoch=0)
    relabelled = make_job("j1", labels={"env": "prod", "new": "y"})
    store.write(WriteBatch([relabelled]), epoch=0)

    assert store.list_jobs(JobQuery(labels={"env": "prod"})) == [relabelled]
    assert store.list_jobs(JobQuery(labels={"new": "y"})) == [relabelled]
    assert store.list_jobs(JobQuery(labels={"env": "test"})) == []
    assert store.list_jobs(JobQuery(labels={"old": "x"})) == []


def test_failing_batch_leaves_nothing_half_written(store: SqlStore, database_url: str) -> None:
    store.write(WriteBatch([make_job("j-old")], [make_task("t-old", "j-old")]), epoch=0)
    bad = replace(make_task("t-bad", "j-new"), job_id=None)  # type: ignore[arg-type]  # NOT NULL
    batch = WriteBatch(
        [make_job("j-new", labels={"k": "v"}), make_job("j-old", state=JobState.FINISHED)],
        [make_task("t-new", "j-new"), make_task("t-old", "j-old", state=TaskState.STARTED), bad],
    )
    with pytest.raises(UnwritableRecord, match="the database refused a value") as refused:
        store.write(batch, epoch=0)
    # SQLAlchemy's on SQLite, psycopg's from PostgreSQL's pipelined commit (store/pgbatch.py)
    assert isinstance(refused.value.__cause__, IntegrityError | psycopg.IntegrityError)

    assert store.get_job("j-new") is None
    assert store.get_task("t-new") is None
    assert store.get_job("j-old") == make_job("j-old")  # the update in the failed batch was rolled back
    assert store.get_task("t-old") == make_task("t-old", "j-old")
    assert store.list_jobs(JobQuery(labels={"k": "v"})) == []
    assert _count(database_url, schema.job_labels) == 0
    # The store still takes the next batch.
    store.write(WriteBatch([make_job("j-new")]), epoch=0)
    assert store.get_job("j-new") == make_job("j-new")


def test_load_active_returns_unfinished_jobs_and_all_their_tasks(store: SqlStore) -> None:
    store.write(
        WriteBatch(
            [
                make_job("j-accepted"),
                make_job("j-killing", state=JobState.KILL_INITIATED),
                make_job("j-done", state=JobState.FINISHED, finished_at=3.0),
            ],
            [
                make_task("t1", "j-accepted", state=TaskState.FINISHED),
                make_task("t2", "j-accepted", index=1, state=TaskState.STARTED, host_id="h"),
                make_task("t3", "j-killing", state=TaskState.KILL_INITIATED, host_id="h"),
                make_task("t4", "j-done", state=TaskState.FINISHED),
            ],
        ),
        epoch=0,
    )
    loaded = store.load_active()
    assert sorted(j.id for j in loaded.jobs) == ["j-accepted", "j-killing"]
    assert sorted(t.id for t in loaded.tasks) == ["t1", "t2", "t3"]
    assert all(isinstance(t, Task) for t in loaded.tasks)


def test_big_batch_is_written_whole(store: SqlStore) -> None:
    jobs = [make_job(f"j{i:04d}", labels={"n": str(i % 3)}) for i in range(600)]
    tasks = [make_task(f"t{i:04d}", f"j{i:04d}") for i in range(600)]
    store.write(WriteBatch(jobs, tasks), epoch=0)
    loaded = store.load_active()
    assert len(loaded.jobs) == 600
    assert len(loaded.tasks) == 600
    assert len(store.list_jobs(JobQuery(labels={"n": "1"}, limit=1000))) == 200


def test_two_versions_of_a_job_in_one_batch_last_wins(store: SqlStore) -> None:
    first = make_job("j1", labels={"env": "test"})
    last = make_job("j1", state=JobState.KILL_INITIATED, labels={"env": "prod"})
    store.write(WriteBatch([first, last]), epoch=0)
    assert store.get_job("j1") == last
    assert store.list_jobs(JobQuery(labels={"env": "prod"})) == [last]
    assert store.list_jobs(JobQuery(labels={"env": "test"})) == []
