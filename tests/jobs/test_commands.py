"""jobs/commands.py (user requests on a job) and how reconcile() carries out a killed job."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from corral.domain.errors import ConflictError, ValidationError
from corral.domain.job import Capacity, Job
from corral.domain.states import FinishedReason, JobState, TaskState
from corral.domain.stimuli import KillRequested
from corral.jobs import FinishJob, FinishTask, JobManagerConfig, KillTask, reconcile
from corral.jobs.commands import finish_job, kill_job, kill_task, resize, set_enabled
from tests.domain.factories import batch_job, finished, service_job, task

R = FinishedReason
S = TaskState
CFG = JobManagerConfig()


def capacity(job: Job) -> Capacity:
    assert job.descriptor.service is not None
    return job.descriptor.service.capacity


def conflict(call: Callable[..., object], *args: object) -> str:
    with pytest.raises(ConflictError) as caught:
        call(*args)
    assert caught.value.status == 409
    return caught.value.code


def test_kill_job_initiates_and_records_why() -> None:
    job = kill_job(batch_job(), 7.0, "no longer needed")
    assert (job.state, job.reason_detail, job.updated_at) == (
        JobState.KILL_INITIATED,
        "no longer needed",
        7.0,
    )
    assert job.history[-1].message == "no longer needed"


def test_kill_job_twice_is_a_no_op() -> None:
    job = kill_job(batch_job(), 7.0)
    assert kill_job(job, 8.0) is job


def test_kill_of_a_finished_job_conflicts() -> None:
    done = finish_job(batch_job(), R.NORMAL, "all 1 tasks succeeded", 5.0)
    assert (done.state, done.reason, done.finished_at) == (JobState.FINISHED, R.NORMAL, 5.0)
    assert conflict(kill_job, done, 6.0) == "job_finished"


def test_resize_within_min_and_max() -> None:
    job = resize(service_job(2, min=1, max=5), Capacity(2, 4, 8), 9.0)
    assert capacity(job) == Capacity(2, 4, 8)
    assert job.history[-1].message == "resized to min 2 / desired 4 / max 8"


@pytest.mark.parametrize("bad", [Capacity(3, 2, 5), Capacity(0, 6, 5), Capacity(-1, 0, 1)])
def test_resize_outside_min_max_is_invalid(bad: Capacity) -> None:
    with pytest.raises(ValidationError) as caught:
        resize(service_job(), bad, 9.0)
    assert caught.value.code == "invalid_capacity"
    assert caught.value.field is not None
    assert caught.value.field.startswith("capacity")


def test_resize_conflicts_for_batch_killed_and_finished_jobs() -> None:
    assert conflict(resize, batch_job(), Capacity(0, 1, 1), 1.0) == "not_a_service_job"
    assert conflict(resize, kill_job(service_job(), 1.0), Capacity(0, 1, 1), 2.0) == "job_being_killed"
    done = finish_job(service_job(), R.KILLED, "", 1.0)
    assert conflict(resize, done, Capacity(0, 1, 1), 2.0) == "job_finished"


def test_set_enabled_toggles_and_repeats_are_no_ops() -> None:
    job = service_job()
    off = set_enabled(job, False, 3.0)
    assert off.descriptor.service is not None
    assert not off.descriptor.service.enabled
    assert off.history[-1].message == "disabled"
    assert set_enabled(off, False, 4.0) is off
    assert set_enabled(job, True, 4.0) is job
    assert conflict(set_enabled, batch_job(), False, 1.0) == "not_a_service_job"


def test_kill_task_without_shrink_leaves_the_job() -> None:
    job = service_job(2)
    same, kill = kill_task(job, task("a", S.STARTED, index=None), False, 5.0)
    assert same is job
    assert kill == KillRequested(R.KILLED, 5.0, "killed by user")


def test_kill_task_with_shrink_lowers_desired() -> None:
    job, kill = kill_task(service_job(3, min=1), task("a", S.STARTED, index=None), True, 5.0)
    assert capacity(job) == Capacity(1, 2, 10)
    assert kill == KillRequested(R.KILLED, 5.0, "killed by user (shrink)")


def test_kill_task_with_shrink_respects_min() -> None:
    job = service_job(2, min=2)
    assert conflict(kill_task, job, task("a", S.STARTED, index=None), True, 5.0) == "below_min_capacity"


def test_kill_task_of_a_batch_job() -> None:
    job = batch_job()
    same, kill = kill_task(job, task("a", S.STARTED), False, 5.0)
    assert (same, kill.reason) == (job, R.KILLED)
    assert conflict(kill_task, job, task("a", S.STARTED), True, 5.0) == "not_a_service_job"


def test_kill_task_conflicts_for_finished_or_already_killed_tasks() -> None:
    job = service_job()
    assert conflict(kill_task, job, finished("a", R.NORMAL, 1.0, index=None), False, 5.0) == "task_finished"
    killing = task("a", S.KILL_INITIATED, index=None, kill_reason=R.SCALED_DOWN)
    assert conflict(kill_task, job, killing, False, 5.0) == "task_being_killed"


# -- a killed job, as reconcile() carries it out ---------------------------------------------


def test_killed_job_kills_running_tasks_and_finishes_unplaced_ones() -> None:
    job = kill_job(batch_job(size=3), 5.0, "stop")
    tasks = [
        task("a", S.STARTED, index=0),
        task("b", S.ACCEPTED, index=1),
        finished("c", R.FAILED, 1.0, index=2),
    ]
    assert reconcile(job, tasks, 6.0, CFG).actions == (
        KillTask("a", R.KILLED, "job killed"),
        FinishTask("b", R.KILLED, "job killed"),
    )


def test_killed_job_waits_for_kills_then_finishes() -> None:
    job = kill_job(service_job(2), 5.0, "stop")
    killing = [task("a", S.KILL_INITIATED, index=None, updated_at=5.0, kill_reason=R.KILLED)]
    assert reconcile(job, killing, 6.0, CFG).actions == ()
    done = [finished("a", R.KILLED, 7.0, index=None)]
    assert reconcile(job, done, 8.0, CFG).actions == (FinishJob("j1", R.KILLED, "stop"),)


def test_killed_job_with_only_unplaced_tasks_finishes_in_one_pass() -> None:
    job = kill_job(service_job(1), 5.0, "stop")
    assert reconcile(job, [task("a", index=None)], 6.0, CFG).actions == (
        FinishTask("a", R.KILLED, "job killed"),
        FinishJob("j1", R.KILLED, "stop"),
    )


def test_a_finished_job_needs_nothing() -> None:
    done = finish_job(batch_job(size=2), R.NORMAL, "", 5.0)
    assert reconcile(done, [], 6.0, CFG).actions == ()


def test_who_acted_is_written_into_the_history() -> None:
    job = resize(service_job(2, min=1, max=5), Capacity(1, 3, 5), 9.0, by="alice")
    assert job.history[-1].message == "resized to min 1 / desired 3 / max 5 by alice"
    assert set_enabled(job, False, 10.0, by="bob").history[-1].message == "disabled by bob"
    shrunk, kill = kill_task(job, task("a", S.STARTED, index=None), True, 11.0, by="carol")
    assert kill.detail == "killed by carol (shrink)"
    assert shrunk.history[-1].message == "task a killed, shrunk by carol"
    assert kill_job(job, 12.0, "killed by dave").history[-1].message == "killed by dave"
