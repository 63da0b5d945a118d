"""Crash-loop backoff: a job whose tasks keep failing has its new tasks wait, longer with each failure.

The retry policies delay the next attempt of one batch index or one service line; this is the job's view
across all of them, so a job cannot keep the cluster busy by failing on many indices or lines at once.
A *user failure* (non-zero exit or OOM, an invalid request such as a missing image, the runtime limit)
without an intervening *success* (a batch task finishing normally, a service task that stayed up
``service_stable_after_s``) adds one to the job's streak. From ``crash_loop_after`` failures on, every new
task of the job waits ``crash_loop_initial_s * 2^(streak - crash_loop_after)`` (capped at
``crash_loop_max_s``) after the last failure. Kills, scale-downs and system errors count neither way:
system errors have their own backoff, and a host that keeps causing them is quarantined elsewhere.

The streak is derived from the tasks alone. Each task records the streak when it was created; events
after the newest task's creation all belong to tasks still in memory (a finished task leaves memory only
once a newer task replaces it), and a restarted master, which loads every task of an active job, gets the
same answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from corral.domain.states import FinishedReason
from corral.domain.task import Task
from corral.jobs.config import JobManagerConfig

USER_FAILURES = frozenset(
    {FinishedReason.FAILED, FinishedReason.RUNTIME_LIMIT_EXCEEDED, FinishedReason.INVALID_REQUEST}
)


@dataclass(frozen=True, slots=True)
class Streak:
    failures: int = 0  # user failures in a row
    last_failure_at: float | None = None  # when the last of them ended (None if not known)


def failure_streak(tasks: Sequence[Task], now: float, config: JobManagerConfig, *, service: bool) -> Streak:
    """The job's user failures in a row, as of ``now``."""
    newest: Task | None = None
    for task in tasks:
        if newest is None or (task.created_at, task.id) > (newest.created_at, newest.id):
            newest = task
    if newest is None:
        return Streak()
    since = newest.created_at
    failures = newest.job_failure_streak
    last: float | None = since if failures else None
    events: list[tuple[float, bool]] = []  # (when, failed): successes sort first at equal times
    for task in tasks:
        if task.finished_at is not None and task.finished_at > since and task.reason in USER_FAILURES:
            events.append((task.finished_at, True))
        success = _success_at(task, now, config, service)
        if success is not None and success > since:
            events.append((success, False))
    for at, failed in sorted(events):
        if failed:
            failures, last = failures + 1, at
        else:
            failures, last = 0, None
    return Streak(failures, last)


def _success_at(task: Task, now: float, config: JobManagerConfig, service: bool) -> float | None:
    if not service:
        return task.finished_at if task.reason is FinishedReason.NORMAL else None
    if task.started_at is None:
        return None
    stable = task.started_at + config.service_stable_after_s
    end = task.finished_at if task.finished_at is not None else now
    return stable if stable <= end else None


def crash_loop_delay_s(config: JobManagerConfig, failures: int) -> float:
    """How long a new task of a job with ``failures`` user failures in a row waits (0: not crash-looping)."""
    after = config.crash_loop_after
    if after <= 0 or failures < after:
        return 0.0
    delay: float = config.crash_loop_initial_s * 2.0 ** min(failures - after, 40)
    return min(delay, config.crash_loop_max_s)


def not_before(streak: Streak, now: float, config: JobManagerConfig) -> float | None:
    """The earliest a new task of the job may be placed, or None if the job is not crash-looping."""
    delay = crash_loop_delay_s(config, streak.failures)
    if delay <= 0:
        return None
    anchor = streak.last_failure_at if streak.last_failure_at is not None else now
    return anchor + delay
