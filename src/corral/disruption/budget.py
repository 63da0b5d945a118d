"""A job's disruption budget: how many more voluntary disruptions may start now, and if none, why.

The answer is the least of three limits: the budget's policy (how many tasks must stay up), its rate (how
many disruptions per interval) and its windows (when). Unready tasks do not use the budget up: stopping a
task that is not ready takes nothing away, so the planner never asks for it.

Policies (``DisruptionBudget.policy``):

- ``availability_percentage p``: ``ceil(desired * p / 100)`` tasks must stay ready, and every disruption in
  flight may still take one away: ``ready - required - in_flight``.
- ``unhealthy_tasks n``: at most ``n`` tasks not ready or being moved: ``n - (desired - ready) - in_flight``.
- ``relocation_limit n``: caps how many times each task is moved (``may_relocate``); the concurrency is the
  job type's default (a service moves one task at a time while all are ready; a batch job is unlimited).
  Titus allows this policy for batch jobs only; Corral accepts it for services with that default beside it.
- ``self_managed``: the job moves its own tasks; Corral moves none until ``relocation_timeout_s`` after the
  drain began, then any (still subject to the rate and windows).
- none given: a service as ``unhealthy_tasks 1`` (one at a time, only while all are ready); batch unlimited.

Pure: the clock is ``now`` (unix seconds), passed in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from corral.disruption.windows import describe_opening, next_opening
from corral.domain.disruption import DisruptionBudget
from corral.domain.states import JobType
from corral.domain.task import Task

UNLIMITED = 1 << 31  # an allowance with no limit (more disruptions than any job has tasks)
HOUR_S = 3600.0

# What a service without a budget gets: one task at a time, and only while all are ready (a percentage
# such as 95 % available would never let a service of fewer than 20 tasks move). Batch: no limit.
DEFAULT_SERVICE = DisruptionBudget(unhealthy_tasks=1)


@dataclass(frozen=True, slots=True)
class BudgetState:
    """What the budget is weighed against, for one job."""

    job_type: JobType
    desired: int  # a service: desired if enabled, else 0; a batch job: its live tasks
    ready: int  # its tasks ready now
    in_flight: int  # its voluntary disruptions in progress that use the budget
    recent: tuple[float, ...] = ()  # when its recent voluntary disruptions started (the rate counts them)
    draining_since: float | None = None  # the earliest drain among its candidates' hosts (self_managed)


@dataclass(frozen=True, slots=True)
class Allowance:
    """How many more voluntary disruptions may start now, the limit that binds and why, and when the answer
    may change by time alone (so the shell knows when to look again)."""

    count: int
    kind: str = ""  # the binding limit: "budget" | "rate" | "window" | "self_managed" ("" when unlimited)
    reason: str = ""  # that limit in words; with count 0, what the job waits for
    next_at: float | None = None

    @property
    def unlimited(self) -> bool:
        return self.count >= UNLIMITED


def effective(budget: DisruptionBudget | None, job_type: JobType) -> DisruptionBudget | None:
    """The budget that applies: the job's own, or its type's default (None: batch, unlimited)."""
    if budget is not None:
        return budget
    return DEFAULT_SERVICE if job_type is JobType.SERVICE else None


def allowance(budget: DisruptionBudget | None, state: BudgetState, now: float) -> Allowance:
    """How many more voluntary disruptions of this job may start at ``now``; the least of its policy, rate
    and windows. With several limits at 0, the reason names the policy first, then the window, the rate."""
    budget = effective(budget, state.job_type)
    if budget is None:
        return Allowance(UNLIMITED)
    limits = [_policy(budget, state, now), _window(budget, now), _rate(budget, state, now)]
    count = min(limit.count for limit in limits)
    binding = [limit for limit in limits if limit.count == count]
    if count >= UNLIMITED:
        return Allowance(UNLIMITED)
    # The answer changes by time alone only if every binding limit opens with time: then at the latest.
    openings = [limit.next_at for limit in binding]
    next_at = None if any(at is None for at in openings) else max(at for at in openings if at is not None)
    return Allowance(count, binding[0].kind, binding[0].reason, next_at)


def _policy(budget: DisruptionBudget, state: BudgetState, now: float) -> Allowance:
    policy = budget.policy
    if policy == "availability_percentage" and budget.availability_percentage is not None:
        p = budget.availability_percentage
        required = math.ceil(state.desired * p / 100 - 1e-9)
        count = max(0, state.ready - required - state.in_flight)
        reason = (
            f"disruption budget: {required} of {state.desired} tasks must stay ready (availability {p:g} %), "
            f"{state.ready} are{_moving(state.in_flight)}"
        )
        return Allowance(count, "budget", reason)
    if policy == "unhealthy_tasks" and budget.unhealthy_tasks is not None:
        return _unhealthy(budget.unhealthy_tasks, state)
    if policy == "self_managed" and budget.self_managed is not None:
        timeout = budget.self_managed.relocation_timeout_s
        if state.draining_since is None:
            return Allowance(0, "self_managed", "self-managed: the job moves its own tasks")
        opens = state.draining_since + timeout
        if now >= opens:
            return Allowance(UNLIMITED)
        reason = (
            f"self-managed: the job moves its own tasks; Corral moves them from {format_instant(opens)} "
            f"(in {in_seconds(opens - now)})"
        )
        return Allowance(0, "self_managed", reason, opens)
    # relocation_limit (or no policy at all): the job type's default concurrency.
    if state.job_type is JobType.SERVICE:
        return _unhealthy(1, state)
    return Allowance(UNLIMITED)


def _unhealthy(n: int, state: BudgetState) -> Allowance:
    unready = max(0, state.desired - state.ready)
    count = max(0, n - unready - state.in_flight)
    reason = (
        f"disruption budget: at most {n} of {state.desired} tasks may be down at a time, "
        f"{unready} not ready{_moving(state.in_flight)}"
    )
    return Allowance(count, "budget", reason)


def _moving(in_flight: int) -> str:
    if in_flight == 0:
        return ""
    return f" and {in_flight} {'is' if in_flight == 1 else 'are'} being moved"


def _window(budget: DisruptionBudget, now: float) -> Allowance:
    if not budget.windows:
        return Allowance(UNLIMITED)
    found = next_opening(budget.windows, now)
    if found is None:
        return Allowance(0, "window", "outside its disruption windows (none opens in the next 8 days)")
    at, window = found
    if at <= now or window is None:
        return Allowance(UNLIMITED)
    reason = f"outside its disruption windows (next opens {describe_opening(at, window)})"
    return Allowance(0, "window", reason, at)


def _rate(budget: DisruptionBudget, state: BudgetState, now: float) -> Allowance:
    if budget.rate_per_interval is not None:
        limit, interval = budget.rate_per_interval.tasks, budget.rate_per_interval.interval_s
        per = f"{limit} disruption{'s' if limit != 1 else ''} per {interval:g} s"
    elif budget.rate_percent_per_hour is not None:
        pct = budget.rate_percent_per_hour
        limit, interval = max(1, math.floor(pct * state.desired / 100 + 1e-9)), HOUR_S
        per = f"{limit} disruption{'s' if limit != 1 else ''} per hour ({pct:g} % of {state.desired})"
    else:
        return Allowance(UNLIMITED)
    used = sorted(at for at in state.recent if now - interval < at <= now)
    count = max(0, limit - len(used))
    if count > 0:
        frees_one = used[0] + interval if used else None  # one more may start once the oldest ages out
        return Allowance(count, "rate", f"rate: {per}, {len(used)} used", frees_one)
    # The oldest that must age out for one more to start.
    frees = used[len(used) - limit] + interval if limit > 0 else None
    if frees is None:
        return Allowance(0, "rate", f"rate: {per}")
    return Allowance(0, "rate", f"rate: {per} already used, next in {in_seconds(frees - now)}", frees)


def recent_to_keep(
    budget: DisruptionBudget | None, recent: tuple[float, ...], now: float
) -> tuple[float, ...]:
    """The disruption start times a job must keep for its rate to be counted (none without a rate)."""
    if budget is None:
        return ()
    if budget.rate_per_interval is not None:
        interval = budget.rate_per_interval.interval_s
    elif budget.rate_percent_per_hour is not None:
        interval = HOUR_S
    else:
        return ()
    return tuple(at for at in recent if at > now - interval)


def may_relocate(task: Task, budget: DisruptionBudget | None) -> str | None:
    """None if ``task`` may be moved (again), else why not: its job's relocation_limit is reached."""
    if budget is None or budget.relocation_limit is None or budget.policy != "relocation_limit":
        return None
    limit = budget.relocation_limit
    if task.relocations < limit:
        return None
    return f"moved {task.relocations} time{'s' if task.relocations != 1 else ''}, its job's limit is {limit}"


def format_instant(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def in_seconds(span: float) -> str:
    """A span in whole seconds, rounded up: ``12 s``."""
    return f"{max(0, math.ceil(span - 1e-9))} s"
