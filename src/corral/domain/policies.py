"""Validation of the parts of a job that say how it changes over time: health probes, the update strategy and
the disruption budget. Each rule a user can break has a stable code and names the field."""

from __future__ import annotations

import math
import re
import zoneinfo

from corral.domain.disruption import DAYS, DisruptionBudget
from corral.domain.errors import ValidationError
from corral.domain.health import HealthChecks, Probe
from corral.domain.rollout import RollingUpdate, UpdateStrategy

MAX_PROBE_INTERVAL_S = 3600.0
MAX_PROBE_FAILURES = 100
MAX_PROBE_DELAY_S = 24 * 3600.0
MAX_DEADLINE_S = 7 * 24 * 3600.0
MAX_CANARIES = 1000
PERCENT = re.compile(r"^(\d{1,3})%\Z")
HTTP_PATH = re.compile(r"^/[\x21-\x7e]{0,1023}\Z")


def fail(code: str, message: str, field: str) -> ValidationError:
    return ValidationError(code, message, field)


def validate_health(health: HealthChecks, ports: int, where: str = "container.health") -> None:
    for name in ("liveness", "readiness"):
        probe: Probe | None = getattr(health, name)
        if probe is not None:
            validate_probe(probe, ports, f"{where}.{name}")


def validate_probe(probe: Probe, ports: int, where: str) -> None:
    given = [k for k in ("http", "tcp", "exec") if getattr(probe, k) is not None]
    if len(given) != 1:
        raise fail(
            "invalid_probe", f"a probe is exactly one of http, tcp or exec, not {given or 'none'}", where
        )
    index = probe.port_index
    if index is not None and not 0 <= index < ports:
        raise fail(
            "invalid_probe_port",
            f"port_index {index} names none of the task's {ports} ports (container.resources.ports)",
            f"{where}.{given[0]}.port_index",
        )
    if probe.http is not None:
        if not HTTP_PATH.match(probe.http.path):
            raise fail(
                "invalid_probe",
                "an http probe's path starts with '/' and has no spaces",
                where + ".http.path",
            )
        if not 100 <= probe.http.expect_status <= 599:
            raise fail(
                "invalid_probe", "expect_status is an HTTP status, 100..599", where + ".http.expect_status"
            )
    if probe.exec is not None and not probe.exec.command:
        raise fail("invalid_probe", "an exec probe needs a command", where + ".exec.command")
    for name, low, high in (
        ("interval_s", 0.1, MAX_PROBE_INTERVAL_S),
        ("timeout_s", 0.1, MAX_PROBE_INTERVAL_S),
        ("initial_delay_s", 0.0, MAX_PROBE_DELAY_S),
    ):
        value = getattr(probe, name)
        if not (math.isfinite(value) and low <= value <= high):
            raise fail(
                "invalid_probe", f"{name} must be {low:g}..{high:g} seconds, not {value}", f"{where}.{name}"
            )
    if probe.timeout_s > probe.interval_s:
        raise fail("invalid_probe", "timeout_s cannot exceed interval_s", where + ".timeout_s")
    if not 1 <= probe.failures <= MAX_PROBE_FAILURES:
        raise fail("invalid_probe", f"failures must be 1..{MAX_PROBE_FAILURES}", where + ".failures")


def resolve(value: int | str, desired: int, *, round_up: bool) -> int:
    """A count or a percentage of ``desired`` ("25%") as a count (Kubernetes rounds surge up, unavailable
    down)."""
    if isinstance(value, int):
        return value
    match = PERCENT.match(value)
    if match is None:
        raise ValueError(f"{value!r} is neither a count nor a percentage")
    share = desired * int(match.group(1)) / 100
    return math.ceil(share) if round_up else math.floor(share)


