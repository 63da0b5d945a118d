"""Which tasks a scale-down may move: a budget that lets one move at a time does not block; a closed window,
a self-managed job, a relocation limit reached or a job below its budget with nothing moving does. And the
provider backoff: exponential, capped, fully jittered."""

from __future__ import annotations

from corral.autoscale.backoff import BASE_S, CAP_S, THROTTLED_BASE_S, retry_after
from corral.autoscale.movable import blocker, job_blocker, task_blocker
from corral.domain.disruption import DisruptionBudget, RatePerInterval, SelfManaged, TimeWindow
from tests.disruption.test_relocation import NOW, batch, svc, up


def test_a_budget_that_lets_one_move_does_not_block() -> None:
    job = svc(4, DisruptionBudget(availability_percentage=75))
    tasks = [up(f"t{i}", f"h{i}") for i in range(4)]
    assert blocker(job, tasks, tasks[:1], NOW) is None


def test_a_service_at_its_floor_with_nothing_moving_blocks() -> None:
    job = svc(4, DisruptionBudget(availability_percentage=100))
    tasks = [up(f"t{i}", f"h{i}") for i in range(4)]
    why = blocker(job, tasks, tasks[:1], NOW)
    assert why is not None and why.kind == "budget"
    assert "4 of 4 tasks must stay ready" in why.detail


def test_a_move_in_flight_frees_the_budget_later() -> None:
    job = svc(4, DisruptionBudget(availability_percentage=75))
    tasks = [up("t0", "h0", relocating_to="t9"), *[up(f"t{i}", f"h{i}") for i in range(1, 4)]]
    assert blocker(job, tasks, tasks[1:2], NOW) is None
    why = blocker(job, tasks, tasks[:1], NOW)  # that task is moving already
    assert why is not None and why.kind == "moving"


def test_the_job_verdict_is_the_hosts_verdict_once_its_tasks_may_move() -> None:
    """The shell asks the job's budget once per round and each task on its own: that must say what
    ``blocker`` says for any host's tasks."""
    for pct in (75, 100):
        job = svc(4, DisruptionBudget(availability_percentage=pct))
        tasks = [up("t0", "h0", relocating_to="t9"), *[up(f"t{i}", f"h{i}") for i in range(1, 4)]]
        for on_host in ([tasks[0]], [tasks[1]], tasks[1:3], tasks):
            split = next((w for w in map(lambda t: task_blocker(job, t), on_host) if w), None)
            assert (split or job_blocker(job, tasks, NOW)) == blocker(job, tasks, on_host, NOW)


def test_windows_self_managed_and_relocation_limits_block() -> None:
    never_now = TimeWindow(days=("sun",), start_hour=3, end_hour=4)
    closed = svc(2, DisruptionBudget(unhealthy_tasks=1, windows=(never_now,)))
    tasks = [up("t1", "h1"), up("t2", "h2")]
    why = blocker(closed, tasks, tasks[:1], NOW)
    assert why is not None and "window" in why.detail
    managed = svc(2, DisruptionBudget(self_managed=SelfManaged(relocation_timeout_s=300)))
    assert blocker(managed, tasks, tasks[:1], NOW) is not None
    limited = svc(2, DisruptionBudget(relocation_limit=1))
    moved = [up("t1", "h1", relocations=1), up("t2", "h2")]
    why = blocker(limited, moved, moved[:1], NOW)
    assert why is not None and "limit is 1" in why.detail
    assert blocker(limited, moved, moved[1:], NOW) is None


def test_a_rate_slows_a_drain_but_does_not_block_it() -> None:
    budget = DisruptionBudget(unhealthy_tasks=5, rate_per_interval=RatePerInterval(tasks=1, interval_s=60))
    job = svc(5, budget, disruptions=(NOW - 45,))
    tasks = [up(f"t{i}", "h1") for i in range(5)]
    assert blocker(job, tasks, tasks, NOW) is None


def test_batch_tasks_never_block() -> None:
    job = batch(3)
    tasks = [up(f"b{i}", "h1", job_id="b1") for i in range(3)]
    assert blocker(job, tasks, tasks, NOW) is None


def test_backoff_grows_exponentially_with_full_jitter_up_to_its_cap() -> None:
    assert retry_after(0, 0.9) == 0.0
    assert retry_after(1, 1.0) == BASE_S
    assert retry_after(3, 1.0) == 4 * BASE_S
    assert retry_after(3, 0.25) == BASE_S  # a share of the ceiling: callers spread out
    assert retry_after(50, 1.0) == CAP_S
    assert retry_after(1, 1.0, throttled=True) == THROTTLED_BASE_S
    assert retry_after(2, -3.0) == 0.0 and retry_after(2, 7.0) == 2 * BASE_S
