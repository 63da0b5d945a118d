"""A damaged store is never trusted (issue 11, point 2): each damage found on a real store is refused with
a message that says what is wrong and how to restore; an undamaged store, however it was written, loads."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import text

from corral.domain.auth import Team
from corral.domain.idempotency import IdempotencyRecord
from corral.domain.states import JobState, TaskState
from corral.store import SqlStore, StoreError, WriteBatch, schema
from corral.store import backup as backups
from tests.store.factories import make_job, make_task
from tests.store.rawdb import raw

RESTORE = "`corral admin restore FILE --store-url URL`"
VERIFY = "`corral admin verify FILE`"
RESEAL = "`corral admin reseal --store-url URL`"


def running_store(store: SqlStore) -> None:
    """Five running tasks of two jobs, one finished job with its task: the store before the damage."""
    store.write(
        WriteBatch(
            [make_job("j1"), make_job("j2"), make_job("j-old", state=JobState.FINISHED)],
            [
                *(
                    make_task(f"t1-{i}", "j1", index=i, state=TaskState.STARTED, host_id="h1")
                    for i in range(3)
                ),
                *(
                    make_task(f"t2-{i}", "j2", index=i, state=TaskState.STARTED, host_id="h2")
                    for i in range(2)
                ),
                make_task("t-old", "j-old", state=TaskState.FINISHED),
            ],
        ),
        epoch=0,
    )
    store.verify()


def damage(url: str, *statements: str) -> None:
    with raw(url) as conn:
        for statement in statements:
            conn.execute(text(statement))


def refused(store: SqlStore) -> str:
    """The load's refusal (it must refuse), which also names the ways to restore."""
    with pytest.raises(StoreError) as error:
        store.load_active()
    message = str(error.value)
    assert message.startswith("the store cannot be trusted: ")
    assert VERIFY in message and RESTORE in message
    with pytest.raises(StoreError):
        store.verify()
    return message


def test_tasks_truncated_is_refused(store: SqlStore, database_url: str) -> None:
    running_store(store)
    damage(database_url, "DELETE FROM corral_tasks")
    message = refused(store)
    assert "corral_tasks holds 0 tasks not finished but the integrity record says 5" in message
    assert RESEAL in message  # only counts are off: an operator who knows better may reseal


def test_tasks_and_jobs_truncated_is_refused(store: SqlStore, database_url: str) -> None:
    running_store(store)
    damage(
        database_url, "DELETE FROM corral_tasks", "DELETE FROM corral_job_labels", "DELETE FROM corral_jobs"
    )
    message = refused(store)
    assert "corral_jobs holds 0 jobs not finished but the integrity record says 2" in message
    assert "corral_tasks holds 0 tasks not finished but the integrity record says 5" in message


def test_a_job_deleted_with_its_tasks_left_is_refused(store: SqlStore, database_url: str) -> None:
    running_store(store)
    damage(database_url, "DELETE FROM corral_jobs WHERE id = 'j2'")
    message = refused(store)
    assert "task t2-0 (corral_tasks) belongs to job j2, which has no row in corral_jobs" in message
    assert "task t2-1 (corral_tasks) belongs to job j2" in message
    assert "corral_jobs holds 1 jobs not finished but the integrity record says 2" in message
    assert RESEAL not in message  # recording what is there would not make an orphan right


