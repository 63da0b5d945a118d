"""jobs/service.py through reconcile(): fill to desired, scale down, replace failures with backoff."""

from __future__ import annotations

import pytest

from corral.domain.job import RetryKind, RetryPolicy
from corral.domain.states import FinishedReason, TaskState
from corral.jobs import CreateTask, FinishTask, JobManagerConfig, KillTask, reconcile
from tests.domain.factories import finished, service_job, task

R = FinishedReason
S = TaskState
# The per-task policies on their own: the job-wide crash-loop backoff is tested in test_crash_loop.py.
CFG = JobManagerConfig(
    crash_loop_after=0, system_retry_initial_s=2.0, system_retry_max_s=60.0, service_stable_after_s=60.0
)
BACKOFF = RetryPolicy(RetryKind.EXPONENTIAL, initial_delay_ms=1000, max_delay_ms=8000)


def test_fills_to_desired() -> None:
    assert reconcile(service_job(3), [], 5.0, CFG).actions == (CreateTask("j1", None, 5.0),) * 3


def test_at_desired_needs_nothing() -> None:
    tasks = [task("a", S.STARTED, index=None), task("b", S.ACCEPTED, index=None)]
    assert reconcile(service_job(2), tasks, 5.0, CFG).actions == ()


def test_scale_down_prefers_unstarted_then_newest() -> None:
    tasks = [
        task("old", S.STARTED, index=None, created_at=1.0),
        task("new", S.STARTED, index=None, created_at=3.0),
        task("wait", S.ACCEPTED, index=None, created_at=0.0),
        task("mid", S.STARTED, index=None, created_at=2.0),
    ]
    detail = "scaled down to 2"
    assert reconcile(service_job(2), tasks, 5.0, CFG).actions == (
        FinishTask("wait", R.SCALED_DOWN, detail),
        KillTask("new", R.SCALED_DOWN, detail),
    )


def test_scale_down_order_follows_the_state() -> None:
    tasks = [
        task("s", S.STARTED, index=None, created_at=9.0),
        task("si", S.START_INITIATED, index=None, created_at=1.0, updated_at=4.0),
        task("l", S.LAUNCHED, index=None, created_at=1.0, updated_at=4.0),
        task("d", S.DISCONNECTED, index=None, created_at=1.0, updated_at=4.0, disconnected_from=S.STARTED),
    ]
    actions = reconcile(service_job(0), tasks, 5.0, CFG).actions
    assert [a.task_id for a in actions if isinstance(a, KillTask)] == ["d", "l", "si", "s"]


def test_disabled_means_zero() -> None:
    tasks = [task("a", S.STARTED, index=None), task("b", S.ACCEPTED, index=None)]
    assert reconcile(service_job(2, enabled=False), tasks, 5.0, CFG).actions == (
        FinishTask("b", R.SCALED_DOWN, "service disabled"),
        KillTask("a", R.SCALED_DOWN, "service disabled"),
    )


def test_tasks_being_killed_do_not_count() -> None:
    tasks = [
        task("a", S.STARTED, index=None),
        task("b", S.KILL_INITIATED, index=None, updated_at=4.0, kill_reason=R.KILLED),
    ]
    assert reconcile(service_job(2), tasks, 5.0, CFG).actions == (CreateTask("j1", None, 5.0),)


def test_disconnected_tasks_count_until_lost() -> None:
    tasks = [task("a", S.DISCONNECTED, index=None, updated_at=4.0, disconnected_from=S.STARTED)]
    assert reconcile(service_job(1), tasks, 5.0, CFG).actions == ()


def test_a_failed_task_is_replaced_after_the_policy_delay() -> None:
    tasks = [finished("a", R.FAILED, 10.0, index=None, started_at=9.0)]
    assert reconcile(service_job(1, retry=BACKOFF), tasks, 10.0, CFG).actions == (
        CreateTask("j1", None, 11.0, 1, 0, "a"),
    )


def test_the_delay_grows_along_a_crash_looping_line() -> None:
    delays = []
    for attempt in range(5):
        tasks = [finished("a", R.FAILED, 100.0, index=None, attempt=attempt, started_at=99.0)]
        (action,) = reconcile(service_job(1, retry=BACKOFF), tasks, 100.0, CFG).actions
        assert isinstance(action, CreateTask)
        assert (action.attempt, action.replaces) == (attempt + 1, "a")
        delays.append(action.ready_at - 100.0)
    assert delays == [1.0, 2.0, 4.0, 8.0, 8.0]


def test_a_stable_run_resets_the_line() -> None:
    tasks = [finished("a", R.FAILED, 100.0, index=None, attempt=7, started_at=40.0)]
    assert reconcile(service_job(1, retry=BACKOFF), tasks, 100.0, CFG).actions == (
        CreateTask("j1", None, 100.0, 0, 0, "a"),
    )


def test_an_unstable_run_keeps_the_line() -> None:
    tasks = [finished("a", R.FAILED, 100.0, index=None, attempt=2, started_at=41.0)]
    (action,) = reconcile(service_job(1, retry=BACKOFF), tasks, 100.0, CFG).actions
    assert isinstance(action, CreateTask)
    assert action.attempt == 3


@pytest.mark.parametrize("reason", [R.NORMAL, R.KILLED, R.SCALED_DOWN])
def test_healthy_endings_are_replaced_at_once_and_afresh(reason: FinishedReason) -> None:
    tasks = [finished("a", reason, 10.0, index=None, attempt=4, system_attempt=2)]
    assert reconcile(service_job(1, retry=BACKOFF), tasks, 12.0, CFG).actions == (
        CreateTask("j1", None, 12.0, 0, 0, "a"),
    )


def test_system_errors_back_off_on_their_own_count() -> None:
    first = [finished("a", R.LOST, 10.0, index=None, attempt=2)]
    third = [finished("a", R.LOST, 10.0, index=None, attempt=2, system_attempt=2)]
    assert reconcile(service_job(1, retry=BACKOFF), first, 10.0, CFG).actions == (
        CreateTask("j1", None, 10.0, 2, 1, "a"),
    )
    assert reconcile(service_job(1, retry=BACKOFF), third, 10.0, CFG).actions == (
        CreateTask("j1", None, 14.0, 2, 3, "a"),
    )


def test_a_delay_already_served_starts_now() -> None:
    tasks = [finished("a", R.FAILED, 10.0, index=None, attempt=3, started_at=9.0)]
    assert reconcile(service_job(1, retry=BACKOFF), tasks, 500.0, CFG).actions == (
        CreateTask("j1", None, 500.0, 4, 0, "a"),
    )


def test_a_replaced_task_is_not_replaced_twice() -> None:
    tasks = [
        finished("a", R.FAILED, 10.0, index=None),
        task("b", S.ACCEPTED, index=None, resubmit_of="a"),
    ]
    assert reconcile(service_job(2, retry=BACKOFF), tasks, 12.0, CFG).actions == (
        CreateTask("j1", None, 12.0),
    )


def test_newest_orphans_are_replaced_first() -> None:
    tasks = [
        finished("a", R.KILLED, 10.0, index=None),
        finished("b", R.KILLED, 30.0, index=None),
        finished("c", R.KILLED, 20.0, index=None),
    ]
    assert reconcile(service_job(2, retry=BACKOFF), tasks, 40.0, CFG).actions == (
        CreateTask("j1", None, 40.0, replaces="b"),
        CreateTask("j1", None, 40.0, replaces="c"),
    )
