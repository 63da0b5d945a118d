"""The service reconciler during a rollout: replace old-version tasks within the update strategy.

Canaries of the new version come first, beside the old tasks, and wait for a promotion (by hand, or
automatically once healthy for ``min_healthy_s``). Then the rest rolls, Kubernetes' way: new tasks are
created while the job has fewer than ``desired + max_surge``, and old ones are stopped while at least
``desired - max_unavailable`` stay available — ready, and for a new task ready for ``min_healthy_s`` — and
unready old tasks go first, since stopping them takes nothing away. A new-version task that fails, or is
unhealthy, or a rollout that makes no progress for ``progress_deadline_s``, fails the version: it is reverted
to the last healthy one (``auto_revert``) or left for an operator.

Level-triggered like the rest: the answer depends only on the job and its tasks now, so a new leader that
loads them mid-rollout carries on from there, replacing nothing twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from corral.domain.health import HealthChecks, HealthStatus
from corral.domain.job import Job, ServiceSpec
from corral.domain.policies import resolve
from corral.domain.readiness import is_ready, ready_since
from corral.domain.rollout import RollingUpdate, RolloutPhase
from corral.domain.states import FinishedReason, TaskState
from corral.domain.task import Task
from corral.jobs import versions
from corral.jobs.actions import Action, ChangeJob, CreateTask, FinishTask, KillTask

# Endings that say nothing against the version a task ran.
NOT_THE_VERSIONS_FAULT = frozenset(
    {
        FinishedReason.NORMAL,
        FinishedReason.KILLED,
        FinishedReason.SCALED_DOWN,
        FinishedReason.EVICTED,
        FinishedReason.RELOCATED,
    }
)
Create = Callable[[int, int], list[CreateTask]]  # (count, version) -> the creations, replacing orphans first


@dataclass(frozen=True, slots=True)
class Progress:
    """A rollout as it stands: counts per side and what it waits for."""

    desired: int
    new: int
    new_ready: int
    new_healthy: int  # ready for min_healthy_s
    old: int
    old_ready: int
    waiting_for: str
    deadline_at: float | None  # when it fails for want of progress (None: not waiting on progress)
    wake_at: float | None  # the next time the answer changes by time alone


def checks_of(job: Job) -> Callable[[Task], HealthChecks | None]:
    return lambda task: job.container_of(task.version).health


def desired_by_version(job: Job, desired: int) -> dict[int, int]:
    """How many tasks of each version the job wants now: the canaries beside the old version while they wait,
    else all of its current version."""
    rollout = job.rollout
    if rollout is None or rollout.phase is not RolloutPhase.CANARY:
        return {job.version: desired}
    canaries = min(versions.strategy_of(job).rolling.canaries, max(desired, 1))
    return {rollout.from_version: desired, rollout.to_version: canaries}


def progress(job: Job, active: Sequence[Task], desired: int, now: float) -> Progress:
    rollout = job.rollout
    assert rollout is not None
    rolling = versions.strategy_of(job).rolling
    checks = checks_of(job)
    new = [t for t in active if t.version == rollout.to_version]
    old = [t for t in active if t.version != rollout.to_version]
    since = [ready_since(t, checks(t)) for t in new]
    healthy_at = [s + rolling.min_healthy_s for s in since if s is not None]
    new_healthy = sum(1 for at in healthy_at if at <= now)
    upcoming = [at for at in healthy_at if at > now]
    last = max([rollout.started_at, rollout.progress_at, *(at for at in healthy_at if at <= now)])
    canary = rollout.phase is RolloutPhase.CANARY
    target = min(rolling.canaries, max(desired, 1)) if canary else desired
    if new_healthy >= target and canary and not rolling.auto_promote:
        waiting, deadline = f"promotion: {new_healthy} canaries healthy (corral job promote {job.id})", None
    elif new_healthy >= target and (canary or not old):
        waiting, deadline = "nothing: complete", None
    else:
        deadline = last + rolling.progress_deadline_s
        unready = len(new) - sum(1 for s in since if s is not None)
        if canary:
            waiting = f"canaries: {new_healthy} of {target} healthy for {rolling.min_healthy_s:g}s"
        elif unready:
            waiting = f"{unready} new tasks to become ready"
        else:
            waiting = f"{desired - new_healthy} more new tasks healthy for {rolling.min_healthy_s:g}s"
    wake = [*upcoming, *([deadline] if deadline is not None else [])]
    return Progress(
        desired,
        len(new),
        sum(1 for s in since if s is not None),
        new_healthy,
        len(old),
        sum(1 for t in old if is_ready(t, checks(t))),
        waiting,
        deadline,
        min(wake, default=None),
    )


def reconcile_rollout(
    job: Job,
    spec: ServiceSpec,
    tasks: Sequence[Task],
    active: list[Task],
    desired: int,
    now: float,
    create: Create,
) -> tuple[list[Action], float | None]:
    rollout = job.rollout
    assert rollout is not None
    rolling = versions.strategy_of(job).rolling
    state = progress(job, active, desired, now)
    failure = _failure(job, tasks, now, state)
    if failure is not None:
        if rolling.auto_revert and rollout.revert_of is None:
            return [ChangeJob(versions.revert(job, failure, now), failure)], None
        return [ChangeJob(versions.stop(job, failure, now), failure)], None
    new = [t for t in active if t.version == rollout.to_version]
    old = [t for t in active if t.version != rollout.to_version]
    if rollout.phase is RolloutPhase.CANARY:
        return _canaries(job, rolling, new, old, desired, state, now, create), state.wake_at
    if not old and state.new_healthy >= desired:
        actions: list[Action] = _scale_down(new, len(new) - desired, f"scaled down to {desired}")
        return [*actions, ChangeJob(versions.succeed(job, now))], None
    return _roll(job, rolling, new, old, desired, state, now, create), state.wake_at


def _canaries(
    job: Job,
    rolling: RollingUpdate,
    new: list[Task],
    old: list[Task],
    desired: int,
    state: Progress,
    now: float,
    create: Create,
) -> list[Action]:
    rollout = job.rollout
    assert rollout is not None
    target = min(rolling.canaries, max(desired, 1))
    actions: list[Action] = []
    if len(new) < target:
        actions.extend(create(target - len(new), rollout.to_version))
    actions.extend(_scale_down(new, len(new) - target, "more canaries than asked for"))
    # The old version keeps the service at desired meanwhile: its failed tasks are replaced by old ones.
    if len(old) < desired:
        actions.extend(create(desired - len(old), rollout.from_version))
    actions.extend(_scale_down(old, len(old) - desired, f"scaled down to {desired}"))
    if state.new_healthy >= target and rolling.auto_promote:
        promoted = versions.promote(job, now, "auto-promote")
        actions.append(ChangeJob(promoted, "canaries healthy: promoted automatically"))
    return actions


def _roll(
    job: Job,
    rolling: RollingUpdate,
    new: list[Task],
    old: list[Task],
    desired: int,
    state: Progress,
    now: float,
    create: Create,
) -> list[Action]:
    rollout = job.rollout
    assert rollout is not None
    surge = resolve(rolling.max_surge, desired, round_up=True)
    unavailable = resolve(rolling.max_unavailable, desired, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1  # (validation refuses it; a stored job from elsewhere still rolls, one at a time)
    total = len(new) + len(old)
    actions: list[Action] = []
    grow = min(desired + surge - total, desired - len(new))
    if grow > 0:
        actions.extend(create(grow, rollout.to_version))
    min_available = desired - unavailable
    checks = checks_of(job)
    max_down = total - min_available - (state.new - state.new_healthy)
    unready = [t for t in old if not is_ready(t, checks(t))]
    ready = [t for t in old if is_ready(t, checks(t))]
    down = unready[: max(0, max_down)]
    available = state.old_ready + state.new_healthy
    more = min(max_down - len(down), available - min_available, len(ready))
    # The newest old tasks go first (the oldest have proved themselves longest).
    down += sorted(ready, key=lambda t: (-t.created_at, t.id))[: max(0, more)]
    detail = f"replaced by version {rollout.to_version}"
    actions.extend(_stop(t, detail) for t in down)
    return actions


def _failure(job: Job, tasks: Sequence[Task], now: float, state: Progress) -> str | None:
    rollout = job.rollout
    assert rollout is not None
    failed = task_failure(tasks, rollout.started_at, rollout.to_version)
    if failed is not None:
        return failed
    if state.deadline_at is not None and now >= state.deadline_at:
        waited = now - (state.deadline_at - versions.strategy_of(job).rolling.progress_deadline_s)
        return f"no progress for {waited:.0f}s (progress_deadline_s), waiting for {state.waiting_for}"
    return None


def task_failure(tasks: Sequence[Task], since: float, version: int | None = None) -> str | None:
    """The first task (of ``version``, if given) that ended by its own fault since ``since``, or is
    unhealthy now, in words; None when there is none."""
    for task in tasks:
        if version is not None and task.version != version:
            continue
        label = f"task {task.id}" + (f" of version {version}" if version is not None else "")
        if task.is_finished:
            reason = task.reason or FinishedReason.UNKNOWN_SYSTEM_ERROR
            recent = (task.finished_at or 0.0) >= since
            if recent and reason not in NOT_THE_VERSIONS_FAULT and not reason.is_system_error:
                return f"{label} ended {reason.value}: {task.reason_detail}"
        elif task.kill_reason is None and task.probes is not None and task.health is HealthStatus.UNHEALTHY:
            return f"{label} is unhealthy: {task.probes.detail}"
    return None


def _scale_down(tasks: list[Task], count: int, detail: str) -> list[Action]:
    if count <= 0:
        return []
    order = sorted(tasks, key=lambda t: (t.state is TaskState.STARTED, -t.created_at, t.id))
    return [_stop(t, detail, FinishedReason.SCALED_DOWN) for t in order[:count]]


def _stop(task: Task, detail: str, reason: FinishedReason = FinishedReason.KILLED) -> Action:
    if task.state is TaskState.ACCEPTED:
        return FinishTask(task.id, reason, detail)
    return KillTask(task.id, reason, detail)
