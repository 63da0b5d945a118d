"""Domain records for store and control tests: real dataclasses with only the fields a test cares about.

Shared by tests/store and tests/control (import ``tests.store.factories``).
"""

from __future__ import annotations

from corral.domain.job import (
    BatchSpec,
    Capacity,
    Container,
    ContainerResources,
    Image,
    Job,
    JobDescriptor,
    JobGroup,
    Owner,
    ServiceSpec,
)
from corral.domain.states import FinishedReason, JobState, TaskState
from corral.domain.task import Task


def make_job(
    job_id: str,
    *,
    owner: str = "team@example.com",
    application: str = "app",
    capacity_group: str = "default",
    labels: dict[str, str] | None = None,
    service: bool = False,
    state: JobState = JobState.ACCEPTED,
    created_at: float = 0.0,
    finished_at: float | None = None,
    group: JobGroup | None = None,
    cpu: float = 1.0,
    memory_mb: int = 512,
) -> Job:
    descriptor = JobDescriptor(
        owner=Owner(owner),
        application=application,
        container=Container(Image("busybox", "latest"), resources=ContainerResources(cpu, memory_mb)),
        capacity_group=capacity_group,
        job_group=group,
        labels=dict(labels or {}),
        batch=None if service else BatchSpec(size=2),
        service=ServiceSpec(Capacity(0, 2, 4)) if service else None,
    )
    if state is JobState.FINISHED and finished_at is None:
        finished_at = created_at
    return Job(
        job_id,
        descriptor,
        state=state,
        created_at=created_at,
        updated_at=created_at,
        finished_at=finished_at,
        reason=FinishedReason.NORMAL if state is JobState.FINISHED else None,
    )


def make_task(
    task_id: str,
    job_id: str,
    *,
    index: int | None = 0,
    state: TaskState = TaskState.ACCEPTED,
    host_id: str | None = None,
    ports: tuple[int, ...] = (),
    created_at: float = 0.0,
    finished_at: float | None = None,
    resubmit_of: str | None = None,
    attempt: int = 0,
    reason: FinishedReason | None = None,
) -> Task:
    if state is TaskState.FINISHED:
        finished_at = created_at if finished_at is None else finished_at
        reason = reason or FinishedReason.NORMAL
    return Task(
        task_id,
        job_id,
        index,
        state=state,
        created_at=created_at,
        updated_at=created_at,
        host_id=host_id,
        ports=ports,
        finished_at=finished_at,
        resubmit_of=resubmit_of,
        attempt=attempt,
        reason=reason,
    )
