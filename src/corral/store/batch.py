"""A write batch in two steps: made into rows where it is written (``prepare``), then committed in one
fenced transaction (``Committer``) — in the same process, or in the store's writer process
(``writer_process``), which is why a prepared batch holds nothing but plain rows.

Rows are made before the transaction, so a record that cannot be encoded fails holding no lock; the
database's own refusals (a NUL in a PostgreSQL text column, say) become ``UnwritableRecord`` too, so
that the caller can set that record aside and write the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import msgspec
from sqlalchemy import Connection, Engine, bindparam, delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DataError, IntegrityError, StatementError

from corral.domain.states import JobState, TaskState
from corral.store import integrity, lease, rows, schema
from corral.store.protocol import UnwritableRecord, WriteBatch

Rows = list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class PreparedBatch:
    """A batch as rows, for one epoch: each job and task once (its last version)."""

    epoch: int
    jobs: Rows
    labels: Rows
    tasks: Rows
    keys: Rows
    active_jobs: int  # of the batch's jobs, those not finished (the integrity record counts them in)
    active_tasks: int


def prepare(batch: WriteBatch, epoch: int) -> PreparedBatch:
    """The rows of ``batch``; UnwritableRecord if a record cannot be encoded (e.g. a lone surrogate)."""
    jobs = list({j.id: j for j in batch.jobs}.values())  # the last version of an id wins
    tasks = list({t.id: t for t in batch.tasks}.values())
    try:
        return PreparedBatch(
            epoch,
            [rows.job_row(job, epoch) for job in jobs],
            rows.label_rows(jobs),
            [rows.task_row(task, epoch) for task in tasks],
            [rows.idempotency_row(r) for r in batch.idempotency],
            sum(1 for job in jobs if job.state is not JobState.FINISHED),
            sum(1 for task in tasks if task.state is not TaskState.FINISHED),
        )
    except (ValueError, TypeError, msgspec.EncodeError) as e:
        raise UnwritableRecord(f"a record cannot be encoded: {e}") from e


@contextmanager
def fenced(engine: Engine, epoch: int) -> Iterator[tuple[Connection, int]]:
    """A write transaction that belongs to ``epoch`` (FencedError unless that epoch leads), and the
    store's generation it writes."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            # Take the write lock before the check, so that no takeover fits between check and write.
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        yield conn, lease.fenced(conn, epoch)


def committer_for(engine: Engine) -> Callable[[PreparedBatch], None]:
    """How batches are committed to ``engine``: PostgreSQL's pipelined commit (two round trips), or the
    same transaction statement by statement (SQLite, where a statement costs no round trip)."""
    if engine.dialect.name == "postgresql":
        from corral.store.pgbatch import PipelinedCommitter  # psycopg only where PostgreSQL is used

        return PipelinedCommitter(engine)
    return Committer(engine)


class Committer:
    """Commits prepared batches to ``engine``, one fenced transaction each (statements built once: a
    leader writes hundreds of batches a second)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        insert = sqlite.insert if engine.dialect.name == "sqlite" else postgresql.insert
        self._upsert_jobs = _upsert(insert, schema.jobs)
        self._upsert_tasks = _upsert(insert, schema.tasks)
        labels = schema.job_labels
        self._delete_labels = delete(labels).where(labels.c.job_id == bindparam("job_id"))
        self._insert_labels = labels.insert()
        # A key already there stays as it was: the first request that used it owns it.
        self._insert_keys = insert(schema.idempotency).on_conflict_do_nothing()

    def __call__(self, batch: PreparedBatch) -> None:
        try:
            self._commit(batch)
        except (DataError, IntegrityError) as e:  # e.g. NUL in a PostgreSQL text column
            raise UnwritableRecord(f"the database refused a value: {e.orig or e}") from e
        except StatementError as e:
            if not isinstance(e.orig, UnicodeError):
                raise
            raise UnwritableRecord(f"a value cannot be sent to the database: {e.orig}") from e
        except UnicodeError as e:  # a driver that encodes parameters itself
            raise UnwritableRecord(f"a value cannot be sent to the database: {e}") from e

    def _commit(self, batch: PreparedBatch) -> None:
        job_ids = [r["id"] for r in batch.jobs]
        with fenced(self.engine, batch.epoch) as (conn, generation):
            integrity.record_batch(
                conn,
                epoch=batch.epoch,
                generation=generation,
                job_ids=job_ids,
                task_ids=[r["id"] for r in batch.tasks],
                active_jobs=batch.active_jobs,
                active_tasks=batch.active_tasks,
            )
            if batch.jobs:
                conn.execute(self._upsert_jobs, batch.jobs)
                # A job's labels are rewritten whole, so a changed or removed label stops matching.
                conn.execute(self._delete_labels, [{"job_id": i} for i in job_ids])
                if batch.labels:
                    conn.execute(self._insert_labels, batch.labels)
            if batch.tasks:
                conn.execute(self._upsert_tasks, batch.tasks)
            if batch.keys:
                conn.execute(self._insert_keys, batch.keys)


def _upsert(insert: Any, table: Any) -> Any:
    stmt = insert(table)
    updated = {c.name: stmt.excluded[c.name] for c in table.columns if not c.primary_key}
    return stmt.on_conflict_do_update(index_elements=[table.c.id], set_=updated)
