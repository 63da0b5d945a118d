"""Disruption windows: whether an instant falls in a job's windows, and when they next open.

A window is open on each of its ``days`` (by local weekday in its ``time_zone``) from ``start_hour`` to
``end_hour`` local time; ``end_hour`` 24 is midnight, and ``start_hour > end_hour`` wraps past midnight (it
opens on the named day and closes the next morning). ``start_hour == end_hour`` is never open. Local time
comes from zoneinfo, so a window follows daylight saving: a window that starts in a skipped hour opens at
the first instant the local clock reads past its start, and a repeated hour is in it both times.

No window at all means at any time. Pure: instants are unix seconds passed in.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from corral.domain.disruption import DAYS, TimeWindow

SEARCH_DAYS = 8  # next_open looks this far ahead: every weekly window opens within 7 days


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    """The zone named ``name`` (raises ``ZoneInfoNotFoundError`` for an unknown one)."""
    return ZoneInfo(name)


def open_at(window: TimeWindow, now: float) -> bool:
    """Whether ``window`` is open at ``now``."""
    local = datetime.fromtimestamp(now, zone(window.time_zone))
    weekday, hour = local.weekday(), local.hour
    start, end = window.start_hour, window.end_hour
    if start < end:
        return DAYS[weekday] in window.days and start <= hour < end
    if start > end:  # wraps past midnight: the evening of a named day, or the morning after one
        today = DAYS[weekday] in window.days and hour >= start
        return today or (DAYS[(weekday - 1) % 7] in window.days and hour < end)
    return False


def in_windows(windows: Sequence[TimeWindow], now: float) -> bool:
    """Whether voluntary disruptions are allowed at ``now``: in any of ``windows``, or always if none."""
    return not windows or any(open_at(w, now) for w in windows)


def _starts(window: TimeWindow, now: float) -> list[float]:
    """The instants ``window`` opens from the local day of ``now`` on, for SEARCH_DAYS days."""
    if window.start_hour >= 24 or window.start_hour == window.end_hour:
        return []
    tz = zone(window.time_zone)
    first: date = datetime.fromtimestamp(now, tz).date()
    found = []
    for offset in range(-1, SEARCH_DAYS + 1):
        day = first + timedelta(days=offset)
        if DAYS[day.weekday()] not in window.days:
            continue
        # fold=0: a start in a skipped hour maps to the instant the clock jumps past it; a start in a
        # repeated hour to its first occurrence.
        start = datetime(day.year, day.month, day.day, window.start_hour, tzinfo=tz).timestamp()
        found.append(start)
    return found


def next_opening(windows: Sequence[TimeWindow], now: float) -> tuple[float, TimeWindow | None] | None:
    """When voluntary disruptions are next allowed, at or after ``now``, and the window that opens then
    (None when no windows are given: always open). None when none opens within SEARCH_DAYS days."""
    if not windows:
        return now, None
    for w in windows:
        if open_at(w, now):
            return now, w
    best: tuple[float, TimeWindow] | None = None
    horizon = now + SEARCH_DAYS * 86_400
    for w in windows:
        for start in _starts(w, now):
            # A start that falls where the window has no length (a skipped hour) does not open it.
            if now < start <= horizon and (best is None or start < best[0]) and open_at(w, start):
                best = (start, w)
    return best


def next_open(windows: Sequence[TimeWindow], now: float) -> float | None:
    """The first instant at or after ``now`` that is in ``windows`` (``now`` itself when open now), or
    None when none opens within SEARCH_DAYS days."""
    found = next_opening(windows, now)
    return None if found is None else found[0]


def describe_opening(at: float, window: TimeWindow) -> str:
    """``mon 09:00 America/Los_Angeles``: an opening in its window's local time."""
    local = datetime.fromtimestamp(at, zone(window.time_zone))
    return f"{DAYS[local.weekday()]} {local:%H:%M} {window.time_zone}"