def validate_update_strategy(strategy: UpdateStrategy, where: str = "update_strategy") -> None:
    rolling: RollingUpdate = strategy.rolling
    where = where + ".rolling"
    for name in ("max_unavailable", "max_surge"):
        value = getattr(rolling, name)
        if isinstance(value, bool) or (isinstance(value, int) and not 0 <= value <= 10_000):
            raise fail(
                "invalid_update_strategy", f"{name} must be 0..10000 or a percentage", f"{where}.{name}"
            )
        if isinstance(value, str):
            match = PERCENT.match(value)
            if match is None or int(match.group(1)) > 100:
                raise fail(
                    "invalid_update_strategy",
                    f"{name} {value!r} is neither a count nor a percentage such as '25%'",
                    f"{where}.{name}",
                )
    if (
        resolve(rolling.max_unavailable, 100, round_up=False) == 0
        and resolve(rolling.max_surge, 100, round_up=True) == 0
    ):
        raise fail(
            "invalid_update_strategy",
            "max_unavailable and max_surge cannot both be 0: the update could never replace a task",
            where + ".max_surge",
        )
    for name in ("min_healthy_s", "progress_deadline_s"):
        value = getattr(rolling, name)
        if not (math.isfinite(value) and 0 <= value <= MAX_DEADLINE_S):
            raise fail("invalid_update_strategy", f"{name} must be 0..{MAX_DEADLINE_S:g}", f"{where}.{name}")
    if rolling.progress_deadline_s <= rolling.min_healthy_s:
        raise fail(
            "invalid_update_strategy",
            "progress_deadline_s must be longer than min_healthy_s",
            where + ".progress_deadline_s",
        )
    if not 0 <= rolling.canaries <= MAX_CANARIES:
        raise fail("invalid_update_strategy", f"canaries must be 0..{MAX_CANARIES}", where + ".canaries")


def validate_disruption_budget(budget: DisruptionBudget, where: str = "disruption_budget") -> None:
    policies = [
        n
        for n in ("availability_percentage", "unhealthy_tasks", "relocation_limit", "self_managed")
        if getattr(budget, n) is not None
    ]
    if len(policies) != 1:
        raise fail(
            "invalid_disruption_budget",
            "a disruption budget has exactly one policy: availability_percentage, unhealthy_tasks, "
            f"relocation_limit or self_managed (given: {', '.join(policies) or 'none'})",
            where,
        )
    pct = budget.availability_percentage
    if pct is not None and not (math.isfinite(pct) and 0 <= pct <= 100):
        raise fail(
            "invalid_disruption_budget",
            "availability_percentage must be 0..100",
            where + ".availability_percentage",
        )
    for name in ("unhealthy_tasks", "relocation_limit"):
        value = getattr(budget, name)
        if value is not None and not 0 <= value <= 100_000:
            raise fail("invalid_disruption_budget", f"{name} must be 0..100000", f"{where}.{name}")
    if budget.self_managed is not None:
        timeout = budget.self_managed.relocation_timeout_s
        if not (math.isfinite(timeout) and 0 <= timeout <= MAX_DEADLINE_S):
            raise fail(
                "invalid_disruption_budget",
                f"relocation_timeout_s must be 0..{MAX_DEADLINE_S:g}",
                where + ".self_managed.relocation_timeout_s",
            )
    if budget.rate_per_interval is not None and budget.rate_percent_per_hour is not None:
        raise fail("invalid_disruption_budget", "give one rate, not both", where + ".rate_percent_per_hour")
    rate = budget.rate_per_interval
    if rate is not None:
        if not 1 <= rate.tasks <= 100_000:
            raise fail(
                "invalid_disruption_budget",
                "rate tasks must be 1..100000",
                where + ".rate_per_interval.tasks",
            )
        if not (math.isfinite(rate.interval_s) and 1 <= rate.interval_s <= MAX_DEADLINE_S):
            raise fail(
                "invalid_disruption_budget",
                f"interval_s must be 1..{MAX_DEADLINE_S:g}",
                where + ".rate_per_interval.interval_s",
            )
    hourly = budget.rate_percent_per_hour
    if hourly is not None and not (math.isfinite(hourly) and 0 < hourly <= 100):
        raise fail(
            "invalid_disruption_budget",
            "rate_percent_per_hour must be > 0 and <= 100",
            where + ".rate_percent_per_hour",
        )
    if len(budget.windows) > 50:
        raise fail("invalid_disruption_budget", "at most 50 time windows", where + ".windows")
    for i, window in enumerate(budget.windows):
        at = f"{where}.windows[{i}]"
        bad = [d for d in window.days if d not in DAYS]
        if bad or not window.days:
            raise fail(
                "invalid_time_window",
                f"days are some of {', '.join(DAYS)}, not {bad or 'none'}",
                at + ".days",
            )
        if (
            not (0 <= window.start_hour <= 23 and 1 <= window.end_hour <= 24)
            or window.start_hour == window.end_hour
        ):
            raise fail(
                "invalid_time_window",
                "start_hour is 0..23, end_hour 1..24, and they differ (start > end wraps past midnight)",
                at + ".start_hour",
            )
        try:
            zoneinfo.ZoneInfo(window.time_zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise fail(
                "invalid_time_window", f"{window.time_zone!r} is not a time zone", at + ".time_zone"
            ) from None
