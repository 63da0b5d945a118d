"""A job's tasks not yet created (held back by the unstarted cap) count toward the shortfall."""

from __future__ import annotations

from dataclasses import replace

from corral.autoscale.demand import not_yet_created
from corral.domain.states import FinishedReason, JobState, TaskState
from tests.domain.factories import batch_job, finished, service_job, task


def test_a_batch_job_held_back_by_the_cap_wants_its_uncreated_indices() -> None:
    job = batch_job(size=5000)
    created = [task(f"t{i}", index=i) for i in range(1000)]
    assert not_yet_created(job, created) == 4000
    # A finished index, or one whose retry is pending, is not asked for again.
    retried = [*created, finished("f", FinishedReason.FAILED, 1.0, index=7), task("r", index=7)]
    assert not_yet_created(job, retried) == 4000


def test_a_service_wants_desired_less_its_live_tasks() -> None:
    job = service_job(desired=8)
    tasks = [task(f"t{i}", TaskState.STARTED, index=None) for i in range(3)]
    tasks.append(finished("old", FinishedReason.KILLED, 1.0, index=None))
    assert not_yet_created(job, tasks) == 5
    assert not_yet_created(service_job(desired=8, enabled=False), tasks) == 0


def test_a_job_being_killed_wants_nothing() -> None:
    job = replace(batch_job(size=10), state=JobState.KILL_INITIATED)
    assert not_yet_created(job, []) == 0