def test_a_finished_job_deleted_with_its_tasks_left_is_refused(store: SqlStore, database_url: str) -> None:
    running_store(store)
    damage(database_url, "DELETE FROM corral_jobs WHERE id = 'j-old'")  # the counts do not change
    assert "task t-old (corral_tasks) belongs to job j-old, which has no row" in refused(store)


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        (
            "UPDATE corral_tasks SET state = 'Bogus' WHERE id = 't1-0'",
            "task t1-0 has state 'Bogus' in corral_tasks, which no Corral writes",
        ),
        (
            "UPDATE corral_jobs SET state = 'Paused' WHERE id = 'j1'",
            "job j1 has state 'Paused' in corral_jobs, which no Corral writes",
        ),
        (
            "UPDATE corral_jobs SET job_type = 'cron' WHERE id = 'j-old'",
            "job j-old has job_type 'cron' in corral_jobs, which no Corral writes",
        ),
    ],
)
def test_an_unknown_value_in_an_enum_column_is_refused(
    store: SqlStore, database_url: str, statement: str, expected: str
) -> None:
    running_store(store)
    damage(database_url, statement)
    assert expected in refused(store)


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        (
            "UPDATE corral_tasks SET job_id = 'j2' WHERE id = 't1-0'",
            "task t1-0: column job_id is 'j2' but its body says 'j1'",
        ),
        (
            "UPDATE corral_tasks SET state = 'Launched' WHERE id = 't1-0'",
            "task t1-0: column state is 'Launched' but its body says 'Started'",
        ),
        (
            "UPDATE corral_jobs SET state = 'KillInitiated' WHERE id = 'j1'",
            "job j1: column state is 'KillInitiated' but its body says 'Accepted'",
        ),
        (
            "UPDATE corral_jobs SET job_type = 'service' WHERE id = 'j1'",
            "job j1: column job_type is 'service' but its body says 'batch'",
        ),
        (
            "UPDATE corral_tasks SET id = 't1-9' WHERE id = 't1-0'",
            "task t1-9: column id is 't1-9' but its body says 't1-0'",
        ),
    ],
)
def test_a_column_that_disagrees_with_its_body_is_refused(
    store: SqlStore, database_url: str, statement: str, expected: str
) -> None:
    running_store(store)
    damage(database_url, statement)
    assert expected in refused(store)


def test_a_missing_integrity_record_is_refused(store: SqlStore, database_url: str) -> None:
    running_store(store)
    damage(database_url, "DELETE FROM corral_integrity")
    message = refused(store)
    assert "the integrity record (the one row of corral_integrity) is missing" in message
    assert RESEAL in message


def test_tables_restored_from_an_older_copy_are_refused(store: SqlStore, database_url: str) -> None:
    running_store(store)
    with raw(database_url) as conn:  # what the data tables and their record said one write ago
        old_jobs = conn.execute(text("SELECT * FROM corral_jobs")).mappings().all()
        old_record = conn.execute(text("SELECT * FROM corral_integrity")).mappings().one()
    store.write(WriteBatch([make_job("j1", state=JobState.KILL_INITIATED)]), epoch=0)
    store.verify()
    with raw(database_url) as conn:
        conn.execute(text("DELETE FROM corral_jobs"))
        conn.execute(schema.jobs.insert(), [dict(r) for r in old_jobs])
        conn.execute(text("DELETE FROM corral_integrity"))
        conn.execute(schema.integrity.insert().values(**old_record))
    message = refused(store)
    gen = old_record["generation"]
    assert (
        f"the integrity record is at generation {gen} but the lease row (corral_leader) says {gen + 1}"
        in message
    )


def test_a_body_that_does_not_decode_is_refused_with_the_way_back(store: SqlStore, database_url: str) -> None:
    running_store(store)
    damage(database_url, "UPDATE corral_tasks SET body = '{\"id\": 5}' WHERE id = 't2-1'")
    assert "task t2-1 cannot be decoded" in refused(store)


@pytest.mark.parametrize("table", ["corral_tasks", "corral_integrity", "corral_job_labels"])
def test_a_dropped_table_is_refused_on_open(store: SqlStore, database_url: str, table: str) -> None:
    running_store(store)
    damage(database_url, f"DROP TABLE {table}")
    with pytest.raises(StoreError) as error:
        store.open()
    message = str(error.value)
    assert f"schema version {schema.LATEST_VERSION} has table {table}, which the database does not" in message
    assert RESTORE in message


def test_a_dropped_column_is_refused_on_open(store: SqlStore, database_url: str) -> None:
    damage(database_url, "ALTER TABLE corral_tasks DROP COLUMN epoch")
    with pytest.raises(StoreError, match=r"has column corral_tasks\.epoch, which the database does not"):
        store.open()


def test_reseal_records_what_a_checked_store_holds(store: SqlStore, database_url: str) -> None:
    running_store(store)
    damage(
        database_url,
        "DELETE FROM corral_tasks WHERE job_id = 'j2'",
        "DELETE FROM corral_jobs WHERE id = 'j2'",
    )
    refused(store)
    record = backups.reseal(store)  # the operator checked: j2 was meant to go
    assert (record.active_jobs, record.active_tasks) == (1, 3)
    loaded = store.load_active()
    assert [j.id for j in loaded.jobs] == ["j1"] and len(loaded.tasks) == 3
    store.write(WriteBatch(tasks=[make_task("t1-0", "j1", state=TaskState.FINISHED)]), epoch=0)
    assert store.verify().active_tasks == 2  # writes go on counting from the resealed record


