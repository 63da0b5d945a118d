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
from corral.domain.resources import ZERO
from corral.domain.states import TaskState
from corral.domain.task import Task
from corral.scheduler import Pending


def job_view(state: ClusterState, job: Job) -> dict[str, Any]:
    data: dict[str, Any] = to_builtins(job)
    data["type"] = job.type.value
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
