"""How jobs, tasks, hosts and capacity groups look to a caller: the record plus what the leader derives
(live task counts, why a task waits, what a host holds, a job set aside)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from corral.control.state import ClusterState
from corral.domain.capacity import CapacityGroup
from corral.domain.codec import to_builtins
from corral.domain.host import Host
from corral.domain.job import Job
from corral.domain.readiness import healthy_for, is_ready, ready_since
from corral.domain.resources import ZERO
from corral.domain.states import TaskState
from corral.domain.task import Task
from corral.jobs.service import active_tasks
from corral.jobs.update import desired_by_version, progress
from corral.jobs.versions import strategy_of, versions_of
from corral.scheduler import Pending


def job_view(state: ClusterState, job: Job) -> dict[str, Any]:
    data: dict[str, Any] = to_builtins(job)
    data["type"] = job.type.value
    data.pop("versions", None)  # their containers are many: /jobs/{id}/versions lists them
    data.pop("disruptions", None)
    if job.id in state.jobs:
        counts = Counter(t.state.value for t in state.tasks_of(job.id) if t.is_live)
        data["task_counts"] = dict(sorted(counts.items()))
    aside = state.set_aside.get(job.id)
    if aside is not None:
        data["set_aside"] = to_builtins(aside) | {"alert_id": aside.alert_id}
    return data


def pending_view(state: ClusterState, task: Task, explained: Pending | None) -> dict[str, Any] | None:
    """Why a task waits: its job set aside, or the scheduler's explanation (None: not explained yet)."""
    aside = state.set_aside.get(task.job_id)
    if aside is not None:
        return {
            "task_id": task.id,
            "reason": "set_aside",
            "message": f"{aside.message}; an operator retries it with `corral admin resolve {aside.alert_id} "
            "--retry`",
            "rejections": {},
            "hosts": 0,
        }
    return to_builtins(explained) if explained is not None else None


def task_view(state: ClusterState, task: Task, explained: Pending | None) -> dict[str, Any]:
    data: dict[str, Any] = to_builtins(task)
    data["health"] = task.health.value
    job = state.jobs.get(task.job_id)
    if job is not None:
        data["ready"] = is_ready(task, job.container_of(task.version).health)
    if task.state is TaskState.ACCEPTED:
        pending = pending_view(state, task, explained)
        if pending is not None:
            data["pending"] = pending
    return data


def host_view(state: ClusterState, host: Host) -> dict[str, Any]:
    data: dict[str, Any] = to_builtins(host)
    data["allocated"] = to_builtins(state.allocated(host.id))
    data["free"] = to_builtins(state.free(host))
    data["tasks"] = len(state.tasks_on_host(host.id))
    data["schedulable"] = host.schedulable
    data["quarantined"] = host.quarantined
    data["images"] = sorted(state.host_images.get(host.id, ()))
    return data


def group_view(state: ClusterState, group: CapacityGroup) -> dict[str, Any]:
    data: dict[str, Any] = to_builtins(group)
    data["usage"] = to_builtins(state.group_usage().get(group.name, ZERO))
    return data


def versions_view(job: Job) -> list[dict[str, Any]]:
    """A job's versions, newest first: number, when, who, why, outcome, and the image each ran."""
    out = []
    for v in reversed(versions_of(job)):
        row: dict[str, Any] = to_builtins(v)
        row["image"] = v.container.image.reference
        row["current"] = v.number == job.version
        out.append(row)
    return out


def rollout_view(job: Job, tasks: list[Task], now: float) -> dict[str, Any]:
    """The rollout as it stands: per version desired/placed/ready/healthy, and what it waits for."""
    data: dict[str, Any] = {"job_id": job.id, "version": job.version}
    rollout = job.rollout
    data["rollout"] = to_builtins(rollout) if rollout is not None else None
    spec = job.descriptor.service
    desired = (spec.capacity.desired if spec.enabled else 0) if spec is not None else 0
    active = active_tasks(tasks)
    wanted = desired_by_version(job, desired)
    min_healthy = strategy_of(job).rolling.min_healthy_s
    per_version: dict[int, dict[str, int]] = {
        n: {"desired": count, "tasks": 0, "placed": 0, "ready": 0, "healthy": 0}
        for n, count in wanted.items()
    }
    for t in active:
        row = per_version.setdefault(
            t.version, {"desired": 0, "tasks": 0, "placed": 0, "ready": 0, "healthy": 0}
        )
        checks = job.container_of(t.version).health
        row["tasks"] += 1
        row["placed"] += t.on_host
        row["ready"] += is_ready(t, checks)
        row["healthy"] += ready_since(t, checks) is not None and healthy_for(t, checks, now) >= min_healthy
    data["versions"] = [{"version": n, **per_version[n]} for n in sorted(per_version)]
    data["desired"] = desired
    if rollout is not None and rollout.phase.active:
        p = progress(job, active, desired, now)
        data["healthy"] = p.new_healthy
        data["waiting_for"] = p.waiting_for
        data["deadline_at"] = p.deadline_at
    elif rollout is not None:
        data["waiting_for"] = f"nothing: {rollout.phase.value}" + (
            f" ({rollout.detail})" if rollout.detail else ""
        )
    else:
        data["waiting_for"] = "nothing: no update yet"
    return data
