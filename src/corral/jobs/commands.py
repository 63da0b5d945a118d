"""What a user can ask of an accepted job, as pure functions from the job to the job that results.

Each raises ConflictError (stable code) when the job's type or state does not allow the request.
"""

from __future__ import annotations

from dataclasses import replace

from corral.domain.errors import ConflictError
from corral.domain.job import Capacity, Job, JobEvent, ServiceSpec
from corral.domain.states import FinishedReason, JobState
from corral.domain.task import Task
from corral.domain.validation import validate_capacity
from corral.jobs.task_machine import KillRequested


def kill_job(job: Job, now: float, detail: str = "killed by user") -> Job:
    _require_active(job)
    if job.state is JobState.KILL_INITIATED:
        return job
    return _record(replace(job, state=JobState.KILL_INITIATED, reason_detail=detail), now, detail)


def finish_job(job: Job, reason: FinishedReason, detail: str, now: float) -> Job:
    done = replace(job, state=JobState.FINISHED, finished_at=now, reason=reason, reason_detail=detail)
    return _record(done, now, f"{reason}: {detail}" if detail else str(reason))


def _by(who: str) -> str:
    """`` by alice`` for the history, when the caller is known."""
    return f" by {who}" if who else ""


def resize(job: Job, capacity: Capacity, now: float, by: str = "") -> Job:
    spec = _service_spec(job, "resize")
    validate_capacity(capacity, "capacity")
    message = f"resized to min {capacity.min} / desired {capacity.desired} / max {capacity.max}{_by(by)}"
    return _with_service(job, replace(spec, capacity=capacity), now, message)


def set_enabled(job: Job, enabled: bool, now: float, by: str = "") -> Job:
    spec = _service_spec(job, "enable or disable")
    if spec.enabled == enabled:
        return job
    message = ("enabled" if enabled else "disabled") + _by(by)
    return _with_service(job, replace(spec, enabled=enabled), now, message)


def kill_task(job: Job, task: Task, shrink: bool, now: float, by: str = "") -> tuple[Job, KillRequested]:
    """The job after a user kills ``task`` (smaller by one if ``shrink``), and the kill to apply to it.

    A killed task is replaced (service) or its index run again (batch) unless the job shrinks.
    """
    _require_active(job)
    if task.is_finished:
        raise ConflictError("task_finished", f"task {task.id} has already finished")
    if task.kill_reason is not None:
        raise ConflictError("task_being_killed", f"task {task.id} is already being killed")
    who = by or "user"
    kill = KillRequested(FinishedReason.KILLED, now, f"killed by {who}" + (" (shrink)" if shrink else ""))
    if not shrink:
        return job, kill
    spec = _service_spec(job, "shrink")
    c = spec.capacity
    if c.desired - 1 < c.min:
        raise ConflictError(
            "below_min_capacity", f"shrinking would take desired {c.desired} below min {c.min}", "shrink"
        )
    smaller = replace(c, desired=c.desired - 1)
    message = f"task {task.id} killed, shrunk{_by(by)}"
    return _with_service(job, replace(spec, capacity=smaller), now, message), kill


def _require_active(job: Job) -> None:
    if job.state is JobState.FINISHED:
        raise ConflictError("job_finished", f"job {job.id} has already finished")


def _service_spec(job: Job, what: str) -> ServiceSpec:
    _require_active(job)
    if job.state is JobState.KILL_INITIATED:
        raise ConflictError("job_being_killed", f"job {job.id} is being killed")
    if job.descriptor.service is None:
        raise ConflictError("not_a_service_job", f"only service jobs can {what}; {job.id} is a batch job")
    return job.descriptor.service


def _with_service(job: Job, spec: ServiceSpec, now: float, message: str) -> Job:
    descriptor = replace(job.descriptor, service=spec)
    return _record(replace(job, descriptor=descriptor), now, message)


def record(job: Job, now: float, message: str) -> Job:
    """``job`` with a line of history saying ``message``."""
    return _record(job, now, message)


def _record(job: Job, now: float, message: str) -> Job:
    return replace(job, updated_at=now, history=(*job.history, JobEvent(now, job.state, message)))
