"""``reconcile(job, tasks, now, config) -> Reconciliation``: what a job needs next, as actions.

Level-triggered: the answer depends only on the job and its tasks as they are, so running it twice in
a row gives the same actions, and a lost action is simply asked for again on the next pass.

Two rules apply to every job's new tasks, whichever reconciler asks for them: a crash-looping job's new
tasks wait out its backoff (``crash_loop``), and a job has at most ``max_unstarted_tasks_per_job`` tasks
created but not yet Started; the rest are created as those start.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from corral.domain.health import HealthStatus
from corral.domain.job import Job
from corral.domain.states import TASK_STATE_RANK, FinishedReason, JobState, TaskState
from corral.domain.task import Task
from corral.jobs.actions import Action, CreateTask, FinishJob, FinishTask, KillTask, Reconciliation
from corral.jobs.batch import reconcile_batch
from corral.jobs.config import JobManagerConfig
from corral.jobs.crash_loop import Streak, failure_streak, not_before
from corral.jobs.redblack import reconcile_red_black
from corral.jobs.service import reconcile_service
from corral.jobs.task_machine import Ended, KillRequested, transition
from corral.jobs.timeouts import deadline


def reconcile(job: Job, tasks: Sequence[Task], now: float, config: JobManagerConfig) -> Reconciliation:
    if job.state is JobState.FINISHED:
        return Reconciliation()
    actions: list[Action] = []
    current: list[Task] = []
    wake_at: float | None = None
    # Timeouts first; the tasks they end are seen as ended by the rest of the pass, so a replacement
    # is created in this same pass.
    for task in tasks:
        if task.is_finished:
            current.append(task)
            continue
        due = deadline(job, task, config)
        if due is None:
            current.append(task)
        elif due.at <= now:
            actions.append(due.action)
            current.append(_apply(task, due.action, now))
        else:
            current.append(task)
            wake_at = due.at if wake_at is None else min(wake_at, due.at)

    if job.state is not JobState.KILL_INITIATED:
        kills = {t.id: k for t in current if (k := liveness_kill(t)) is not None}
        if kills:
            actions.extend(kills.values())
            current = [_apply(t, kills.get(t.id), now) for t in current]
    if job.state is JobState.KILL_INITIATED:
        actions.extend(_kill_all(job, current))
    elif job.descriptor.batch is not None:
        actions.extend(reconcile_batch(job, job.descriptor.batch, current, now, config))
    else:
        for more, wake in (
            reconcile_service(job, current, now, config),
            reconcile_red_black(job, current, now),
        ):
            actions.extend(more)
            if wake is not None:
                wake_at = wake if wake_at is None else min(wake_at, wake)
    if any(isinstance(a, CreateTask) for a in actions):
        actions = _new_tasks(job, current, actions, now, config)
    return Reconciliation(tuple(actions), wake_at)


_STARTED = TASK_STATE_RANK[TaskState.STARTED]


def liveness_kill(task: Task) -> KillTask | None:
    """A running task whose liveness probe failed past its threshold is killed, and so replaced."""
    probes = task.probes
    if task.state is not TaskState.STARTED or task.kill_reason is not None or probes is None:
        return None
    if probes.live is not HealthStatus.UNHEALTHY:
        return None
    return KillTask(task.id, FinishedReason.UNHEALTHY, f"liveness probe failed: {probes.detail}")


def _new_tasks(
    job: Job, tasks: Sequence[Task], actions: list[Action], now: float, config: JobManagerConfig
) -> list[Action]:
    """The job-wide rules for new tasks: the crash-loop backoff, then the cap on unstarted tasks."""
    streak = Streak()
    if config.crash_loop_after > 0:
        streak = failure_streak(tasks, now, config, service=job.descriptor.service is not None)
    floor = not_before(streak, now, config)
    cap = config.max_unstarted_tasks_per_job
    room = cap - sum(1 for t in tasks if t.is_live and t.rank < _STARTED) if cap > 0 else len(actions)
    out: list[Action] = []
    for action in actions:
        if isinstance(action, CreateTask):
            if room <= 0:
                continue  # created once earlier tasks start: the job is reconciled again then
            room -= 1
            ready = action.ready_at if floor is None else max(action.ready_at, floor)
            action = replace(action, ready_at=ready, job_failure_streak=streak.failures)
        out.append(action)
    return out


def _apply(task: Task, action: KillTask | FinishTask | None, now: float) -> Task:
    if action is None:
        return task
    if isinstance(action, FinishTask):
        event: Ended | KillRequested = Ended(action.reason, now, action.detail)
    else:
        event = KillRequested(action.reason, now, action.detail)
    return transition(task, event) or task


def _kill_all(job: Job, tasks: Sequence[Task]) -> list[Action]:
    actions: list[Action] = []
    live = [t for t in tasks if t.is_live]
    for task in live:
        if task.state is TaskState.ACCEPTED:
            actions.append(FinishTask(task.id, FinishedReason.KILLED, "job killed"))
        elif task.kill_reason is None:
            actions.append(KillTask(task.id, FinishedReason.KILLED, "job killed"))
    if all(t.state is TaskState.ACCEPTED for t in live):
        actions.append(FinishJob(job.id, FinishedReason.KILLED, job.reason_detail or "killed"))
    return actions
