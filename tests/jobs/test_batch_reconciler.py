"""jobs/batch.py through reconcile(): one task per index, retries per policy, finishing the job."""

from __future__ import annotations

import pytest

from corral.domain.job import RetryKind, RetryPolicy
from corral.domain.states import FinishedReason, TaskState
from corral.jobs import CreateTask, FinishJob, JobManagerConfig, KillTask, reconcile
from corral.jobs.batch import latest_by_index
from tests.domain.factories import batch_job, finished, task

R = FinishedReason
S = TaskState
# The per-task policies on their own: the job-wide crash-loop backoff is tested in test_crash_loop.py.
CFG = JobManagerConfig(crash_loop_after=0, system_retry_initial_s=2.0, system_retry_max_s=60.0)
RETRY_2 = RetryPolicy(RetryKind.IMMEDIATE, retries=2)


def test_a_new_job_gets_one_task_per_index() -> None:
    assert reconcile(batch_job(size=3), [], 5.0, CFG).actions == (
        CreateTask("j1", 0, 5.0),
        CreateTask("j1", 1, 5.0),
        CreateTask("j1", 2, 5.0),
    )


def test_only_missing_indexes_are_created() -> None:
    tasks = [task("a", S.STARTED, index=0), task("b", S.ACCEPTED, index=2)]
    assert reconcile(batch_job(size=3), tasks, 5.0, CFG).actions == (CreateTask("j1", 1, 5.0),)


def test_live_tasks_need_nothing() -> None:
    tasks = [task("a", S.STARTED, index=0), task("b", S.LAUNCHED, index=1, updated_at=4.0)]
    assert reconcile(batch_job(size=2), tasks, 5.0, CFG).actions == ()


def test_all_indexes_normal_finishes_the_job_normal() -> None:
    tasks = [finished("a", R.NORMAL, 3.0, index=0), finished("b", R.NORMAL, 4.0, index=1)]
    assert reconcile(batch_job(size=2), tasks, 5.0, CFG).actions == (
        FinishJob("j1", R.NORMAL, "all 2 tasks succeeded"),
    )


def test_a_failure_is_retried_immediately_spending_one_retry() -> None:
    tasks = [finished("a", R.FAILED, 3.0, attempt=0)]
    assert reconcile(batch_job(retry=RETRY_2), tasks, 5.0, CFG).actions == (
        CreateTask("j1", 0, 3.0, attempt=1, replaces="a"),
    )


def test_delayed_retry_waits_from_the_failure() -> None:
    policy = RetryPolicy(RetryKind.DELAYED, retries=3, initial_delay_ms=1500, delay_ms=4000)
    first = [finished("a", R.FAILED, 10.0)]
    second = [finished("b", R.FAILED, 20.0, attempt=1)]
    assert reconcile(batch_job(retry=policy), first, 10.0, CFG).actions == (
        CreateTask("j1", 0, 11.5, 1, 0, "a"),
    )
    assert reconcile(batch_job(retry=policy), second, 20.0, CFG).actions == (
        CreateTask("j1", 0, 24.0, 2, 0, "b"),
    )


def test_exponential_retry_doubles_with_each_attempt() -> None:
    policy = RetryPolicy(RetryKind.EXPONENTIAL, retries=9, initial_delay_ms=1000, max_delay_ms=5000)
    delays = []
    for attempt in range(4):
        tasks = [finished("a", R.FAILED, 100.0, attempt=attempt)]
        (action,) = reconcile(batch_job(retry=policy), tasks, 100.0, CFG).actions
        assert isinstance(action, CreateTask)
        assert action.attempt == attempt + 1
        delays.append(action.ready_at - 100.0)
    assert delays == [1.0, 2.0, 4.0, 5.0]


def test_retries_exhausted_finishes_the_job_failed() -> None:
    tasks = [finished("a", R.FAILED, 3.0, attempt=2)]
    assert reconcile(batch_job(retry=RETRY_2), tasks, 5.0, CFG).actions == (
        FinishJob("j1", R.FAILED, "1 of 1 tasks failed"),
    )


def test_job_waits_for_every_index_before_finishing() -> None:
    tasks = [finished("a", R.FAILED, 3.0, index=0), task("b", S.STARTED, index=1)]
    assert reconcile(batch_job(size=2), tasks, 5.0, CFG).actions == ()


def test_some_indexes_failed_finishes_failed() -> None:
    tasks = [finished("a", R.NORMAL, 3.0, index=0), finished("b", R.FAILED, 4.0, index=1)]
    assert reconcile(batch_job(size=2), tasks, 5.0, CFG).actions == (
        FinishJob("j1", R.FAILED, "1 of 2 tasks failed"),
    )


@pytest.mark.parametrize("reason", [R.LOST, R.CRASHED, R.STUCK_IN_STATE, R.TRANSIENT_SYSTEM_ERROR])
def test_system_errors_are_retried_without_spending_user_retries(reason: FinishedReason) -> None:
    tasks = [finished("a", reason, 3.0, attempt=1)]
    # retries=0: a user failure would end the index, but a system error is not the user's fault.
    assert reconcile(batch_job(), tasks, 5.0, CFG).actions == (
        CreateTask("j1", 0, 3.0, attempt=1, system_attempt=1, replaces="a"),
    )


def test_repeated_system_errors_back_off() -> None:
    tasks = [finished("a", R.LOST, 3.0, attempt=1, system_attempt=2)]
    # the 3rd consecutive system retry waits initial * 2 = 4s from the failure
    assert reconcile(batch_job(), tasks, 5.0, CFG).actions == (CreateTask("j1", 0, 7.0, 1, 3, "a"),)


