"""Disruption budgets (Titus's model): how much voluntary disruption a job accepts, how fast, and when.

A budget is a policy — how many tasks must stay up — plus a rate and optional time windows. Every voluntary
disruption (a drain, a host-group upgrade, the autoscaler's consolidation) asks the job's budget first
(``corral.disruption``); involuntary ones (a host lost, a task crashing) do not ask, and deploys follow their
own update strategy. Tasks that are not healthy do not use the budget up.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True)
class SelfManaged:
    """The job moves its own tasks; Corral waits ``relocation_timeout_s`` before it moves them itself."""

    relocation_timeout_s: float = 600.0


@dataclass(frozen=True, slots=True)
class RatePerInterval:
    tasks: int = 1
    interval_s: float = 60.0


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """Voluntary disruptions are allowed on ``days`` from ``start_hour`` to ``end_hour`` (local time)."""

    days: tuple[str, ...] = DAYS
    start_hour: int = 0
    end_hour: int = 24
    time_zone: str = "UTC"


@dataclass(frozen=True, slots=True)
class DisruptionBudget:
    """Exactly one policy; at most one rate (none: as fast as the policy allows); any number of windows
    (none: at any time)."""

    availability_percentage: float | None = None  # at least this % of desired ready at all times
    unhealthy_tasks: int | None = None  # at most this many tasks not ready at a time
    relocation_limit: int | None = None  # each task is moved at most this many times
    self_managed: SelfManaged | None = None
    rate_per_interval: RatePerInterval | None = None
    rate_percent_per_hour: float | None = None
    windows: tuple[TimeWindow, ...] = field(default_factory=tuple)

    @property
    def policy(self) -> str:
        for name in ("availability_percentage", "unhealthy_tasks", "relocation_limit", "self_managed"):
            if getattr(self, name) is not None:
                return name
        return "none"
