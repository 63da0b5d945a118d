"""The service reconciler: keep ``desired`` tasks running (none while disabled), replacing failures.

For a service the retry policy sets how long to wait before replacing a task that failed; ``retries``
limits nothing, since a service is never given up on. Each replacement carries on the count of the task
it replaces, so a crash-looping task backs off further each time while its healthy siblings are
untouched; a task that stayed up ``service_stable_after_s`` starts its line afresh.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from corral.domain.job import Job, ServiceSpec
from corral.domain.readiness import is_ready
from corral.domain.states import FinishedReason, TaskState
from corral.domain.task import Task
from corral.jobs.actions import Action, CreateTask, FinishTask, KillTask
from corral.jobs.config import JobManagerConfig
from corral.jobs.retry import retry_delay_s, system_retry_delay_s
from corral.jobs.update import reconcile_rollout

HEALTHY_ENDINGS = frozenset(
    {FinishedReason.NORMAL, FinishedReason.KILLED, FinishedReason.SCALED_DOWN, FinishedReason.RELOCATED}
)

# Which tasks go first when scaling down: not yet running before running, newest before oldest.
_SCALE_DOWN_ORDER = {
    TaskState.ACCEPTED: 0,
    TaskState.DISCONNECTED: 1,
    TaskState.LAUNCHED: 2,
    TaskState.START_INITIATED: 3,
    TaskState.STARTED: 4,
}


def reconcile_service(
    job: Job, tasks: Sequence[Task], now: float, config: JobManagerConfig
) -> tuple[list[Action], float | None]:
    """The actions that keep the service at desired (through its rollout, if one is under way), and when
    to look again if nothing else happens first."""
    spec = job.descriptor.service
    if spec is None:
        raise ValueError(f"job {job.id} is not a service job")
    desired = spec.capacity.desired if spec.enabled else 0
    active = active_tasks(tasks)
    if job.rollout is not None and job.rollout.phase.active:

        def create(count: int, version: int) -> list[CreateTask]:
            same = [t for t in tasks if t.version == version]
            made = _fill(job, spec, same, count, now, config)
            return [replace(c, version=version) for c in made if isinstance(c, CreateTask)]

        return reconcile_rollout(job, spec, tasks, active, desired, now, create)
    if len(active) > desired:
        return _scale_down(job, active, len(active) - desired, spec, desired), None
    if len(active) < desired:
        return _fill(job, spec, tasks, desired - len(active), now, config), None
    return [], None


def active_tasks(tasks: Sequence[Task]) -> list[Task]:
    """The tasks that count towards desired: live, no kill asked for, and not leaving for a replacement
    that is still live (a task being relocated and its replacement count once)."""
    live = {t.id for t in tasks if t.is_live}
    return [
        t
        for t in tasks
        if t.is_live and t.kill_reason is None and (t.relocating_to is None or t.relocating_to not in live)
    ]


def _scale_down(job: Job, active: list[Task], count: int, spec: ServiceSpec, desired: int) -> list[Action]:
    """Not yet running before running, not ready before ready, newest before oldest."""

    def order(t: Task) -> tuple[int, bool, float, str]:
        ready = is_ready(t, job.container_of(t.version).health)
        return (_SCALE_DOWN_ORDER.get(t.state, 5), ready, -t.created_at, t.id)

    victims = sorted(active, key=order)
    detail = "service disabled" if not spec.enabled else f"scaled down to {desired}"
    actions: list[Action] = []
    for task in victims[:count]:
        if task.state is TaskState.ACCEPTED:
            actions.append(FinishTask(task.id, FinishedReason.SCALED_DOWN, detail))
        else:
            actions.append(KillTask(task.id, FinishedReason.SCALED_DOWN, detail))
    return actions


def _fill(
    job: Job, spec: ServiceSpec, tasks: Sequence[Task], count: int, now: float, config: JobManagerConfig
) -> list[Action]:
    replaced = {t.resubmit_of for t in tasks if t.resubmit_of is not None}
    orphans = sorted(
        (t for t in tasks if t.is_finished and t.id not in replaced),
        key=lambda t: (t.finished_at or 0.0, t.id),
        reverse=True,
    )
    actions: list[Action] = [replacement(t, spec, now, config) for t in orphans[:count]]
    for _ in range(count - len(actions)):
        actions.append(CreateTask(job.id, None, now))
    return actions


def replacement(task: Task, spec: ServiceSpec, now: float, config: JobManagerConfig) -> CreateTask:
    """The task that takes over from finished ``task``, delayed by its line's failure count."""
    ended = task.finished_at if task.finished_at is not None else now
    reason = task.reason or FinishedReason.UNKNOWN_SYSTEM_ERROR
    if reason in HEALTHY_ENDINGS or _was_stable(task, config):
        return CreateTask(task.job_id, None, now, 0, 0, task.id)
    if reason.is_system_error:
        system_attempt = task.system_attempt + 1
        ready = max(now, ended + system_retry_delay_s(config, system_attempt))
        return CreateTask(task.job_id, None, ready, task.attempt, system_attempt, task.id)
    attempt = task.attempt + 1
    ready = max(now, ended + retry_delay_s(spec.retry_policy, attempt))
    return CreateTask(task.job_id, None, ready, attempt, 0, task.id)


def _was_stable(task: Task, config: JobManagerConfig) -> bool:
    if task.started_at is None or task.finished_at is None:
        return False
    return task.finished_at - task.started_at >= config.service_stable_after_s
