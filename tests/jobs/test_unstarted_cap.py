"""The per-job cap on tasks created but not yet Started (``max_unstarted_tasks_per_job``)."""

from __future__ import annotations

from corral.domain.job import RetryKind, RetryPolicy
from corral.domain.states import TASK_STATE_RANK, FinishedReason, JobState, TaskState
from corral.jobs import CreateTask, JobManagerConfig, reconcile
from tests.domain.factories import batch_job, finished, service_job, task
from tests.jobs.simulator import Sim

R = FinishedReason
S = TaskState
CFG = JobManagerConfig(max_unstarted_tasks_per_job=1000)


def creates(actions: tuple[object, ...]) -> list[CreateTask]:
    return [a for a in actions if isinstance(a, CreateTask)]


def test_a_big_batch_creates_only_up_to_the_cap() -> None:
    made = creates(reconcile(batch_job(5000), [], 1.0, CFG).actions)
    assert [a.index for a in made] == list(range(1000))


def test_more_tasks_are_created_as_earlier_ones_start() -> None:
    tasks = [task(f"s{i}", S.STARTED, i) for i in range(400)]
    tasks += [task(f"a{i}", S.ACCEPTED, i) for i in range(400, 1000)]
    made = creates(reconcile(batch_job(5000), tasks, 1.0, CFG).actions)
    assert [a.index for a in made] == list(range(1000, 1400))


def test_launched_and_disconnected_before_starting_count_as_unstarted() -> None:
    cfg = JobManagerConfig(max_unstarted_tasks_per_job=3)
    tasks = [
        task("l", S.LAUNCHED, 0, host_id="h", updated_at=1.0),
        task("i", S.START_INITIATED, 1, host_id="h", updated_at=1.0),
        task("d", S.DISCONNECTED, 2, host_id="h", disconnected_from=S.LAUNCHED, updated_at=1.0),
        task("r", S.DISCONNECTED, 3, host_id="h", disconnected_from=S.STARTED, updated_at=1.0),
        finished("f", R.NORMAL, 1.0, 4),
    ]
    assert creates(reconcile(batch_job(10), tasks, 2.0, cfg).actions) == []
    tasks[0] = task("l", S.STARTED, 0, host_id="h")
    assert [a.index for a in creates(reconcile(batch_job(10), tasks, 2.0, cfg).actions)] == [5]


def test_retries_count_against_the_cap_too() -> None:
    cfg = JobManagerConfig(max_unstarted_tasks_per_job=2, crash_loop_after=0)
    retry = RetryPolicy(RetryKind.IMMEDIATE, retries=3)
    tasks = [finished(f"f{i}", R.FAILED, 1.0, i) for i in range(5)]
    made = creates(reconcile(batch_job(5, retry=retry), tasks, 2.0, cfg).actions)
    assert [(a.index, a.attempt) for a in made] == [(0, 1), (1, 1)]


def test_a_service_grows_as_its_tasks_start() -> None:
    cfg = JobManagerConfig(max_unstarted_tasks_per_job=10)
    assert len(creates(reconcile(service_job(50, max=50), [], 1.0, cfg).actions)) == 10
    tasks = [task(f"s{i}", S.STARTED, None) for i in range(7)] + [
        task(f"a{i}", S.ACCEPTED, None) for i in range(3)
    ]
    assert len(creates(reconcile(service_job(50, max=50), tasks, 1.0, cfg).actions)) == 7


def test_zero_means_no_cap() -> None:
    cfg = JobManagerConfig(max_unstarted_tasks_per_job=0)
    assert len(creates(reconcile(batch_job(3000), [], 1.0, cfg).actions)) == 3000


def test_a_5000_task_batch_completes_under_a_cap_of_1000() -> None:
    sim = Sim(batch_job(5000), CFG)
    started = TASK_STATE_RANK[S.STARTED]
    for _ in range(20):
        if sim.job.state is JobState.FINISHED:
            break
        sim.settle_round(exit_code=0)
        assert sum(1 for t in sim.live() if t.rank < started) <= 1000
    assert sim.job.state is JobState.FINISHED and sim.job.reason is R.NORMAL
    assert len(sim.tasks) == 5000