def test_reseal_does_not_make_an_orphan_right(store: SqlStore, database_url: str) -> None:
    running_store(store)
    damage(database_url, "DELETE FROM corral_jobs WHERE id = 'j2'")
    backups.reseal(store)
    assert "belongs to job j2, which has no row" in refused(store)


def test_reseal_is_refused_while_a_master_leads(store: SqlStore, database_url: str) -> None:
    running_store(store)
    damage(database_url, "DELETE FROM corral_integrity")
    store.acquire_lease("m1", "http://m1", 30)
    with pytest.raises(StoreError, match=r"a master leads this store \(m1 at http://m1, epoch 1\)"):
        backups.reseal(store)
    store.release_lease("m1", 1)
    backups.reseal(store)
    store.load_active()


def test_an_undamaged_store_loads_after_many_kinds_of_writes(store: SqlStore) -> None:
    """Jobs submitted, tasks placed, replaced and finishing, jobs finishing, rewrites of the same versions,
    pruning and the small tables: the integrity record follows every write exactly."""
    rng = random.Random(11)
    jobs: dict[str, JobState] = {}
    tasks: dict[str, tuple[str, TaskState, str | None]] = {}  # id -> job, state, resubmit_of
    now = 0.0
    for step in range(120):
        now += 1.0
        batch_jobs, batch_tasks = [], []
        for n in range(rng.randint(0, 3)):  # new jobs with two tasks each
            job_id = f"j{step:03d}-{n}"
            jobs[job_id] = JobState.ACCEPTED
            batch_jobs.append(make_job(job_id, created_at=now))
            for i in range(2):
                tasks[f"{job_id}-t{i}"] = (job_id, TaskState.ACCEPTED, None)
                batch_tasks.append(make_task(f"{job_id}-t{i}", job_id, index=i, created_at=now))
        for task_id in rng.sample(sorted(tasks), min(len(tasks), rng.randint(0, 6))):
            job_id, state, resubmit_of = tasks[task_id]
            if jobs.get(job_id, JobState.FINISHED) is JobState.FINISHED or state is TaskState.FINISHED:
                continue
            new = rng.choice([TaskState.STARTED, TaskState.FINISHED, TaskState.FINISHED])
            tasks[task_id] = (job_id, new, resubmit_of)
            batch_tasks.append(make_task(task_id, job_id, state=new, created_at=now, resubmit_of=resubmit_of))
            if new is TaskState.FINISHED and rng.random() < 0.5:  # replaced by a newer task
                replacement = f"{task_id}r"
                tasks[replacement] = (job_id, TaskState.ACCEPTED, task_id)
                batch_tasks.append(make_task(replacement, job_id, created_at=now, resubmit_of=task_id))
        for job_id in sorted(jobs):
            own = [t for t, (j, s, _) in tasks.items() if j == job_id]
            if jobs[job_id] is JobState.ACCEPTED and all(tasks[t][1] is TaskState.FINISHED for t in own):
                jobs[job_id] = JobState.FINISHED
                batch_jobs.append(make_job(job_id, state=JobState.FINISHED, finished_at=now))
        if rng.random() < 0.2 and batch_jobs:  # the same versions written twice (a retried batch)
            store.write(WriteBatch(batch_jobs, batch_tasks), epoch=0)
        key = IdempotencyRecord("alice", f"k{step}", "h", "job", f"j{step}", now)
        store.write(WriteBatch(batch_jobs, batch_tasks, [key]), epoch=0)
        if step % 25 == 24:
            store.prune_finished(now - 10, epoch=0)
            store.prune_idempotency(now - 50, epoch=0)
            store.put_team(Team(f"team-{step}"), epoch=0)
            store.put_setting("scheduler.mode.flex", "spread", epoch=0)
        store.verify()
    record = store.verify()
    with store.engine.connect() as conn:
        counted = conn.execute(
            text(
                "SELECT (SELECT count(*) FROM corral_jobs WHERE state <> 'Finished'), "
                "(SELECT count(*) FROM corral_tasks WHERE state <> 'Finished')"
            )
        ).one()
    assert (record.active_jobs, record.active_tasks) == tuple(counted)
    assert record.active_tasks > 0 and record.active_jobs > 0
    # The last prune (at 100 s) kept the keys of its last 50 s; every key since is there too.
    assert [r.created_at for r in store.load_idempotency(0.0)] == [float(t) for t in range(50, 121)]
