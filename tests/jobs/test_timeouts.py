"""jobs/timeouts.py and the reconciler's handling of them: stuck states, unconfirmed kills, lost hosts."""

from __future__ import annotations

from corral.domain.states import FinishedReason, TaskState
from corral.jobs import CreateTask, FinishTask, JobManagerConfig, KillTask, reconcile
from corral.jobs.timeouts import Deadline, deadline
from tests.domain.factories import batch_job, service_job, task

R = FinishedReason
S = TaskState
CFG = JobManagerConfig(
    launched_timeout_s=60.0, start_initiated_timeout_s=600.0, kill_initiated_extra_s=30.0, lost_after_s=120.0
)
JOB = batch_job(kill_grace_period_s=10)


def test_launched_too_long_is_stuck() -> None:
    t = task("a", S.LAUNCHED, updated_at=100.0)
    assert deadline(JOB, t, CFG) == Deadline(
        160.0, FinishTask("a", R.STUCK_IN_STATE, "stuck in Launched for 60s")
    )


def test_start_initiated_too_long_is_stuck() -> None:
    t = task("a", S.START_INITIATED, updated_at=100.0)
    assert deadline(JOB, t, CFG) == Deadline(
        700.0, FinishTask("a", R.STUCK_IN_STATE, "stuck in StartInitiated for 600s")
    )


def test_unconfirmed_kill_finishes_with_the_kill_reason_after_grace_and_extra() -> None:
    t = task("a", S.KILL_INITIATED, updated_at=100.0, kill_reason=R.SCALED_DOWN)
    assert deadline(JOB, t, CFG) == Deadline(
        140.0, FinishTask("a", R.SCALED_DOWN, "the agent did not confirm the kill within 40s")
    )


def test_unconfirmed_kill_without_a_reason_is_killed() -> None:
    t = task("a", S.KILL_INITIATED, updated_at=100.0)
    due = deadline(JOB, t, CFG)
    assert due is not None
    assert due.action.reason is R.KILLED


def test_disconnected_too_long_is_lost() -> None:
    t = task("a", S.DISCONNECTED, updated_at=100.0, disconnected_from=S.STARTED)
    assert deadline(JOB, t, CFG) == Deadline(220.0, FinishTask("a", R.LOST, "host h1 unreachable for 120s"))


def test_disconnected_while_being_killed_finishes_with_the_kill_reason() -> None:
    t = task("a", S.DISCONNECTED, updated_at=100.0, disconnected_from=S.KILL_INITIATED, kill_reason=R.KILLED)
    assert deadline(JOB, t, CFG) == Deadline(
        220.0, FinishTask("a", R.KILLED, "host unreachable for 120s while being killed")
    )


def test_accepted_and_started_without_a_runtime_limit_have_no_deadline() -> None:
    assert deadline(JOB, task("a", S.ACCEPTED), CFG) is None
    assert deadline(JOB, task("a", S.STARTED, updated_at=5.0), CFG) is None
    assert deadline(service_job(), task("a", S.STARTED, index=None, updated_at=5.0), CFG) is None


def test_runtime_limit_counts_from_the_start() -> None:
    t = task("a", S.STARTED, started_at=50.0, updated_at=70.0)
    due = deadline(batch_job(runtime_limit_s=100), t, CFG)
    assert due is not None
    assert due.at == 150.0
    assert isinstance(due.action, KillTask)
    assert due.action.reason is R.RUNTIME_LIMIT_EXCEEDED


def test_reconcile_reports_the_earliest_deadline_as_wake_at() -> None:
    tasks = [
        task("a", S.LAUNCHED, index=0, updated_at=100.0),
        task("b", S.DISCONNECTED, index=1, updated_at=10.0, disconnected_from=S.STARTED),
    ]
    result = reconcile(batch_job(size=2), tasks, 120.0, CFG)
    assert (result.actions, result.wake_at) == ((), 130.0)


def test_a_timed_out_task_is_replaced_in_the_same_pass() -> None:
    tasks = [task("a", S.DISCONNECTED, index=0, updated_at=10.0, disconnected_from=S.STARTED)]
    assert reconcile(batch_job(), tasks, 130.0, CFG).actions == (
        FinishTask("a", R.LOST, "host h1 unreachable for 120s"),
        CreateTask("j1", 0, 130.0, 0, 1, "a"),
    )


def test_a_stuck_service_task_is_replaced_in_the_same_pass() -> None:
    tasks = [task("a", S.LAUNCHED, index=None, updated_at=0.0)]
    result = reconcile(service_job(1), tasks, 60.0, CFG)
    assert result.actions == (
        FinishTask("a", R.STUCK_IN_STATE, "stuck in Launched for 60s"),
        CreateTask("j1", None, 60.0, 0, 1, "a"),
    )
    assert result.wake_at is None
