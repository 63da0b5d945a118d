"""PostgreSQL: a prepared batch committed as one pipeline — the same fenced transaction as
``batch.Committer`` builds with SQLAlchemy, sent in two round trips instead of one per statement.

Under load each round trip of a commit waits for a CPU as well as for the server, so the number of round
trips, not the rows, sets the cost of a batch: eight statements and a commit took 7.7 ms for 60 records
beside a busy leader. Here the fence, the integrity record, the upserts and the label and key rows go out
together and their results come back together; only then is the transaction committed — or rolled back
when the fence found another epoch leading, so that nothing of a deposed leader's batch is ever kept.

The integrity record takes its generation from the lease row in the same transaction (the fence's bump,
which this transaction has made and holds locked), since the fence's answer is not back yet when the
record's UPDATE is sent.
"""

from __future__ import annotations

import time
from typing import Any

import psycopg
from sqlalchemy import Engine

from corral.store import integrity, lease, schema
from corral.store.batch import PreparedBatch
from corral.store.protocol import StoreError, UnwritableRecord

FINISHED = integrity.FINISHED


def _upsert(table: Any) -> str:
    columns = [c.name for c in table.columns]
    updated = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c != "id")
    return (
        f"INSERT INTO {table.name} ({', '.join(columns)}) "
        f"VALUES ({', '.join(f'%({c})s' for c in columns)}) "
        f"ON CONFLICT (id) DO UPDATE SET {updated}"
    )


def _insert(table: Any, conflict: str = "") -> str:
    columns = [c.name for c in table.columns]
    return (
        f"INSERT INTO {table.name} ({', '.join(columns)}) "
        f"VALUES ({', '.join(f'%({c})s' for c in columns)}){conflict}"
    )


LEADER, RECORD = schema.leader.name, schema.integrity.name
FENCE = (
    f"UPDATE {LEADER} SET generation = generation + 1 WHERE id = 1 AND epoch = %(epoch)s RETURNING generation"
)
CURRENT_EPOCH = f"SELECT epoch FROM {LEADER} WHERE id = 1"
RECORD_BATCH = (
    f"UPDATE {RECORD} SET generation = (SELECT generation FROM {LEADER} WHERE id = 1), "
    f"active_jobs = active_jobs + %(jobs)s - (SELECT count(*) FROM {schema.jobs.name} "
    "WHERE id = ANY(%(job_ids)s) AND state <> %(finished)s), "
    f"active_tasks = active_tasks + %(tasks)s - (SELECT count(*) FROM {schema.tasks.name} "
    "WHERE id = ANY(%(task_ids)s) AND state <> %(finished)s), "
    "updated_at = %(now)s, epoch = %(epoch)s WHERE id = 1"
)
UPSERT_JOBS = _upsert(schema.jobs)
UPSERT_TASKS = _upsert(schema.tasks)
DELETE_LABELS = f"DELETE FROM {schema.job_labels.name} WHERE job_id = ANY(%(job_ids)s)"
INSERT_LABELS = _insert(schema.job_labels)
# A key already there stays as it was: the first request that used it owns it.
INSERT_KEYS = _insert(schema.idempotency, " ON CONFLICT DO NOTHING")


class PipelinedCommitter:
    """Commits prepared batches to a PostgreSQL ``engine`` (psycopg), one pipelined transaction each."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def __call__(self, batch: PreparedBatch) -> None:
        try:
            self._commit(batch)
        except (psycopg.DataError, psycopg.IntegrityError) as e:  # e.g. NUL in a text column
            raise UnwritableRecord(f"the database refused a value: {e}") from e
        except UnicodeError as e:
            raise UnwritableRecord(f"a value cannot be sent to the database: {e}") from e

    def _commit(self, batch: PreparedBatch) -> None:
        job_ids = [r["id"] for r in batch.jobs]
        record = {
            "epoch": batch.epoch,
            "jobs": batch.active_jobs,
            "tasks": batch.active_tasks,
            "job_ids": job_ids,
            "task_ids": [r["id"] for r in batch.tasks],
            "finished": FINISHED,
            "now": time.time(),
        }
        raw = self.engine.raw_connection()
        try:
            conn: psycopg.Connection[Any] = raw.driver_connection  # type: ignore[assignment]
            with conn.pipeline():
                fence = conn.execute(FENCE, {"epoch": batch.epoch})
                recorded = conn.execute(RECORD_BATCH, record)
                cur = conn.cursor()
                if batch.jobs:
                    cur.executemany(UPSERT_JOBS, batch.jobs)
                    # A job's labels are rewritten whole, so a changed or removed label stops matching.
                    cur.execute(DELETE_LABELS, {"job_ids": job_ids})
                    if batch.labels:
                        cur.executemany(INSERT_LABELS, batch.labels)
                if batch.tasks:
                    cur.executemany(UPSERT_TASKS, batch.tasks)
                if batch.keys:
                    cur.executemany(INSERT_KEYS, batch.keys)
            if fence.fetchone() is None:  # another epoch leads: keep nothing of this batch
                conn.rollback()
                raise _fenced_error(conn, batch.epoch)
            if recorded.rowcount != 1:
                conn.rollback()
                raise StoreError(f"the integrity record (table {RECORD}) is missing: refusing to write")
            conn.commit()
        except BaseException:
            _rollback_quietly(raw)
            raise
        finally:
            raw.close()


def _fenced_error(conn: psycopg.Connection[Any], epoch: int) -> lease.FencedError:
    row = conn.execute(CURRENT_EPOCH).fetchone()
    conn.rollback()
    return lease.refusal(epoch, None if row is None else int(row[0]))


def _rollback_quietly(raw: Any) -> None:
    try:
        raw.rollback()
    except Exception:  # a broken connection: the pool discards it
        raw.invalidate()
