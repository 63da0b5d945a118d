"""How long to wait before the next attempt: the user's retry policy and the system-error backoff."""

from __future__ import annotations

from corral.domain.job import RetryKind, RetryPolicy
from corral.jobs.config import JobManagerConfig


def retry_delay_s(policy: RetryPolicy, attempt: int) -> float:
    """Delay before user attempt ``attempt`` (1 = the first retry)."""
    if attempt <= 0 or policy.kind is RetryKind.IMMEDIATE:
        return 0.0
    if policy.kind is RetryKind.DELAYED:
        return (policy.initial_delay_ms if attempt == 1 else policy.delay_ms) / 1000.0
    # Exponential: initial, 2x, 4x ... capped. The exponent is capped too, so huge attempts stay cheap.
    ms: int = policy.initial_delay_ms * 2 ** min(attempt - 1, 40)
    return min(ms, policy.max_delay_ms) / 1000.0


def system_retry_delay_s(config: JobManagerConfig, system_attempt: int) -> float:
    """Delay before the ``system_attempt``-th consecutive retry after a system error.

    The first is immediate (a lost host should be replaced at once); later ones back off exponentially.
    """
    if system_attempt <= 1:
        return 0.0
    delay: float = config.system_retry_initial_s * 2.0 ** min(system_attempt - 2, 40)
    return min(delay, config.system_retry_max_s)
