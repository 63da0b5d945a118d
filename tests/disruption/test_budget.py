"""The disruption allowance: each policy, the rates, the windows, the defaults, and what a job waits for."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from corral.disruption.budget import UNLIMITED, BudgetState, allowance, may_relocate, recent_to_keep
from corral.domain.disruption import DisruptionBudget, RatePerInterval, SelfManaged, TimeWindow
from corral.domain.states import JobType, TaskState
from tests.domain.factories import task

SERVICE, BATCH = JobType.SERVICE, JobType.BATCH
NOW = datetime(2026, 3, 9, 12, tzinfo=UTC).timestamp()  # Monday noon UTC


def state(
    desired: int, ready: int, in_flight: int = 0, job_type: JobType = SERVICE, **rest: object
) -> BudgetState:
    return BudgetState(job_type, desired, ready, in_flight, **rest)  # type: ignore[arg-type]


# --- availability_percentage


def test_availability_leaves_the_tasks_above_the_required_ready() -> None:
    budget = DisruptionBudget(availability_percentage=75)
    assert allowance(budget, state(4, 4), NOW).count == 1
    assert allowance(budget, state(8, 8), NOW).count == 2


def test_availability_waits_when_only_the_required_are_ready() -> None:
    got = allowance(DisruptionBudget(availability_percentage=75), state(4, 3), NOW)
    assert got.count == 0
    assert got.kind == "budget"
    assert got.reason == "disruption budget: 3 of 4 tasks must stay ready (availability 75 %), 3 are"
    assert got.next_at is None  # time alone changes nothing


def test_availability_counts_disruptions_in_flight() -> None:
    budget = DisruptionBudget(availability_percentage=50)
    assert allowance(budget, state(10, 10, in_flight=3), NOW).count == 2
    got = allowance(budget, state(10, 10, in_flight=5), NOW)
    assert got.count == 0
    assert got.reason.endswith("10 are and 5 are being moved")


def test_availability_rounds_required_up_without_float_noise() -> None:
    # 10 * 70 / 100 is 7.000000000000001 in floating point: still 7 required.
    assert allowance(DisruptionBudget(availability_percentage=70), state(10, 10), NOW).count == 3
    assert allowance(DisruptionBudget(availability_percentage=75), state(3, 3), NOW).count == 0  # 2.25 -> 3


def test_availability_never_goes_negative() -> None:
    assert allowance(DisruptionBudget(availability_percentage=90), state(10, 4, in_flight=2), NOW).count == 0


# --- unhealthy_tasks


def test_unhealthy_tasks_counts_the_unready_and_the_moving() -> None:
    budget = DisruptionBudget(unhealthy_tasks=2)
    assert allowance(budget, state(5, 5), NOW).count == 2
    assert allowance(budget, state(5, 4), NOW).count == 1
    got = allowance(budget, state(5, 4, in_flight=1), NOW)
    assert got.count == 0
    assert got.reason == (
        "disruption budget: at most 2 of 5 tasks may be down at a time, 1 not ready and 1 is being moved"
    )


def test_unhealthy_tasks_with_more_ready_than_desired() -> None:
    assert allowance(DisruptionBudget(unhealthy_tasks=2), state(5, 6), NOW).count == 2


# --- relocation_limit


def test_relocation_limit_moves_a_service_one_at_a_time_while_all_are_ready() -> None:
    budget = DisruptionBudget(relocation_limit=2)
    assert allowance(budget, state(3, 3), NOW).count == 1
    assert allowance(budget, state(3, 2), NOW).count == 0
    assert allowance(budget, state(3, 3, in_flight=1), NOW).count == 0


def test_relocation_limit_does_not_limit_a_batch_job_concurrency() -> None:
    got = allowance(DisruptionBudget(relocation_limit=1), state(5, 0, job_type=BATCH), NOW)
    assert got.count == UNLIMITED
    assert got.unlimited


def test_may_relocate_counts_each_task_moves() -> None:
    budget = DisruptionBudget(relocation_limit=2)
    assert may_relocate(task("t1", TaskState.STARTED, relocations=1), budget) is None
    assert may_relocate(task("t1", TaskState.STARTED, relocations=2), budget) == (
        "moved 2 times, its job's limit is 2"
    )
    assert may_relocate(task("t1", TaskState.STARTED, relocations=9), None) is None
    assert (
        may_relocate(task("t1", TaskState.STARTED, relocations=9), DisruptionBudget(unhealthy_tasks=1))
        is None
    )


def test_may_relocate_with_a_limit_of_zero() -> None:
    assert may_relocate(task(relocations=0), DisruptionBudget(relocation_limit=0)) == (
        "moved 0 times, its job's limit is 0"
    )


# --- self_managed


def test_self_managed_waits_for_its_timeout_from_the_drain() -> None:
    budget = DisruptionBudget(self_managed=SelfManaged(relocation_timeout_s=300))
    since = NOW - 100
    got = allowance(budget, state(4, 4, draining_since=since), NOW)
    assert got.count == 0
    assert got.kind == "self_managed"
    assert got.reason == (
        "self-managed: the job moves its own tasks; Corral moves them from 2026-03-09 12:03:20 UTC (in 200 s)"
    )
    assert got.next_at == since + 300


def test_self_managed_is_unlimited_after_its_timeout() -> None:
    budget = DisruptionBudget(self_managed=SelfManaged(relocation_timeout_s=300))
    assert allowance(budget, state(4, 1, in_flight=3, draining_since=NOW - 300), NOW).unlimited


def test_self_managed_with_nothing_draining_moves_nothing() -> None:
    got = allowance(DisruptionBudget(self_managed=SelfManaged()), state(4, 4), NOW)
    assert (got.count, got.next_at) == (0, None)


def test_self_managed_after_its_timeout_still_follows_its_rate() -> None:
    budget = DisruptionBudget(self_managed=SelfManaged(60), rate_per_interval=RatePerInterval(2, 60))
    assert allowance(budget, state(4, 4, draining_since=NOW - 60), NOW).count == 2


# --- no budget


def test_a_service_without_a_budget_moves_one_at_a_time_while_all_are_ready() -> None:
    assert allowance(None, state(1, 1), NOW).count == 1  # even a single task: make before break
    assert allowance(None, state(20, 20), NOW).count == 1
    assert allowance(None, state(20, 19), NOW).count == 0
    assert allowance(None, state(20, 20, in_flight=1), NOW).count == 0


def test_a_batch_job_without_a_budget_is_unlimited() -> None:
    got = allowance(None, state(50, 0, in_flight=10, job_type=BATCH), NOW)
    assert got.unlimited
    assert (got.kind, got.reason, got.next_at) == ("", "", None)


# --- rates


def test_rate_per_interval_counts_the_recent_starts() -> None:
    budget = DisruptionBudget(unhealthy_tasks=10, rate_per_interval=RatePerInterval(tasks=2, interval_s=60))
    assert allowance(budget, state(10, 10), NOW).count == 2
    assert allowance(budget, state(10, 10, recent=(NOW - 10,)), NOW).count == 1
    assert allowance(budget, state(10, 10, recent=(NOW - 60, NOW - 61)), NOW).count == 2  # aged out


def test_rate_per_interval_used_up_says_when_the_next_may_start() -> None:
    budget = DisruptionBudget(unhealthy_tasks=10, rate_per_interval=RatePerInterval(tasks=2, interval_s=60))
    got = allowance(budget, state(10, 10, recent=(NOW - 48, NOW - 5, NOW - 300)), NOW)
    assert got.count == 0
    assert got.kind == "rate"
    assert got.reason == "rate: 2 disruptions per 60 s already used, next in 12 s"
    assert got.next_at == NOW + 12


def test_rate_percent_per_hour() -> None:
    budget = DisruptionBudget(unhealthy_tasks=100, rate_percent_per_hour=10)
    hour = tuple(NOW - 600 * i for i in range(4))  # 4 in the last hour
    assert allowance(budget, state(50, 50, recent=hour), NOW).count == 1  # 10 % of 50 = 5 an hour
    got = allowance(budget, state(50, 50, recent=(*hour, NOW - 3000)), NOW)
    assert got.count == 0
    assert got.reason == "rate: 5 disruptions per hour (10 % of 50) already used, next in 600 s"
    assert got.next_at == NOW - 3000 + 3600


def test_rate_percent_per_hour_allows_at_least_one() -> None:
    budget = DisruptionBudget(unhealthy_tasks=100, rate_percent_per_hour=1)
    assert allowance(budget, state(50, 50), NOW).count == 1  # 0.5 rounds down, but at least one
    assert allowance(budget, state(50, 50, recent=(NOW - 3599,)), NOW).count == 0
    assert allowance(budget, state(50, 50, recent=(NOW - 3600,)), NOW).count == 1


# --- windows


def test_outside_its_windows_nothing_starts() -> None:
    monday_9 = TimeWindow(days=("mon",), start_hour=9, end_hour=10, time_zone="America/Los_Angeles")
    budget = DisruptionBudget(unhealthy_tasks=5, windows=(monday_9,))
    got = allowance(budget, state(10, 10), NOW)  # Monday 05:00 in Los Angeles
    assert got.count == 0
    assert got.kind == "window"
    assert got.reason == "outside its disruption windows (next opens mon 09:00 America/Los_Angeles)"
    assert got.next_at == NOW + 4 * 3600
    assert allowance(budget, state(10, 10), NOW + 4 * 3600).count == 5


def test_a_window_that_never_opens() -> None:
    budget = DisruptionBudget(unhealthy_tasks=5, windows=(TimeWindow(days=()),))
    got = allowance(budget, state(10, 10), NOW)
    assert (got.count, got.next_at) == (0, None)
    assert got.reason == "outside its disruption windows (none opens in the next 8 days)"


# --- the least of the limits


@pytest.mark.parametrize(
    ("budget", "count", "kind"),
    [
        (DisruptionBudget(unhealthy_tasks=3, rate_per_interval=RatePerInterval(5, 60)), 3, "budget"),
        (DisruptionBudget(unhealthy_tasks=3, rate_per_interval=RatePerInterval(1, 60)), 1, "rate"),
    ],
)
def test_the_least_of_policy_and_rate(budget: DisruptionBudget, count: int, kind: str) -> None:
    got = allowance(budget, state(10, 10), NOW)
    assert (got.count, got.kind) == (count, kind)


def test_when_the_policy_binds_time_alone_changes_nothing() -> None:
    closed = TimeWindow(days=("tue",))
    budget = DisruptionBudget(availability_percentage=100, windows=(closed,))
    got = allowance(budget, state(4, 4), NOW)
    assert (got.count, got.kind, got.next_at) == (0, "budget", None)


def test_when_window_and_rate_both_bind_the_answer_changes_when_both_have_opened() -> None:
    window = TimeWindow(days=("mon",), start_hour=12, end_hour=13)  # opens at NOW
    budget = DisruptionBudget(unhealthy_tasks=5, rate_per_interval=RatePerInterval(1, 60), windows=(window,))
    got = allowance(budget, state(10, 10, recent=(NOW - 50,)), NOW - 10)  # window shut, rate used
    assert got.count == 0
    assert got.kind == "window"  # named first
    assert got.next_at == NOW + 10  # the rate frees 10 s after the window opens


def test_recent_to_keep_is_what_the_rate_still_counts() -> None:
    recent = (NOW - 4000, NOW - 100, NOW - 10)
    per_minute = DisruptionBudget(unhealthy_tasks=1, rate_per_interval=RatePerInterval(1, 60))
    assert recent_to_keep(per_minute, recent, NOW) == (NOW - 10,)
    assert (
        recent_to_keep(DisruptionBudget(unhealthy_tasks=1, rate_percent_per_hour=5), recent, NOW)
        == recent[1:]
    )
    assert recent_to_keep(DisruptionBudget(unhealthy_tasks=1), recent, NOW) == ()
    assert recent_to_keep(None, recent, NOW) == ()
