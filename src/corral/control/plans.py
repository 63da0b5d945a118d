"""Dry runs and second looks, from the leader's state as it is now: ``corral job plan`` (where a job's tasks
would go if it were submitted, and what would make the rest fit) and the ranking behind ``corral why`` for
a placed task (its host against the best others, scorer by scorer).

It builds the pure inputs (``autoscale.whatif``, ``scheduler.ranking``) and changes nothing: the cluster is
forked, the planned job is a value in memory whose class is derived as ``JobClasses`` derives a stored
job's, and nothing is stored, placed or sent.
"""

from __future__ import annotations

import logging
from typing import Any

from corral.autoscale.whatif import Running, plan_job
from corral.control.admission import demand
from corral.control.classes import JobClasses, class_key
from corral.control.state import ClusterState
from corral.domain.capacity import DEFAULT_GROUP, CapacityGroup, default_group
from corral.domain.codec import to_builtins
from corral.domain.job import Job, JobDescriptor
from corral.domain.task import Task
from corral.scheduler import JobClass, Mode, PendingTask, Profile, Snapshot
from corral.scheduler.ranking import rank

log = logging.getLogger(__name__)

View = dict[str, Any]
PLAN_JOB = "(plan)"  # the planned job's id: no stored job has one like it
RANKING_NOTE = (
    "scored as of now, with this task's own footprint released from its host: the cluster has changed "
    "since the task was placed, so this order may differ from the one that chose its host"
)


def plan_view(
    state: ClusterState, profile: Profile, descriptor: JobDescriptor, now: float, *, team: str = ""
) -> View:
    """Where a validated descriptor's tasks would go now, and what would make the rest fit."""
    count = demand(descriptor)
    jobs, queued = _queue(state)  # before the fork: a class of the queue may give the live cluster a code
    cluster = state.cluster.fork()  # the planned job's security groups get their code on the fork only
    job = Job(PLAN_JOB, descriptor, created_at=now, updated_at=now, team=team)
    cls = JobClasses(cluster).of(job)
    snapshot = Snapshot(now, cluster, jobs, queued, dict(state.groups), state.group_usage())
    host_groups = sorted(state.host_groups.values(), key=lambda g: g.name)
    running = _running(state)
    services = {r.job_id for r in running if state.jobs[r.job_id].descriptor.service is not None}
    result = plan_job(
        snapshot, cls, count, profile, host_groups=host_groups, running=running, services=services
    )
    group = _group(state, descriptor.capacity_group)
    view: View = {
        "job": {
            "type": descriptor.type.value,
            "tasks": count,
            "capacity_group": group.name,
            "tier": group.tier.value,
            "mode": profile.modes.get(group.tier, Mode.PACK).value,
        },
        **to_builtins(result),
        "notes": _notes(state, descriptor, len(queued)),
    }
    return view


def ranking_view(state: ClusterState, profile: Profile, task: Task, top: int = 5) -> View | None:
    """The task's host and the ``top`` best others for it now, with each scorer's contribution (None when
    the task is not on a host, or its job is gone)."""
    job = state.jobs.get(task.job_id)
    if job is None or task.host_id is None or not task.on_host:
        return None
    try:
        cls = state.classes.of(job, task.version)
    except Exception as e:  # a job whose class cannot be derived is the scheduler's to set aside
        log.warning("no ranking for task %s: its job's class cannot be derived (%s)", task.id, e)
        return None
    group = _group(state, cls.group)
    weights = profile.for_tier(group.tier)
    charged = task.host_id in state.cluster.index  # a host not registered yet holds nothing in the arrays
    footprint = cls.footprint(task.ports, task.interface, task.address) if charged else None
    ranking = rank(state.cluster, cls, weights, task.host_id, footprint, top)
    view: View = to_builtins(ranking)
    view["mode"] = profile.modes.get(group.tier, Mode.PACK).value
    view["note"] = RANKING_NOTE
    return view


def _group(state: ClusterState, name: str) -> CapacityGroup:
    """The capacity group the queue puts a job of group ``name`` in (unknown: the default one)."""
    return state.groups.get(name) or state.groups.get(DEFAULT_GROUP) or default_group()


def _queue(state: ClusterState) -> tuple[dict[str, JobClass], list[PendingTask]]:
    """The tasks already waiting, as the scheduler shell describes them (a job whose class cannot be
    derived is left out here: setting it aside is the scheduler's business, not a dry run's)."""
    jobs: dict[str, JobClass] = {}
    broken: set[str] = set()
    tasks: list[PendingTask] = []
    for task in state.pending_tasks():
        job = state.jobs.get(task.job_id)
        if job is None or job.id in state.set_aside or job.id in broken:
            continue
        key = job.id if task.version == job.version else class_key(job.id, task.version)
        if key not in jobs:
            try:
                jobs[key] = state.classes.of(job, task.version)
            except Exception:
                broken.add(job.id)
                continue
        tasks.append(PendingTask(task.id, key, task.ready_at, (task.created_at, task.index or 0)))
    return jobs, tasks


def _running(state: ClusterState) -> list[Running]:
    """Every task holding room on a registered host, with the footprint it holds there."""
    out: list[Running] = []
    index = state.cluster.index
    for task in state.tasks.values():
        if not task.on_host or task.host_id is None or task.host_id not in index:
            continue
        job = state.jobs.get(task.job_id)
        if job is None:
            continue
        try:
            cls = state.classes.of(job, task.version)
        except Exception:
            continue
        footprint = cls.footprint(task.ports, task.interface, task.address)
        out.append(Running(task.id, task.job_id, task.host_id, footprint))
    return out


def _notes(state: ClusterState, d: JobDescriptor, queued: int) -> list[str]:
    notes = ["a dry run: nothing was stored or placed, and the cluster changes from moment to moment"]
    if d.service is not None and not d.service.enabled:
        notes.append("the service is disabled: it runs no task until enabled (planned as if enabled)")
    key = d.job_group_key
    other = state.job_with_group(key) if key is not None else None
    if other is not None:
        notes.append(f"a submission would be refused: active job {other} already has job group {key!r}")
    if queued:
        notes.append(f"{queued} task(s) of other jobs already wait: planned with them, in queue order")
    return notes
