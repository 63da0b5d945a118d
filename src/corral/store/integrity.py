"""What the store holds, recorded by every write, and the checks a load makes before it is trusted.

Seed 002: a master that loaded a truncated store saw no tasks and killed every container it did not
know. A store that lost rows looks just like a quiet one, so every fenced write transaction also keeps a
one-row record of what the store holds (``corral_integrity``): the number of jobs and of tasks that are not
finished, and a generation that goes up by one per write and is mirrored in the lease row. A load compares
the rows it finds with that record, and looks for rows that cannot be right (a task without its job, a
state no Corral writes, a column that disagrees with its body). Any doubt is a StoreError that says what
is wrong and how to restore; the master then refuses to lead.

Counting is cheap: a write adjusts the counts by the difference between its rows' old and new states,
in the one UPDATE of the record (per chunk of the batch's ids) that it makes before its upserts, never
by counting whole tables.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BindParameter,
    Column,
    ColumnElement,
    Connection,
    CursorResult,
    Update,
    bindparam,
    delete,
    exists,
    func,
    select,
    update,
)

from corral.domain.states import JobState, JobType, TaskState
from corral.store import lease, schema
from corral.store.protocol import IntegrityRecord, StoreError

FINISHED = JobState.FINISHED.value  # the same word for jobs and tasks
SHOWN = 5  # rows named in a message; the rest are counted
CHUNK = 1000  # ids per IN list

RESTORE = (
    "restore the last good backup: `corral admin verify FILE` checks a backup file, and "
    "`corral admin restore FILE --store-url URL` loads it into an empty store"
)
RESEAL = (
    "if you have checked that the store is right as it is, `corral admin reseal --store-url URL` "
    "records what it holds now"
)


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the store, and whether recording what it holds (a reseal) would answer it."""

    text: str
    resealable: bool = False


def refusal(problems: Sequence[Problem]) -> StoreError:
    """The error a load raises: every problem found, then how to restore (and when resealing is right)."""
    advice = RESTORE
    if all(p.resealable for p in problems):
        advice = f"{RESTORE}; or, {RESEAL}"
    found = "; ".join(p.text for p in problems)
    return StoreError(f"the store cannot be trusted: {found}. To lead on it again, {advice}.")


# -- writing ---------------------------------------------------------------------------------------


def _record_statement(counting: bool) -> Update:
    """The integrity record's update, built once: the leader writes hundreds of batches a second."""
    i, j, t = schema.integrity, schema.jobs, schema.tasks
    active_jobs: ColumnElement[Any] = i.c.active_jobs + bindparam("jobs")
    active_tasks: ColumnElement[Any] = i.c.active_tasks + bindparam("tasks")
    if counting:  # less the rows of the batch's ids that are active now (before they are overwritten)
        job_ids: BindParameter[Any] = bindparam("job_ids", expanding=True)
        task_ids: BindParameter[Any] = bindparam("task_ids", expanding=True)
        active_jobs = active_jobs - (
            select(func.count()).where(j.c.id.in_(job_ids), j.c.state != FINISHED).scalar_subquery()
        )
        active_tasks = active_tasks - (
            select(func.count()).where(t.c.id.in_(task_ids), t.c.state != FINISHED).scalar_subquery()
        )
    return (
        update(i)
        .where(i.c.id == 1)
        .values(
            generation=bindparam("generation"),
            active_jobs=active_jobs,
            active_tasks=active_tasks,
            updated_at=bindparam("updated_at"),
            epoch=bindparam("epoch"),
        )
    )


_RECORD = _record_statement(counting=False)
_RECORD_BATCH = _record_statement(counting=True)