def test_a_user_retry_resets_the_system_streak() -> None:
    tasks = [finished("a", R.FAILED, 3.0, attempt=0, system_attempt=4)]
    assert reconcile(batch_job(retry=RETRY_2), tasks, 5.0, CFG).actions == (
        CreateTask("j1", 0, 3.0, 1, 0, "a"),
    )


@pytest.mark.parametrize("reason", [R.KILLED, R.EVICTED])
def test_a_killed_task_restarts_its_index_without_spending_retries(reason: FinishedReason) -> None:
    tasks = [finished("a", reason, 3.0, attempt=2, system_attempt=1)]
    assert reconcile(batch_job(retry=RETRY_2), tasks, 5.0, CFG).actions == (
        CreateTask("j1", 0, 5.0, 2, 1, "a"),
    )


def test_invalid_request_is_never_retried() -> None:
    tasks = [finished("a", R.INVALID_REQUEST, 3.0)]
    assert reconcile(batch_job(retry=RETRY_2), tasks, 5.0, CFG).actions == (
        FinishJob("j1", R.FAILED, "1 of 1 tasks failed"),
    )


def test_runtime_limit_kills_the_task() -> None:
    job = batch_job(runtime_limit_s=30)
    running = [task("a", S.STARTED, started_at=10.0, updated_at=10.0)]
    assert reconcile(job, running, 39.0, CFG).wake_at == 40.0
    (kill,) = reconcile(job, running, 40.0, CFG).actions
    assert kill == KillTask("a", R.RUNTIME_LIMIT_EXCEEDED, "ran longer than the runtime limit of 30s")


def test_runtime_limit_is_not_retried_by_default() -> None:
    tasks = [finished("a", R.RUNTIME_LIMIT_EXCEEDED, 40.0)]
    assert reconcile(batch_job(retry=RETRY_2, runtime_limit_s=30), tasks, 41.0, CFG).actions == (
        FinishJob("j1", R.FAILED, "1 of 1 tasks failed"),
    )


def test_runtime_limit_is_retried_when_asked_spending_a_retry() -> None:
    job = batch_job(retry=RETRY_2, runtime_limit_s=30, retry_on_runtime_limit=True)
    tasks = [finished("a", R.RUNTIME_LIMIT_EXCEEDED, 40.0)]
    assert reconcile(job, tasks, 41.0, CFG).actions == (CreateTask("j1", 0, 40.0, 1, 0, "a"),)


def test_a_retried_index_looks_only_at_its_latest_task() -> None:
    tasks = [
        finished("a", R.FAILED, 3.0, created_at=1.0),
        task("b", S.STARTED, created_at=3.0, attempt=1, resubmit_of="a"),
    ]
    assert reconcile(batch_job(retry=RETRY_2), tasks, 5.0, CFG).actions == ()
    tasks[1] = finished("b", R.NORMAL, 6.0, created_at=3.0, attempt=1, resubmit_of="a")
    assert reconcile(batch_job(retry=RETRY_2), tasks, 7.0, CFG).actions == (
        FinishJob("j1", R.NORMAL, "all 1 tasks succeeded"),
    )


def test_latest_by_index_prefers_live_then_newest() -> None:
    old_live = task("a", S.STARTED, created_at=1.0)
    newer_done = finished("b", R.FAILED, 9.0, created_at=5.0)
    newest_done = finished("c", R.FAILED, 9.0, created_at=6.0)
    assert latest_by_index([newer_done, old_live, newest_done]) == {0: old_live}
    assert latest_by_index([newest_done, newer_done]) == {0: newest_done}
    assert latest_by_index([task("s", index=None)]) == {}


def test_reconcile_is_level_triggered() -> None:
    tasks = [finished("a", R.FAILED, 3.0, index=0), task("b", S.STARTED, index=2)]
    job = batch_job(size=3, retry=RETRY_2)
    assert reconcile(job, tasks, 5.0, CFG) == reconcile(job, tasks, 5.0, CFG)
    assert reconcile(job, tasks, 5.0, CFG).actions == (
        CreateTask("j1", 0, 3.0, 1, 0, "a"),
        CreateTask("j1", 1, 5.0),
    )


def test_the_replacement_chain_decides_the_latest_not_ids() -> None:
    # Killed while Accepted and restarted within one clock tick: same created_at, attempt and ids
    # that do not sort by creation. The restart is the latest; the job is done.
    first = finished("t9", R.KILLED, 0.0, created_at=0.0)
    restart = finished("t10", R.NORMAL, 0.0, created_at=0.0, resubmit_of="t9")
    assert reconcile(batch_job(), [first, restart], 0.0, CFG).actions == (
        FinishJob("j1", R.NORMAL, "all 1 tasks succeeded"),
    )


def test_the_replacement_chain_decides_the_latest_not_clocks() -> None:
    # The retry was created by a master whose clock lags the one that created the first task.
    first = finished("a", R.FAILED, 100.0, created_at=100.0)
    retry = finished("b", R.NORMAL, 99.5, created_at=99.0, attempt=1, resubmit_of="a")
    assert latest_by_index([first, retry]) == {0: retry}
    assert reconcile(batch_job(retry=RETRY_2), [first, retry], 101.0, CFG).actions == (
        FinishJob("j1", R.NORMAL, "all 1 tasks succeeded"),
    )
