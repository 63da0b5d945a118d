"""fleet/policy.py: the budget's size and the knobs' validation."""

from __future__ import annotations

import pytest

from corral.fleet import FleetPolicy


@pytest.mark.parametrize(
    ("running", "budget"), [(0, 5), (100, 5), (599, 5), (600, 6), (2000, 20), (10_000, 100)]
)
def test_the_budget_is_five_or_one_percent_of_the_running_tasks_whichever_is_larger(
    running: int, budget: int
) -> None:
    assert FleetPolicy().budget(running) == budget


def test_a_percentage_that_is_whole_on_paper_is_whole() -> None:
    assert FleetPolicy(unknown_kill_min=0, unknown_kill_pct=1.1).budget(1000) == 11


@pytest.mark.parametrize(
    "changes",
    [
        {"heartbeat_timeout_s": 0.0},
        {"lost_after_s": float("inf")},
        {"settle_s": -1.0},
        {"unknown_kill_min": -1},
        {"unknown_kill_pct": 101.0},
        {"quorum_pct": -5.0},
        {"quorum_pct": float("nan")},
    ],
)
def test_impossible_knobs_are_refused(changes: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(changes))):
        FleetPolicy(**changes)
