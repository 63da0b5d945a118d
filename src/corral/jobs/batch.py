"""The batch reconciler: every index runs until it succeeds or runs out of retries."""

from __future__ import annotations

from collections.abc import Sequence

from corral.domain.job import BatchSpec, Job
from corral.domain.states import FinishedReason
from corral.domain.task import Task
from corral.jobs.actions import Action, CreateTask, FinishJob
from corral.jobs.config import JobManagerConfig
from corral.jobs.retry import retry_delay_s, system_retry_delay_s

# A task that ended for one of these reasons is retried at once, without spending the user's retries:
# the user (or an operator) asked for this attempt to stop, not for the index to give up.
RESTARTED = frozenset({FinishedReason.KILLED, FinishedReason.EVICTED, FinishedReason.RELOCATED})
# These never get better by retrying.
NOT_RETRIED = frozenset({FinishedReason.INVALID_REQUEST})


def latest_by_index(tasks: Sequence[Task]) -> dict[int, Task]:
    """For each index, its live task if there is one, else its most recent finished one."""
    # A task some other task replaces is never the latest, whatever the clocks said when both were
    # created (a failed-over master's clock may lag; ids need not sort by creation).
    replaced = {t.resubmit_of for t in tasks if t.resubmit_of is not None}
    latest: dict[int, Task] = {}
    for task in tasks:
        if task.index is None:
            continue
        seen = latest.get(task.index)
        if seen is None or _newer(task, seen, replaced):
            latest[task.index] = task
    return latest


def _newer(a: Task, b: Task, replaced: set[str]) -> bool:
    if a.is_live != b.is_live:
        return a.is_live
    if (a.id in replaced) != (b.id in replaced):
        return b.id in replaced
    return (a.created_at, a.attempt, a.system_attempt, a.id) > (
        b.created_at,
        b.attempt,
        b.system_attempt,
        b.id,
    )


def reconcile_batch(
    job: Job, spec: BatchSpec, tasks: Sequence[Task], now: float, config: JobManagerConfig
) -> list[Action]:
    actions: list[Action] = []
    latest = latest_by_index(tasks)
    failed = 0
    done = 0
    for index in range(spec.size):
        task = latest.get(index)
        if task is None:
            actions.append(CreateTask(job.id, index, now))
            continue
        if task.is_live:
            continue
        retry = next_attempt(task, spec, now, config)
        if retry is None:
            done += 1
            failed += task.reason is not FinishedReason.NORMAL
        else:
            actions.append(retry)
    if done == spec.size:
        if failed:
            actions.append(FinishJob(job.id, FinishedReason.FAILED, f"{failed} of {spec.size} tasks failed"))
        else:
            actions.append(FinishJob(job.id, FinishedReason.NORMAL, f"all {spec.size} tasks succeeded"))
    return actions


def next_attempt(task: Task, spec: BatchSpec, now: float, config: JobManagerConfig) -> CreateTask | None:
    """The task that retries ``task``'s index, or None when the index is done."""
    reason = task.reason or FinishedReason.UNKNOWN_SYSTEM_ERROR
    ended = task.finished_at if task.finished_at is not None else now
    if reason is FinishedReason.NORMAL or reason in NOT_RETRIED:
        return None
    if reason.is_system_error:
        system_attempt = task.system_attempt + 1
        ready = ended + system_retry_delay_s(config, system_attempt)
        return CreateTask(task.job_id, task.index, ready, task.attempt, system_attempt, task.id)
    if reason in RESTARTED:
        return CreateTask(task.job_id, task.index, now, task.attempt, task.system_attempt, task.id)
    if reason is FinishedReason.RUNTIME_LIMIT_EXCEEDED and not spec.retry_on_runtime_limit:
        return None
    if task.attempt >= spec.retry_policy.retries:
        return None
    attempt = task.attempt + 1
    ready = ended + retry_delay_s(spec.retry_policy, attempt)
    return CreateTask(task.job_id, task.index, ready, attempt, 0, task.id)
