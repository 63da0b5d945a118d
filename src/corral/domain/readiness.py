"""When a task may be counted on: what rollouts, disruption budgets and drains wait for.

A task is ready when it runs (Started, no kill asked for), its liveness probe has not failed, and its
readiness probe has passed — or, for a job without a readiness probe, from the moment it started. A task
that never becomes ready counts as unhealthy.
"""

from __future__ import annotations

from corral.domain.health import HealthChecks, HealthStatus
from corral.domain.states import TaskState
from corral.domain.task import Task


def ready_since(task: Task, checks: HealthChecks | None) -> float | None:
    """Since when ``task`` has been ready without a break, or None when it is not ready now."""
    if task.state is not TaskState.STARTED or task.kill_reason is not None:
        return None
    probes = task.probes
    if probes is not None and probes.live is HealthStatus.UNHEALTHY:
        return None
    if checks is None or checks.readiness is None:
        return task.started_at
    return task.ready_since


def is_ready(task: Task, checks: HealthChecks | None) -> bool:
    return ready_since(task, checks) is not None


def healthy_for(task: Task, checks: HealthChecks | None, now: float) -> float:
    """How long ``task`` has been ready (0 when it is not)."""
    since = ready_since(task, checks)
    return 0.0 if since is None else max(0.0, now - since)
