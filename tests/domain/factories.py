"""Builders for domain values in unit tests: a valid value by default, any field overridden by keyword."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from corral.domain.job import (
    BatchSpec,
    Capacity,
    Container,
    ContainerResources,
    Image,
    Job,
    JobDescriptor,
    Owner,
    RetryKind,
    RetryPolicy,
    ServiceSpec,
)
from corral.domain.states import FinishedReason, TaskState
from corral.domain.task import Task

IMMEDIATE = RetryPolicy(RetryKind.IMMEDIATE, retries=0)


def container(**changes: Any) -> Container:
    return replace(Container(Image("corral/busybox", tag="1.36")), **changes)


def resources(**changes: Any) -> ContainerResources:
    return replace(ContainerResources(), **changes)


def descriptor(**changes: Any) -> JobDescriptor:
    """A valid batch descriptor of size 1."""
    base = JobDescriptor(
        owner=Owner("team@example.com"), application="app", container=container(), batch=BatchSpec()
    )
    return replace(base, **changes)


def batch_job(
    size: int = 1,
    retry: RetryPolicy = IMMEDIATE,
    runtime_limit_s: int | None = None,
    retry_on_runtime_limit: bool = False,
    job_id: str = "j1",
    **container_changes: Any,
) -> Job:
    spec = BatchSpec(size, runtime_limit_s, retry, retry_on_runtime_limit)
    return Job(job_id, descriptor(batch=spec, container=container(**container_changes)))


def service_job(
    desired: int = 1,
    min: int = 0,
    max: int = 10,
    enabled: bool = True,
    retry: RetryPolicy | None = None,
    job_id: str = "j1",
) -> Job:
    spec = ServiceSpec(Capacity(min, desired, max), enabled)
    if retry is not None:
        spec = replace(spec, retry_policy=retry)
    return Job(job_id, descriptor(batch=None, service=spec))


def task(
    task_id: str = "t1",
    state: TaskState = TaskState.ACCEPTED,
    index: int | None = 0,
    job_id: str = "j1",
    **changes: Any,
) -> Task:
    """A task in ``state``; on-host states get a host, Started gets ``started_at``."""
    defaults: dict[str, Any] = {}
    if state is not TaskState.ACCEPTED:
        defaults["host_id"] = "h1"
    if state is TaskState.STARTED:
        defaults["started_at"] = changes.get("updated_at", 0.0)
    if state is TaskState.FINISHED:
        defaults["reason"] = FinishedReason.NORMAL
        defaults["finished_at"] = changes.get("updated_at", 0.0)
    return Task(task_id, job_id, index, state=state, **{**defaults, **changes})


def finished(task_id: str, reason: FinishedReason, at: float, index: int | None = 0, **changes: Any) -> Task:
    return task(task_id, TaskState.FINISHED, index, reason=reason, finished_at=at, updated_at=at, **changes)
