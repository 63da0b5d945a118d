"""Deadlines: when a live task has sat too long in its state, and what ends it."""

from __future__ import annotations

from dataclasses import dataclass

from corral.domain.job import Job
from corral.domain.states import FinishedReason, TaskState
from corral.domain.task import Task
from corral.jobs.actions import FinishTask, KillTask
from corral.jobs.config import JobManagerConfig


@dataclass(frozen=True, slots=True)
class Deadline:
    at: float
    action: KillTask | FinishTask


def deadline(job: Job, task: Task, config: JobManagerConfig) -> Deadline | None:
    """The next deadline of a live task, with the action due when it passes; None if it has none."""
    since = task.updated_at
    match task.state:
        case TaskState.LAUNCHED:
            limit = config.launched_timeout_s
            return Deadline(since + limit, _stuck(task, limit))
        case TaskState.START_INITIATED:
            limit = config.start_initiated_timeout_s
            return Deadline(since + limit, _stuck(task, limit))
        case TaskState.KILL_INITIATED:
            limit = job.descriptor.container.kill_grace_period_s + config.kill_initiated_extra_s
            reason = task.kill_reason or FinishedReason.KILLED
            detail = f"the agent did not confirm the kill within {limit:g}s"
            return Deadline(since + limit, FinishTask(task.id, reason, detail))
        case TaskState.DISCONNECTED:
            limit = config.lost_after_s
            if task.kill_reason is not None:
                detail = f"host unreachable for {limit:g}s while being killed"
                return Deadline(since + limit, FinishTask(task.id, task.kill_reason, detail))
            detail = f"host {task.host_id} unreachable for {limit:g}s"
            return Deadline(since + limit, FinishTask(task.id, FinishedReason.LOST, detail))
        case TaskState.STARTED:
            batch = job.descriptor.batch
            if batch is None or batch.runtime_limit_s is None or task.started_at is None:
                return None
            detail = f"ran longer than the runtime limit of {batch.runtime_limit_s}s"
            kill = KillTask(task.id, FinishedReason.RUNTIME_LIMIT_EXCEEDED, detail)
            return Deadline(task.started_at + batch.runtime_limit_s, kill)
        case _:
            return None


def _stuck(task: Task, limit: float) -> FinishTask:
    detail = f"stuck in {task.state} for {limit:g}s"
    return FinishTask(task.id, FinishedReason.STUCK_IN_STATE, detail)
