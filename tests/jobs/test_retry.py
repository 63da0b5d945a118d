"""jobs/retry.py: the user's retry delays and the system-error backoff."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.domain.job import RetryKind, RetryPolicy
from corral.jobs.config import JobManagerConfig
from corral.jobs.retry import retry_delay_s, system_retry_delay_s

IMMEDIATE = RetryPolicy(RetryKind.IMMEDIATE, retries=5, initial_delay_ms=9000, delay_ms=9000)
DELAYED = RetryPolicy(RetryKind.DELAYED, retries=5, initial_delay_ms=500, delay_ms=2000)
EXPONENTIAL = RetryPolicy(RetryKind.EXPONENTIAL, retries=10, initial_delay_ms=1000, max_delay_ms=10_000)


@pytest.mark.parametrize("attempt", [0, 1, 2, 50])
def test_immediate_never_waits(attempt: int) -> None:
    assert retry_delay_s(IMMEDIATE, attempt) == 0.0


def test_delayed_waits_initial_then_delay() -> None:
    assert [retry_delay_s(DELAYED, a) for a in range(5)] == [0.0, 0.5, 2.0, 2.0, 2.0]


def test_exponential_doubles_up_to_the_cap() -> None:
    assert [retry_delay_s(EXPONENTIAL, a) for a in range(7)] == [0.0, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_exponential_with_a_huge_attempt_is_capped_and_cheap() -> None:
    assert retry_delay_s(EXPONENTIAL, 10**9) == 10.0


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 100_000), st.integers(0, 100_000), st.integers(1, 10_000))
def test_exponential_is_monotone_and_bounded(initial: int, extra: int, attempt: int) -> None:
    policy = RetryPolicy(RetryKind.EXPONENTIAL, 5, initial, 0, initial + extra)
    delay = retry_delay_s(policy, attempt)
    assert initial / 1000 <= delay <= (initial + extra) / 1000
    assert retry_delay_s(policy, attempt + 1) >= delay


CONFIG = JobManagerConfig(system_retry_initial_s=1.0, system_retry_max_s=30.0)


def test_system_backoff_first_retry_is_immediate_then_exponential_capped() -> None:
    assert [system_retry_delay_s(CONFIG, n) for n in range(8)] == [0.0, 0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0]


def test_system_backoff_is_capped_for_huge_counts() -> None:
    assert system_retry_delay_s(CONFIG, 10**9) == 30.0
