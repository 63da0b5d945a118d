"""domain/resources.py: arithmetic, fits_in and short_of."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.domain.resources import ZERO, Resources

vectors = st.builds(
    Resources,
    st.floats(0, 64, allow_nan=False).map(lambda c: round(c, 2)),
    st.integers(0, 10_000),
    st.integers(0, 10_000),
    st.integers(0, 10_000),
    st.integers(0, 8),
)


def test_add_and_subtract() -> None:
    a = Resources(1.5, 100, 200, 10, 1)
    b = Resources(0.5, 50, 20, 5, 1)
    assert a + b == Resources(2.0, 150, 220, 15, 2)
    assert a - b == Resources(1.0, 50, 180, 5, 0)
    assert a + ZERO == a


def test_fits_in_every_dimension() -> None:
    host = Resources(4.0, 1024, 1024, 100, 1)
    assert Resources(4.0, 1024, 1024, 100, 1).fits_in(host)
    assert not Resources(4.1, 1, 1, 1, 0).fits_in(host)
    assert not Resources(1.0, 1025, 1, 1, 0).fits_in(host)
    assert not Resources(1.0, 1, 1025, 1, 0).fits_in(host)
    assert not Resources(1.0, 1, 1, 101, 0).fits_in(host)
    assert not Resources(1.0, 1, 1, 1, 2).fits_in(host)


def test_fractional_cpu_sums_fit_despite_rounding() -> None:
    total = ZERO
    for _ in range(10):
        total = total + Resources(cpu=0.1)
    assert total.cpu != 1.0  # the float sum really is off ...
    assert total.fits_in(Resources(cpu=1.0))  # ... and the epsilon absorbs it
    assert total.short_of(Resources(cpu=1.0)) == ()


@pytest.mark.parametrize(
    ("need", "names"),
    [
        (Resources(8.0, 1, 1, 1, 0), ("cpu",)),
        (Resources(1.0, 4096, 1, 1, 0), ("memory",)),
        (Resources(1.0, 1, 4096, 1, 0), ("disk",)),
        (Resources(1.0, 1, 1, 1000, 0), ("network",)),
        (Resources(1.0, 1, 1, 1, 3), ("gpu",)),
        (Resources(8.0, 4096, 4096, 1000, 3), ("cpu", "memory", "disk", "network", "gpu")),
        (Resources(1.0, 1, 1, 1, 0), ()),
    ],
)
def test_short_of_names_each_short_dimension(need: Resources, names: tuple[str, ...]) -> None:
    assert need.short_of(Resources(4.0, 1024, 1024, 100, 1)) == names


@settings(max_examples=200, deadline=None)
@given(vectors, vectors)
def test_fits_in_exactly_when_short_of_nothing(a: Resources, b: Resources) -> None:
    assert a.fits_in(b) == (a.short_of(b) == ())


@settings(max_examples=200, deadline=None)
@given(vectors, vectors)
def test_a_part_fits_in_the_whole_and_the_rest_is_what_remains(a: Resources, b: Resources) -> None:
    whole = a + b
    assert a.fits_in(whole)
    assert b.fits_in(whole)
    rest = whole - a
    assert (rest.memory_mb, rest.disk_mb, rest.network_mbps, rest.gpu) == (
        b.memory_mb,
        b.disk_mb,
        b.network_mbps,
        b.gpu,
    )
    assert rest.cpu == pytest.approx(b.cpu)
