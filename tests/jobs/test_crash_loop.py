"""jobs/crash_loop.py: the job-wide failure streak and the backoff it puts on a job's new tasks."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from corral.domain.job import RetryKind, RetryPolicy
from corral.domain.states import TASK_STATE_RANK, FinishedReason, TaskState
from corral.domain.task import Task
from corral.jobs import CreateTask, JobManagerConfig, reconcile
from corral.jobs.batch import latest_by_index
from corral.jobs.crash_loop import Streak, crash_loop_delay_s, failure_streak, not_before
from tests.domain.factories import batch_job, finished, service_job, task
from tests.jobs.simulator import Event, Sim

R = FinishedReason
S = TaskState
CFG = JobManagerConfig(
    crash_loop_after=3, crash_loop_initial_s=5.0, crash_loop_max_s=300.0, service_stable_after_s=60.0
)
IMMEDIATE_5 = RetryPolicy(RetryKind.IMMEDIATE, retries=5)


def failed(task_id: str, at: float, index: int | None = None, **changes: object) -> Task:
    """A task created with the job (so no failure came before it) that failed at ``at``."""
    return finished(task_id, R.FAILED, at, index, created_at=0.0, started_at=at - 0.5, **changes)


def streak(tasks: list[Task], now: float = 1000.0, *, service: bool = True) -> Streak:
    return failure_streak(tasks, now, CFG, service=service)


# -- the streak ----------------------------------------------------------------------------------


def test_user_failures_in_a_row_make_the_streak() -> None:
    tasks = [failed("a", 10.0), failed("b", 20.0), failed("c", 30.0)]
    assert streak(tasks) == Streak(3, 30.0)


def test_oom_invalid_request_and_runtime_limit_count_as_failures() -> None:
    tasks = [
        failed("a", 10.0, exit_code=137),
        finished("b", R.INVALID_REQUEST, 20.0, None),
        finished("c", R.RUNTIME_LIMIT_EXCEEDED, 30.0, None, created_at=1.0, started_at=2.0),
    ]
    assert streak(tasks).failures == 3


def test_kills_scale_downs_and_system_errors_count_neither_way() -> None:
    tasks = [
        failed("a", 10.0),
        finished("k", R.KILLED, 15.0, None, created_at=1.0),
        finished("s", R.SCALED_DOWN, 16.0, None, created_at=1.0),
        finished("x", R.LOCAL_SYSTEM_ERROR, 17.0, None, created_at=1.0),
        finished("l", R.LOST, 18.0, None, created_at=1.0),
        failed("b", 20.0),
    ]
    assert streak(tasks) == Streak(2, 20.0)


def test_a_batch_task_finishing_normally_resets_the_streak() -> None:
    tasks = [
        failed("a", 10.0, index=0),
        failed("b", 20.0, index=1),
        finished("ok", R.NORMAL, 25.0, 2, created_at=1.0),
        failed("c", 30.0, index=3),
    ]
    assert streak(tasks, service=False) == Streak(1, 30.0)


def test_a_service_task_that_stayed_up_resets_the_streak_even_while_still_running() -> None:
    tasks = [
        failed("a", 10.0),
        failed("b", 20.0),
        task("up", S.STARTED, None, created_at=1.0, started_at=5.0),
    ]
    # Up since 5: stable at 65, after both failures.
    assert streak(tasks, now=64.0).failures == 2
    assert streak(tasks, now=65.0).failures == 0
    tasks.append(failed("c", 70.0))
    assert streak(tasks, now=100.0) == Streak(1, 70.0)


def test_a_service_task_that_ended_before_it_was_stable_is_no_success() -> None:
    short = finished("short", R.NORMAL, 30.0, None, created_at=1.0, started_at=25.0)
    assert streak([failed("a", 10.0), short, failed("b", 40.0)]).failures == 2


def test_the_streak_carries_on_from_the_newest_task() -> None:
    # The failures before "w" left memory; "w" recorded the streak (4) when it was created at 50.
    waiting = task("w", S.ACCEPTED, None, created_at=50.0, job_failure_streak=4)
    assert streak([waiting]) == Streak(4, 50.0)
    assert streak([waiting, failed("b", 60.0)]) == Streak(5, 60.0)
    # A failure recorded before "w" was created is already in its count.
    assert streak([waiting, failed("old", 40.0)]) == Streak(4, 50.0)


# -- the backoff ---------------------------------------------------------------------------------


def test_the_backoff_starts_at_the_threshold_doubles_and_is_capped() -> None:
    delays = [crash_loop_delay_s(CFG, n) for n in range(12)]
    assert delays == [0, 0, 0, 5, 10, 20, 40, 80, 160, 300, 300, 300]
    assert crash_loop_delay_s(JobManagerConfig(crash_loop_after=0), 1000) == 0.0
    assert not_before(Streak(2, 10.0), 12.0, CFG) is None
    assert not_before(Streak(5, 10.0), 12.0, CFG) == 30.0


def test_a_crash_looping_service_replaces_its_tasks_ever_later() -> None:
    job = service_job(1, retry=IMMEDIATE_5)
    history: list[Task] = []
    readies = []
    now = 0.0
    for n in range(7):
        actions = reconcile(job, history, now, CFG).actions
        assert len(actions) == 1 and isinstance(actions[0], CreateTask)
        create = actions[0]
        assert create.job_failure_streak == n
        readies.append(create.ready_at - now)
        # The new task runs as soon as it may, and fails one second later.
        start = max(now, create.ready_at)
        history.append(
            task(
                f"t{n}",
                S.FINISHED,
                None,
                created_at=now,
                started_at=start,
                finished_at=start + 1.0,
                reason=R.FAILED,
                resubmit_of=create.replaces,
                job_failure_streak=create.job_failure_streak,
            )
        )
        now = start + 1.0
    # Immediate retries: no wait until the third failure, then 5 s doubling.
    assert readies == [0, 0, 0, 5, 10, 20, 40]


def test_the_backoff_takes_the_later_of_the_job_and_the_retry_policy() -> None:
    slow = RetryPolicy(RetryKind.DELAYED, retries=5, initial_delay_ms=60_000, delay_ms=60_000)
    tasks = [failed("a", 10.0, 0), failed("b", 20.0, 1), failed("c", 30.0, 2, attempt=1)]
    actions = reconcile(batch_job(3, retry=slow), tasks, 31.0, CFG).actions
    # Every index retries: the policy's 60 s beats the job's 5 s (3 failures in a row).
    assert sorted(a.ready_at for a in actions if isinstance(a, CreateTask)) == [70.0, 80.0, 90.0]
    fast = RetryPolicy(RetryKind.IMMEDIATE, retries=5)
    actions = reconcile(batch_job(3, retry=fast), tasks, 31.0, CFG).actions
    assert [a.ready_at for a in actions if isinstance(a, CreateTask)] == [35.0, 35.0, 35.0]
    assert {a.job_failure_streak for a in actions if isinstance(a, CreateTask)} == {3}


def test_one_crash_looping_job_does_not_slow_another() -> None:
    looping = [failed(f"f{i}", 10.0 * i) for i in range(1, 6)]
    bad = reconcile(service_job(1, retry=IMMEDIATE_5), looping, 51.0, CFG).actions
    good = reconcile(service_job(3, retry=IMMEDIATE_5, job_id="j2"), [], 51.0, CFG).actions
    assert [a.ready_at for a in bad if isinstance(a, CreateTask)] == [70.0]
    assert [a.ready_at for a in good if isinstance(a, CreateTask)] == [51.0] * 3


def test_switched_off_the_job_streak_is_not_even_counted() -> None:
    off = JobManagerConfig(crash_loop_after=0)
    looping = [failed(f"f{i}", 10.0 * i) for i in range(1, 6)]
    actions = reconcile(service_job(1, retry=IMMEDIATE_5), looping, 51.0, off).actions
    assert actions == (CreateTask("j1", None, 51.0, 1, 0, "f5"),)


# -- properties ----------------------------------------------------------------------------------

AGENT = ("place",) * 3 + ("report",) * 5 + ("lose", "reconnect", "advance", "advance")
PROPERTY_CFG = JobManagerConfig(
    launched_timeout_s=20.0,
    start_initiated_timeout_s=40.0,
    lost_after_s=25.0,
    service_stable_after_s=15.0,
    crash_loop_after=2,
    crash_loop_initial_s=1.0,
    crash_loop_max_s=30.0,
    max_unstarted_tasks_per_job=3,
)
events = st.lists(st.tuples(st.sampled_from(AGENT), st.integers(0, 30), st.integers(0, 30)), max_size=80)


def _in_memory(tasks: list[Task]) -> list[Task]:
    """What the leader keeps of a job: finished tasks leave once a newer task replaces them."""
    replaced = {t.resubmit_of for t in tasks if t.resubmit_of is not None}
    latest = {t.id for t in latest_by_index(tasks).values()}
    gone = replaced | {t.id for t in tasks if t.index is not None and t.id not in latest}
    return [t for t in tasks if not (t.is_finished and t.id in gone)]


def _unstarted(sim: Sim) -> int:
    return sum(1 for t in sim.live() if t.rank < TASK_STATE_RANK[S.STARTED])


@settings(max_examples=150, deadline=None)
@given(st.booleans(), st.integers(1, 8), events)
def test_the_streak_is_the_same_from_what_memory_keeps(service: bool, size: int, played: list[Event]) -> None:
    job = service_job(size, retry=IMMEDIATE_5) if service else batch_job(size, retry=IMMEDIATE_5)
    sim = Sim(job, PROPERTY_CFG)
    sim.reconcile()
    for event in played:
        sim.play(event)
        everything = list(sim.tasks.values())
        full = failure_streak(everything, sim.now, PROPERTY_CFG, service=service)
        kept = failure_streak(_in_memory(everything), sim.now, PROPERTY_CFG, service=service)
        assert kept == full
        assert full.failures <= sum(1 for t in everything if t.reason is R.FAILED)
        # The cap on created-but-not-started tasks holds after every step.
        assert _unstarted(sim) <= PROPERTY_CFG.max_unstarted_tasks_per_job