def record_batch(
    conn: Connection,
    *,
    epoch: int,
    generation: int,
    job_ids: Sequence[str],
    task_ids: Sequence[str],
    active_jobs: int,
    active_tasks: int,
) -> None:
    """Inside a fenced write whose fence returned ``generation``, before the jobs and tasks of ``job_ids``
    and ``task_ids`` (each distinct) are upserted: count them in (``active_jobs`` and ``active_tasks`` of
    them will not be finished, less the rows of those ids that are active now) and record the generation,
    the same as the lease row's. One statement per chunk of ids."""
    params = {
        "generation": generation,
        "epoch": epoch,
        "updated_at": time.time(),
        "jobs": active_jobs,
        "tasks": active_tasks,
    }
    for start in range(0, max(len(job_ids), len(task_ids), 1), CHUNK):
        chunk = {"job_ids": job_ids[start : start + CHUNK], "task_ids": task_ids[start : start + CHUNK]}
        _updated(conn.execute(_RECORD_BATCH, {**params, **chunk}))
        params["jobs"] = params["tasks"] = 0  # the new states are counted once


def record(conn: Connection, *, epoch: int, generation: int, jobs: int = 0, tasks: int = 0) -> None:
    """Inside a fenced write whose fence returned ``generation``: adjust the counts by ``jobs`` and
    ``tasks`` and record the generation, the same as the lease row's."""
    params = {
        "generation": generation,
        "epoch": epoch,
        "updated_at": time.time(),
        "jobs": jobs,
        "tasks": tasks,
    }
    _updated(conn.execute(_RECORD, params))


def _updated(result: CursorResult[Any]) -> None:
    if result.rowcount != 1:
        raise StoreError(
            f"the integrity record (table {schema.integrity.name}) is missing: refusing to write"
        )


def reseal(conn: Connection, epoch: int, generation: int) -> IntegrityRecord:
    """Inside a fenced write (whose fence returned ``generation``): record what the store holds now,
    counted whole."""
    i, leader = schema.integrity, schema.leader
    jobs, tasks = count(conn)
    old = read(conn)
    if old is not None and old.generation >= generation:  # a record from later than the lease row
        generation = old.generation + 1
        conn.execute(update(leader).where(leader.c.id == 1).values(generation=generation))
    now = float(conn.execute(select(lease.db_now(conn.engine))).scalar_one())
    values = {
        "generation": generation,
        "active_jobs": jobs,
        "active_tasks": tasks,
        "updated_at": now,
        "epoch": epoch,
    }
    if old is None:
        conn.execute(i.insert().values(id=1, **values))
    else:
        conn.execute(update(i).where(i.c.id == 1).values(**values))
    conn.execute(delete(i).where(i.c.id != 1))
    return IntegrityRecord(generation, jobs, tasks, now, epoch)


def count(conn: Connection) -> tuple[int, int]:
    """Active jobs and unfinished tasks, counted whole (for a reseal, a restore, a migration)."""
    j, t = schema.jobs, schema.tasks
    jobs = conn.execute(select(func.count()).select_from(j).where(j.c.state != FINISHED)).scalar_one()
    tasks = conn.execute(select(func.count()).select_from(t).where(t.c.state != FINISHED)).scalar_one()
    return int(jobs), int(tasks)


def read(conn: Connection) -> IntegrityRecord | None:
    i = schema.integrity
    row = conn.execute(
        select(i.c.generation, i.c.active_jobs, i.c.active_tasks, i.c.updated_at, i.c.epoch).where(
            i.c.id == 1
        )
    ).one_or_none()
    if row is None:
        return None
    return IntegrityRecord(int(row[0]), int(row[1]), int(row[2]), float(row[3]), int(row[4]))


# -- checking --------------------------------------------------------------------------------------


