"""Disruption windows: local weekdays and hours in the window's zone, wrapping past midnight, and daylight
saving (America/New_York springs forward 2026-03-08 02:00 EST and falls back 2026-11-01 02:00 EDT)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfoNotFoundError

import pytest

from corral.disruption.windows import describe_opening, in_windows, next_open, next_opening, open_at
from corral.domain.disruption import TimeWindow

NY = "America/New_York"
LA = "America/Los_Angeles"


def utc(*parts: int) -> float:
    """An instant given in UTC: utc(2026, 3, 9, 9) is Monday 2026-03-09 09:00 UTC."""
    return datetime(*parts, tzinfo=UTC).timestamp()  # type: ignore[arg-type,misc]


WEEKDAYS_9_TO_17 = TimeWindow(days=("mon", "tue", "wed", "thu", "fri"), start_hour=9, end_hour=17)


def test_no_windows_means_at_any_time() -> None:
    now = utc(2026, 3, 8, 3)
    assert in_windows((), now)
    assert next_open((), now) == now
    assert next_opening((), now) == (now, None)


@pytest.mark.parametrize(
    ("instant", "expected"),
    [
        (utc(2026, 3, 9, 9), True),  # Monday 09:00: the start is in
        (utc(2026, 3, 9, 16, 59, 59), True),
        (utc(2026, 3, 9, 17), False),  # the end is out
        (utc(2026, 3, 9, 8, 59, 59), False),
        (utc(2026, 3, 14, 12), False),  # Saturday
    ],
)
def test_a_window_is_open_on_its_days_between_its_hours(instant: float, expected: bool) -> None:
    assert in_windows((WEEKDAYS_9_TO_17,), instant) is expected


def test_end_hour_24_is_midnight() -> None:
    late = TimeWindow(days=("mon",), start_hour=20, end_hour=24)
    assert in_windows((late,), utc(2026, 3, 9, 23, 59, 59))
    assert not in_windows((late,), utc(2026, 3, 10, 0))  # Tuesday 00:00 is Tuesday's


@pytest.mark.parametrize(
    ("instant", "expected"),
    [
        (utc(2026, 3, 13, 21, 59), False),  # Friday before it opens
        (utc(2026, 3, 13, 22), True),  # Friday 22:00
        (utc(2026, 3, 14, 3), True),  # Saturday morning: still Friday night's window
        (utc(2026, 3, 14, 5, 59, 59), True),
        (utc(2026, 3, 14, 6), False),
        (utc(2026, 3, 14, 23), False),  # Saturday night: Saturday is not named
        (utc(2026, 3, 13, 3), False),  # Friday morning: Thursday is not named
    ],
)
def test_a_window_wraps_past_midnight(instant: float, expected: bool) -> None:
    night = TimeWindow(days=("fri",), start_hour=22, end_hour=6)
    assert in_windows((night,), instant) is expected


def test_next_open_is_exact_to_the_second_at_a_start() -> None:
    now = utc(2026, 3, 9, 8, 30, 15)  # Monday
    assert next_open((WEEKDAYS_9_TO_17,), now) == utc(2026, 3, 9, 9)
    assert next_open((WEEKDAYS_9_TO_17,), utc(2026, 3, 9, 10)) == utc(2026, 3, 9, 10)  # open now: now
    # Friday after hours: Monday morning.
    assert next_open((WEEKDAYS_9_TO_17,), utc(2026, 3, 13, 17)) == utc(2026, 3, 16, 9)


def test_next_open_of_a_window_that_wraps() -> None:
    night = TimeWindow(days=("fri",), start_hour=22, end_hour=6)
    assert next_open((night,), utc(2026, 3, 13, 21)) == utc(2026, 3, 13, 22)
    assert next_open((night,), utc(2026, 3, 14, 6)) == utc(2026, 3, 20, 22)


def test_local_time_in_the_window_zone() -> None:
    monday_9 = TimeWindow(days=("mon",), start_hour=9, end_hour=10, time_zone=LA)
    # Monday 2026-03-09 09:00 PDT is 16:00 UTC; in January (PST) 17:00 UTC.
    assert next_open((monday_9,), utc(2026, 3, 9, 0)) == utc(2026, 3, 9, 16)
    assert next_open((monday_9,), utc(2026, 1, 5, 0)) == utc(2026, 1, 5, 17)
    # Monday 17:30 UTC is still Monday morning in Los Angeles, and 01:30 UTC Tuesday is Monday evening.
    assert in_windows((monday_9,), utc(2026, 1, 5, 17, 30))
    assert not in_windows((TimeWindow(days=("tue",), time_zone=LA),), utc(2026, 1, 6, 1, 30))


def test_describe_opening_in_local_time() -> None:
    monday_9 = TimeWindow(days=("mon",), start_hour=9, end_hour=10, time_zone=LA)
    assert describe_opening(utc(2026, 3, 9, 16), monday_9) == "mon 09:00 America/Los_Angeles"


def test_the_earliest_of_several_windows_in_several_zones() -> None:
    tokyo = TimeWindow(days=("mon",), start_hour=9, end_hour=10, time_zone="Asia/Tokyo")  # Mon 00:00 UTC
    ny = TimeWindow(days=("mon",), start_hour=9, end_hour=10, time_zone=NY)  # Mon 13:00 UTC (EDT)
    found = next_opening((ny, tokyo), utc(2026, 3, 15, 12))  # Sunday noon UTC
    assert found == (utc(2026, 3, 16, 0), tokyo)


# --- daylight saving: America/New_York, 2026-03-08 (Sunday) 02:00 EST -> 03:00 EDT at 07:00 UTC


def test_a_window_after_the_spring_change_opens_at_the_new_offset() -> None:
    sunday_9 = TimeWindow(days=("sun",), start_hour=9, end_hour=10, time_zone=NY)
    # From Saturday (EST, UTC-5): Sunday 09:00 is already EDT, UTC-4.
    assert next_open((sunday_9,), utc(2026, 3, 7, 12)) == utc(2026, 3, 8, 13)
    assert not in_windows((sunday_9,), utc(2026, 3, 8, 14))  # 10:00 EDT


def test_a_window_starting_in_the_skipped_hour_opens_when_the_clock_jumps() -> None:
    two_to_four = TimeWindow(days=("sun",), start_hour=2, end_hour=4, time_zone=NY)
    # 02:00 EST does not exist that night: the clock reads 03:00 EDT at 07:00 UTC, inside 2-4.
    assert next_open((two_to_four,), utc(2026, 3, 8, 5)) == utc(2026, 3, 8, 7)
    assert not in_windows((two_to_four,), utc(2026, 3, 8, 6, 59, 59))  # 01:59:59 EST
    assert in_windows((two_to_four,), utc(2026, 3, 8, 7))
    assert not in_windows((two_to_four,), utc(2026, 3, 8, 8))  # 04:00 EDT


def test_a_window_wholly_in_the_skipped_hour_does_not_open_that_night() -> None:
    two_to_three = TimeWindow(days=("sun",), start_hour=2, end_hour=3, time_zone=NY)
    assert not any(in_windows((two_to_three,), utc(2026, 3, 8, 5) + s) for s in range(0, 4 * 3600, 60))
    # The next Sunday, 02:00 EDT = 06:00 UTC.
    assert next_open((two_to_three,), utc(2026, 3, 8, 5)) == utc(2026, 3, 15, 6)


def test_a_window_that_wraps_across_the_spring_change() -> None:
    saturday_night = TimeWindow(days=("sat",), start_hour=22, end_hour=6, time_zone=NY)
    assert in_windows((saturday_night,), utc(2026, 3, 8, 3))  # Saturday 22:00 EST
    assert in_windows((saturday_night,), utc(2026, 3, 8, 9, 59))  # Sunday 05:59 EDT
    assert not in_windows((saturday_night,), utc(2026, 3, 8, 10))  # Sunday 06:00 EDT: one hour shorter


# --- daylight saving: 2026-11-01 (Sunday) 02:00 EDT -> 01:00 EST at 06:00 UTC; 01:00-02:00 happens twice


def test_the_repeated_hour_is_in_the_window_both_times() -> None:
    one_to_two = TimeWindow(days=("sun",), start_hour=1, end_hour=2, time_zone=NY)
    assert next_open((one_to_two,), utc(2026, 10, 31, 12)) == utc(2026, 11, 1, 5)  # 01:00 EDT, the first
    assert not in_windows((one_to_two,), utc(2026, 11, 1, 4, 59, 59))
    assert in_windows((one_to_two,), utc(2026, 11, 1, 5, 30))  # 01:30 EDT
    assert in_windows((one_to_two,), utc(2026, 11, 1, 6, 30))  # 01:30 EST
    assert not in_windows((one_to_two,), utc(2026, 11, 1, 7))  # 02:00 EST


def test_a_window_after_the_autumn_change_opens_at_the_new_offset() -> None:
    sunday_9 = TimeWindow(days=("sun",), start_hour=9, end_hour=10, time_zone=NY)
    assert next_open((sunday_9,), utc(2026, 10, 31, 12)) == utc(2026, 11, 1, 14)  # 09:00 EST


def test_no_opening_within_eight_days() -> None:
    never = TimeWindow(days=(), start_hour=9, end_hour=17)
    empty = TimeWindow(days=("mon",), start_hour=9, end_hour=9)
    assert not in_windows((never, empty), utc(2026, 3, 9, 10))
    assert next_open((never, empty), utc(2026, 3, 9, 10)) is None
    assert not open_at(empty, utc(2026, 3, 9, 9))


def test_an_unknown_zone_raises() -> None:
    with pytest.raises(ZoneInfoNotFoundError):
        in_windows((TimeWindow(time_zone="Mars/Olympus_Mons"),), 0.0)
