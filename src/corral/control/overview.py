"""The whole cluster at a glance, from the leader's state: the fleet's health and allocation, the queue
(with the Titus dashboard's buckets: tasks waiting for a host longer than 1, 5, 10 and 15 minutes), and
the busiest jobs. ``/api/v1/overview`` serves it to ``corral top`` and the web console; ``/metrics``
exports the same figures as gauges.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from corral.control.state import ClusterState
from corral.domain.host import Host
from corral.domain.job import Job
from corral.domain.states import HostState, JobState, TaskState

PENDING_BUCKETS_S = (60, 300, 600, 900)
RESOURCES = (  # field of Resources, name in metrics and views
    ("cpu", "cpu"),
    ("memory_mb", "memory"),
    ("disk_mb", "disk"),
    ("network_mbps", "network"),
    ("gpu", "gpu"),
)


def health_of(host: Host) -> str:
    """One word for an operator: unreachable, unhealthy, quarantined, draining (or disabled) or healthy."""
    if host.state is HostState.UNREACHABLE:
        return "unreachable"
    if not host.healthy:
        return "unhealthy"
    if host.quarantined:
        return "quarantined"
    if host.draining or host.cordoned or not host.enabled:
        return "draining"
    return "healthy"


@dataclass(frozen=True, slots=True)
class Allocation:
    capacity: float  # of reachable hosts
    allocated: float


@dataclass(frozen=True, slots=True)
class Queue:
    pending: int  # Accepted tasks: waiting for a host, or for their retry delay
    waiting_retry: int  # of those, not ready yet (backing off)
    oldest_s: float  # the longest a ready task has waited
    longer_than: dict[str, int]  # "60", "300", "600", "900" -> ready tasks waiting longer
    by_group: dict[str, int]  # capacity group -> pending


@dataclass(frozen=True, slots=True)
class BusyJob:
    job_id: str
    application: str
    type: str
    capacity_group: str
    running: int  # placed and not finished
    pending: int
    cpu: float  # held by its placed tasks
    memory_mb: int


@dataclass(frozen=True, slots=True)
class Overview:
    at: float
    hosts: dict[str, int]  # health -> count
    resources: dict[str, Allocation]
    tasks: dict[str, int]  # state -> count
    jobs: dict[str, int]  # "batch" / "service" -> active jobs
    queue: Queue
    busiest: list[BusyJob] = field(default_factory=list)


def pending_ages(state: ClusterState, now: float) -> tuple[list[float], int]:
    """How long each ready pending task has waited, and how many wait for a retry delay instead."""
    ages, later = [], 0
    for task in state.pending_tasks():
        if task.ready_at > now:
            later += 1
        else:
            ages.append(now - max(task.created_at, task.ready_at))
    return ages, later


def allocation(state: ClusterState) -> dict[str, Allocation]:
    reachable = [h for h in state.hosts.values() if h.state is HostState.READY]
    held = [state.allocated(h.id) for h in reachable]
    return {
        name: Allocation(
            float(sum(getattr(h.resources, attr) for h in reachable)),
            float(sum(getattr(a, attr) for a in held)),
        )
        for attr, name in RESOURCES
    }


def overview(
    state: ClusterState, now: float, top: int = 10, visible: Callable[[Job], bool] | None = None
) -> Overview:
    """The cluster at a glance. ``visible``: which jobs the caller may see by id (the busiest list names
    jobs; the counts are the fleet's and name none)."""
    ages, later = pending_ages(state, now)
    by_group: Counter[str] = Counter()
    running: Counter[str] = Counter()
    pending: Counter[str] = Counter()
    task_states: Counter[str] = Counter()
    for task in state.tasks.values():
        task_states[task.state.value] += 1
        if task.state is TaskState.ACCEPTED:
            pending[task.job_id] += 1
        elif task.host_id is not None and task.state is not TaskState.FINISHED:
            running[task.job_id] += 1
    busiest = []
    candidates = {*running, *pending}
    if visible is not None:
        candidates = {j for j in candidates if visible(state.jobs[j])}
    for job_id in sorted(candidates, key=lambda j: (-running[j], -pending[j], j))[:top]:
        job = state.jobs[job_id]
        asks = job.descriptor.container.resources
        busiest.append(
            BusyJob(
                job_id,
                job.descriptor.application,
                job.type.value,
                job.descriptor.capacity_group,
                running[job_id],
                pending[job_id],
                asks.cpu * running[job_id],
                asks.memory_mb * running[job_id],
            )
        )
    for job_id, count in pending.items():
        by_group[state.jobs[job_id].descriptor.capacity_group] += count
    return Overview(
        at=now,
        hosts=dict(sorted(Counter(health_of(h) for h in state.hosts.values()).items())),
        resources=allocation(state),
        tasks=dict(sorted(task_states.items())),
        jobs=dict(
            sorted(
                Counter(j.type.value for j in state.jobs.values() if j.state is not JobState.FINISHED).items()
            )
        ),
        queue=Queue(
            pending=state.pending_count,
            waiting_retry=later,
            oldest_s=max(ages, default=0.0),
            longer_than={str(t): sum(1 for a in ages if a > t) for t in PENDING_BUCKETS_S},
            by_group=dict(sorted(by_group.items())),
        ),
        busiest=busiest,
    )
