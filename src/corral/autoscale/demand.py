"""The demand the autoscaler sizes for: pending tasks old enough, the younger ones of the same jobs, and
work a job has asked for that has no task yet.

A pending task counts once it has waited ``pending_after_s`` (a task about to be placed in room that is
freeing up is no reason to grow). But a burst's tasks are created over several iterations (the cap
below, and a loaded master), so when the first of them are old enough the last are young: sized on the
old ones alone, the fleet grows in two decisions. A job with a task old enough therefore counts all
its pending tasks (``old_enough``).

A job creates at most ``max_unstarted_tasks_per_job`` tasks that have not started (issue 11's cap, which
keeps a 50,000-task burst from flooding the store); the rest are created as earlier ones start. A burst
of 5,000 tasks therefore shows only 1,000 pending at a time — sized on those alone, the fleet would grow
in five waves. Each of a job's tasks not yet created counts as pending, of the job's own class.

Pure: a job and its tasks in, a count out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from corral.domain.job import Job
from corral.domain.states import JobState
from corral.domain.task import Task


def not_yet_created(job: Job, tasks: Sequence[Task]) -> int:
    """How many tasks ``job`` still wants that it has not created (held back by the unstarted cap)."""
    if job.state is not JobState.ACCEPTED:  # killed or finished: it wants nothing more
        return 0
    batch = job.descriptor.batch
    if batch is not None:  # an index that ever had a task is not counted again (its retry is its own)
        return max(0, batch.size - len({t.index for t in tasks}))
    service = job.descriptor.service
    if service is None or not service.enabled:
        return 0
    return max(0, service.capacity.desired - sum(1 for t in tasks if t.is_live))


def old_enough(pending: Iterable[tuple[str, str, float]], after: float) -> tuple[set[str], int]:
    """Of the tasks pending for a reason more hosts could fix, as (task id, job id, seconds waited): the
    ones to size for — those that waited ``after`` seconds, and every other of a job that has one — and
    how many wait still (young, of jobs with none old enough)."""
    tasks = list(pending)
    old_jobs = {job for _task, job, waited in tasks if waited >= after}
    chosen = {task for task, job, _waited in tasks if job in old_jobs}
    return chosen, len(tasks) - len(chosen)
