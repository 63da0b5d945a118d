"""Which tasks a scale-down may move: those whose job's disruption budget would let them go, in time.

A host is a removal candidate only if every task on it may move. What the drain does later is decided by
``corral.disruption.relocation`` (make before break, a task at a time within the budget); here the
question is only whether the budget *blocks* — lets nothing move now and nothing is moving that would
free it: a closed window, a self-managed job, a relocation limit reached, or a policy at zero with
nothing in flight (the job is below its budget on its own). A budget that lets one task move at a time
does not block: the drain takes longer, that is all.

Pure: ``now`` is passed in.
"""

from __future__ import annotations

from collections.abc import Sequence

from corral.autoscale.model import Kept
from corral.disruption.budget import BudgetState, allowance, may_relocate
from corral.domain.job import Job
from corral.domain.readiness import is_ready
from corral.domain.states import JobType, TaskState
from corral.domain.task import Task


def blocker(job: Job, tasks: Sequence[Task], on_host: Sequence[Task], now: float) -> Kept | None:
    """Why ``on_host`` (some of ``job``'s ``tasks``) may not be moved for a scale-down now, or None."""
    for t in on_host:
        why = task_blocker(job, t)
        if why is not None:
            return why
    return job_blocker(job, tasks, now)


def task_blocker(job: Job, t: Task) -> Kept | None:
    """Why task ``t`` of ``job`` may not move, on its own account (moving already, its relocation limit)."""
    if t.relocating_to is not None or t.kill_reason is not None or t.state is TaskState.KILL_INITIATED:
        return Kept("moving", f"task {t.id} of job {job.id} is already moving or stopping")
    limit = may_relocate(t, job.descriptor.disruption_budget)
    if limit is not None:
        return Kept("budget", f"task {t.id} of job {job.id} may not move again: {limit}")
    return None


def job_blocker(job: Job, tasks: Sequence[Task], now: float) -> Kept | None:
    """Why no task of ``job`` (its ``tasks``) may move now by its budget, or None. It depends on the job
    alone: a caller weighing many hosts asks once per job (asked per task, a 5,000-task job cost 25
    million steps and froze the master's loop for seconds)."""
    budget = job.descriptor.disruption_budget
    live = [t for t in tasks if t.is_live]
    ready = 0
    for t in live:
        if t.state is TaskState.STARTED and is_ready(t, job.container_of(t.version).health):
            ready += 1
    in_flight = sum(1 for t in live if t.relocating_to is not None)
    if job.type is JobType.SERVICE:
        spec = job.descriptor.service
        desired = spec.capacity.desired if spec is not None and spec.enabled else 0
    else:
        desired = len(live)
    state = BudgetState(job.type, desired, ready, in_flight, job.disruptions)
    allowed = allowance(budget, state, now)
    if allowed.count > 0 or allowed.kind == "rate":  # a rate slows a drain down, it does not stop it
        return None
    if allowed.kind == "budget" and in_flight > 0:  # moves in flight free the budget up again
        return None
    return Kept("budget", f"job {job.id}: {allowed.reason}")
