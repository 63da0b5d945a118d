"""IdGenerator: 18 lowercase base32 characters that sort by creation time, strictly increasing."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from corral.control.clock import IdGenerator, system_clock

ID = re.compile(r"^[0-9abcdefghjkmnpqrstvwxyz]{18}$")  # Crockford's alphabet: no i, l, o, u
CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _millis(ident: str) -> int:
    value = 0
    for char in ident[:10]:
        value = value * 32 + CROCKFORD.index(char)
    return value


def test_ids_are_18_lowercase_base32_chars() -> None:
    ids = IdGenerator()
    for _ in range(200):
        ident = ids()
        assert ID.match(ident), ident


def test_prefix_is_the_creation_time_in_milliseconds() -> None:
    clock = FakeClock(1_700_000_000.123)
    assert _millis(IdGenerator(clock)()) == 1_700_000_000_123


def test_ids_within_one_millisecond_are_strictly_increasing() -> None:
    ids = IdGenerator(FakeClock())
    made = [ids() for _ in range(5000)]
    assert made == sorted(made)
    assert len(set(made)) == len(made)
    assert {_millis(i) for i in made} == {1_700_000_000_000}


def test_a_later_millisecond_sorts_after_a_busy_earlier_one() -> None:
    clock = FakeClock()
    ids = IdGenerator(clock)
    busy = [ids() for _ in range(1000)]
    clock.now += 0.001
    later = ids()
    assert later > max(busy)


def test_a_clock_stepping_back_does_not_break_the_order() -> None:
    clock = FakeClock()
    ids = IdGenerator(clock)
    first = ids()
    clock.now -= 5.0
    second = ids()
    third = ids()
    assert first < second < third


@given(st.lists(st.floats(min_value=0.0, max_value=0.05), min_size=1, max_size=60))
def test_ids_increase_and_sort_by_time_for_any_clock_steps(steps: list[float]) -> None:
    clock = FakeClock()
    ids = IdGenerator(clock)
    made: list[tuple[int, str]] = []
    for step in steps:
        clock.now += step
        made.append((int(clock.now * 1000), ids()))
    as_ids = [i for _, i in made]
    assert as_ids == sorted(as_ids)
    assert len(set(as_ids)) == len(as_ids)
    assert all(_millis(i) == ms for ms, i in made)


def test_two_generators_do_not_collide() -> None:
    clock = FakeClock()
    a, b = IdGenerator(clock), IdGenerator(clock)
    assert {a() for _ in range(100)}.isdisjoint({b() for _ in range(100)})


def test_system_clock_is_wall_time() -> None:
    assert 1_600_000_000 < system_clock() < 4_000_000_000
