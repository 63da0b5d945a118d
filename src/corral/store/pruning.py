"""Pruning history: finished jobs past the retention go with their tasks; long-lived jobs keep only their
recent tasks, and always the newest task of each line (reconcilers rebuild from it after a restart).
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Connection, delete, func, select

from corral.domain.task import Task
from corral.store import schema
from corral.store.integrity import FINISHED
from corral.store.rows import chunks, decode


def prune_finished(conn: Connection, before: float) -> tuple[int, int]:
    """Inside a fenced write: delete what finished before ``before``. Returns how many jobs went, and the
    change in the number of unfinished tasks (for the integrity record: nothing unfinished should go)."""
    j, t, lbl = schema.jobs, schema.tasks, schema.job_labels
    task_delta = 0
    old = select(j.c.id).where(j.c.state == FINISHED, j.c.finished_at < before)
    ids = conn.execute(old).scalars().all()
    for chunk in chunks(ids, 500):
        task_delta -= _unfinished(conn, t.c.job_id.in_(chunk))
        conn.execute(delete(t).where(t.c.job_id.in_(chunk)))
        conn.execute(delete(lbl).where(lbl.c.job_id.in_(chunk)))
        conn.execute(delete(j).where(j.c.id.in_(chunk)))
    # Long-lived jobs keep their recent history only, but always the newest task of each line:
    # reconcilers rebuild from it after a restart (a batch index without a task would run again).
    stale = conn.execute(select(t.c.id, t.c.job_id).where(t.c.finished_at < before)).all()
    replaced: set[str] = set()
    for chunk in chunks(sorted({job_id for _, job_id in stale}), 500):
        rows = conn.execute(select(t.c.id, t.c.body).where(t.c.job_id.in_(chunk))).all()
        replaced.update(task.resubmit_of for task in decode(rows, Task, "task") if task.resubmit_of)
    for chunk in chunks([ident for ident, _ in stale if ident in replaced], 500):
        task_delta -= _unfinished(conn, t.c.id.in_(chunk))
        conn.execute(delete(t).where(t.c.id.in_(chunk)))
    return len(ids), task_delta


def _unfinished(conn: Connection, where: ColumnElement[bool]) -> int:
    t = schema.tasks
    stmt = select(func.count()).select_from(t).where(where, t.c.state != FINISHED)
    return int(conn.execute(stmt).scalar_one())
