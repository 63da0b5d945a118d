"""Red/black deploys (corral.jobs.redblack): the next job of a job group replaces the old once healthy."""

from __future__ import annotations

from dataclasses import replace

import pytest

from corral.domain.health import HealthStatus, ProbeResult
from corral.domain.job import JobGroup
from corral.domain.rollout import RedBlackPhase, RollingUpdate, UpdateStrategy
from corral.domain.states import FinishedReason, TaskState
from corral.jobs.actions import ChangeJob, SetEnabled
from corral.jobs.redblack import deployed_after, next_sequence, reconcile_red_black, start
from tests.domain.factories import finished, service_job, task


@pytest.mark.parametrize(
    ("before", "after"), [("v001", "v002"), ("9", "10"), ("", "1"), ("v", "v1"), ("a099", "a100")]
)
def test_the_next_sequence_keeps_its_width(before: str, after: str) -> None:
    assert next_sequence(before) == after


def pair(desired: int = 2):  # type: ignore[no-untyped-def]
    old = service_job(desired=desired, job_id="old")
    group = JobGroup("prod", "api", "v001")
    strategy = UpdateStrategy(RollingUpdate(min_healthy_s=5.0, progress_deadline_s=60.0))
    old = replace(old, descriptor=replace(old.descriptor, job_group=group, update_strategy=strategy))
    new = replace(
        old, id="new", descriptor=replace(old.descriptor, job_group=replace(group, sequence="v002"))
    )
    return old, start(new, old, 100.0)


def test_the_previous_job_is_the_latest_of_the_same_group() -> None:
    old, new = pair()
    other = replace(old, id="other", descriptor=replace(old.descriptor, application="else"))
    assert deployed_after(new, [old, other, new]) is old


def test_the_old_job_is_disabled_once_every_new_task_is_healthy_for_min_healthy_s() -> None:
    _, new = pair()
    tasks = [task(f"t{i}", TaskState.STARTED, None, "new", started_at=101.0) for i in range(2)]
    actions, wake = reconcile_red_black(new, tasks, 104.0)
    assert actions == [] and wake == 106.0
    actions, _ = reconcile_red_black(new, tasks, 106.0)
    [change, disable] = actions
    assert isinstance(change, ChangeJob) and change.job.red_black is not None
    assert change.job.red_black.phase is RedBlackPhase.DONE
    assert disable == SetEnabled("old", False, "red/black deploy of new")


def test_a_new_job_that_fails_is_disabled_and_the_old_serves_on() -> None:
    _, new = pair()
    sick = task("t1", TaskState.STARTED, None, "new", started_at=101.0)
    sick = replace(sick, probes=ProbeResult(ready=HealthStatus.UNHEALTHY, detail="answered 500"))
    [change], _ = reconcile_red_black(new, [sick], 102.0)
    assert isinstance(change, ChangeJob)
    job = change.job
    assert job.red_black is not None and job.red_black.phase is RedBlackPhase.FAILED
    assert job.descriptor.service is not None and not job.descriptor.service.enabled
    crashed = finished("t2", FinishedReason.FAILED, 103.0, None, job_id="new")
    [change], _ = reconcile_red_black(new, [crashed], 104.0)
    assert isinstance(change, ChangeJob) and "ended failed" in change.job.red_black.detail  # type: ignore[union-attr]


def test_a_new_job_that_never_becomes_healthy_misses_its_deadline() -> None:
    _, new = pair()
    starting = [task("t1", TaskState.LAUNCHED, None, "new")]
    assert reconcile_red_black(new, starting, 159.0)[0] == []
    [change], _ = reconcile_red_black(new, starting, 160.0)
    assert isinstance(change, ChangeJob) and "no progress for 60s" in change.job.red_black.detail  # type: ignore[union-attr]
