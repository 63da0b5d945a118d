"""Work a job has asked for that has no task yet: the trial must size the fleet for it too.

A job creates at most ``max_unstarted_tasks_per_job`` tasks that have not started (issue 11's cap, which
keeps a 50,000-task burst from flooding the store); the rest are created as earlier ones start. A burst
of 5,000 tasks therefore shows only 1,000 pending at a time — sized on those alone, the fleet would grow
in five waves. Each of a job's tasks not yet created counts as pending, of the job's own class.

Pure: a job and its tasks in, a count out.
"""

from __future__ import annotations

from collections.abc import Sequence

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
