"""A job's tasks not yet created (held back by the unstarted cap) count toward the shortfall."""

from __future__ import annotations

from dataclasses import replace

from corral.autoscale.demand import not_yet_created, old_enough
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


def test_a_job_with_one_task_old_enough_counts_all_its_pending_tasks() -> None:
    """Found under load: a burst's first tasks were old enough while its last were still being created,
    and the fleet grew in two decisions instead of one."""
    pending = [("a1", "a", 5.0), ("a2", "a", 0.1), ("a3", "a", 0.0), ("b1", "b", 0.5), ("c1", "c", 1.0)]
    chosen, young = old_enough(pending, after=1.0)
    assert chosen == {"a1", "a2", "a3", "c1"}
    assert young == 1  # b1: its job has none old enough yet


def test_nothing_old_enough_sizes_for_nothing() -> None:
    assert old_enough([("a1", "a", 0.2)], after=1.0) == (set(), 1)
    assert old_enough([], after=1.0) == (set(), 0)