def check(conn: Connection) -> list[Problem]:
    """Everything wrong with the store as a whole (its rows' bodies aside): the record against the rows,
    values no Corral writes, tasks without their job. One scan of each table, and one anti-join."""
    j, t = schema.jobs, schema.tasks
    job_groups = conn.execute(
        select(j.c.state, j.c.job_type, func.count()).group_by(j.c.state, j.c.job_type)
    ).all()
    task_groups = conn.execute(select(t.c.state, func.count()).group_by(t.c.state)).all()
    active_jobs = sum(int(n) for state, _, n in job_groups if state != FINISHED)
    active_tasks = sum(int(n) for state, n in task_groups if state != FINISHED)
    problems = _against_record(conn, active_jobs, active_tasks)
    for what, column, known, found in (
        ("job", j.c.state, JobState, {state for state, _, _ in job_groups}),
        ("job", j.c.job_type, JobType, {job_type for _, job_type, _ in job_groups}),
        ("task", t.c.state, TaskState, {state for state, _ in task_groups}),
    ):
        problems += _unknown_values(conn, what, column, sorted(v.value for v in known), found)
    problems += _orphans(conn)
    return problems


def _against_record(conn: Connection, active_jobs: int, active_tasks: int) -> list[Problem]:
    i, leader = schema.integrity, schema.leader
    rows = conn.execute(select(func.count()).select_from(i)).scalar_one()
    rec = read(conn)
    if rec is None:
        return [Problem(f"the integrity record (the one row of {i.name}) is missing", resealable=True)]
    problems: list[Problem] = []
    if rows != 1:
        problems.append(Problem(f"{i.name} holds {rows} rows, not 1", resealable=True))
    lease_generation = conn.execute(select(leader.c.generation).where(leader.c.id == 1)).scalar_one_or_none()
    if lease_generation is None:
        problems.append(Problem(f"the lease row of {leader.name} is missing"))
    elif int(lease_generation) != rec.generation:
        problems.append(
            Problem(
                f"the integrity record is at generation {rec.generation} but the lease row ({leader.name}) "
                f"says {lease_generation}: the tables were restored or copied from another point in time",
                resealable=True,
            )
        )
    for table, what, found, recorded in (
        (schema.jobs, "jobs", active_jobs, rec.active_jobs),
        (schema.tasks, "tasks", active_tasks, rec.active_tasks),
    ):
        if found != recorded:
            problems.append(
                Problem(
                    f"{table.name} holds {found} {what} not finished but the integrity record says "
                    f"{recorded}",
                    resealable=True,
                )
            )
    return problems


def _unknown_values(
    conn: Connection, what: str, column: Column[Any], known: list[str], found: set[str]
) -> list[Problem]:
    """A problem naming rows (a few) for each value of ``column`` that no Corral writes."""
    table = column.table
    problems: list[Problem] = []
    for value in sorted(found - set(known)):
        stmt = select(table.c.id).where(column == value).order_by(table.c.id).limit(SHOWN + 1)
        idents = conn.execute(stmt).scalars().all()
        for ident in idents[:SHOWN]:
            problems.append(
                Problem(
                    f"{what} {ident} has {column.name} {value!r} in {table.name}, which no Corral writes "
                    f"(known: {', '.join(known)})"
                )
            )
        if len(idents) > SHOWN:
            problems.append(Problem(f"and more {table.name} rows with {column.name} {value!r}"))
    return problems


def _orphans(conn: Connection) -> list[Problem]:
    """Tasks whose job has no row. The jobs the tasks name are found first (one scan, grouped) and only
    those are looked up: a plan that probes the jobs once per task row is slow on a large history."""
    j, t = schema.jobs, schema.tasks
    named = select(t.c.job_id).group_by(t.c.job_id).subquery()
    stmt = select(named.c.job_id).where(~exists().where(j.c.id == named.c.job_id)).limit(SHOWN + 1)
    missing = sorted(conn.execute(stmt).scalars())
    if not missing:
        return []
    found = conn.execute(
        select(t.c.id, t.c.job_id).where(t.c.job_id.in_(missing)).order_by(t.c.id).limit(SHOWN + 1)
    ).all()
    problems = [
        Problem(f"task {ident} ({t.name}) belongs to job {job_id}, which has no row in {j.name}")
        for ident, job_id in found[:SHOWN]
    ]
    if len(found) > SHOWN:
        problems.append(Problem(f"and more tasks whose job has no row in {j.name}"))
    return problems
