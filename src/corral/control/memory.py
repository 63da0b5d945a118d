"""Keeping the leader's memory bounded: what may leave it once the store holds it.

Finished jobs leave with their tasks. For active jobs, a finished task leaves once something newer
stands in for it (a retry of its batch index, or its service replacement): the reconcilers only ever
look at the newest task of a line. Nothing leaves before its latest version is committed.
"""

from __future__ import annotations

from corral.control.ledger import Ledger
from corral.domain.task import Task
from corral.jobs.batch import latest_by_index


def evict_finished(ledger: Ledger) -> int:
    """Drop what no longer needs to be in memory; return how many records went."""
    state, writer = ledger.state, ledger.writer
    candidates, ledger.finished = ledger.finished, {}
    keep: dict[str, None] = {}
    by_job: dict[str, list[Task]] = {}
    dropped = 0
    for ident in candidates:
        job = state.jobs.get(ident)
        if job is not None:
            tasks = state.tasks_of(ident)
            if writer.is_clean(ident) and all(writer.is_clean(t.id) for t in tasks):
                state.drop_job(ident)
                dropped += 1 + len(tasks)
            else:
                keep[ident] = None
            continue
        task = state.tasks.get(ident)
        if task is not None:
            by_job.setdefault(task.job_id, []).append(task)
    for job_id, finished in by_job.items():
        job = state.jobs.get(job_id)
        if job is None or not job.is_active:
            continue  # a finished job goes as a whole
        superseded = _superseded(state.tasks_of(job_id))
        for task in finished:
            if task.id not in superseded:
                continue  # still the newest of its line: the reconciler needs it
            if writer.is_clean(task.id):
                state.drop_task(task.id)
                dropped += 1
            else:
                keep[task.id] = None
    ledger.finished.update(keep)
    return dropped


def _superseded(tasks: list[Task]) -> set[str]:
    """Ids of tasks that a newer task of the same line replaces."""
    replaced = {t.resubmit_of for t in tasks if t.resubmit_of is not None}
    latest = {t.id for t in latest_by_index(tasks).values()}
    replaced.update(t.id for t in tasks if t.index is not None and t.id not in latest)
    return replaced
