"""How jobs, tasks and hosts look on the wire: the domain record plus what the master derives."""

from __future__ import annotations

from collections import Counter
from typing import Any

from corral.control.master import Master
from corral.domain.codec import to_builtins
from corral.domain.host import Host
from corral.domain.job import Job
from corral.domain.states import TaskState
from corral.domain.task import Task


def job_view(master: Master, job: Job) -> dict[str, Any]:
    data: dict[str, Any] = to_builtins(job)
    data["type"] = job.type.value
    if job.id in master.state.jobs:
        counts = Counter(t.state.value for t in master.state.tasks_of(job.id) if t.is_live)
        data["task_counts"] = dict(sorted(counts.items()))
    return data


def task_view(master: Master, task: Task) -> dict[str, Any]:
    data: dict[str, Any] = to_builtins(task)
    if task.state is TaskState.ACCEPTED:
        pending = master.scheduler.explain(task.id)
        if pending is not None:
            data["pending"] = to_builtins(pending)
    return data


def host_view(master: Master, host: Host) -> dict[str, Any]:
    data: dict[str, Any] = to_builtins(host)
    data["allocated"] = to_builtins(master.state.allocated(host.id))
    data["free"] = to_builtins(master.state.free(host))
    data["tasks"] = len(master.state.tasks_on_host(host.id))
    data["schedulable"] = host.schedulable
    data["quarantined"] = host.quarantined
    data["images"] = sorted(master.state.host_images.get(host.id, ()))
    return data
