"""Provider calls back off after failures: exponential with full jitter (seed 003: cloud API rate limits).

``retry_after(failures, draw)``: after the n-th failure in a row, wait a uniform share (``draw`` in [0, 1),
from the shell's random source) of ``min(cap, base * 2**(n-1))`` — AWS's "full jitter", which spreads
many callers' retries out instead of bunching them at the same instants. A throttled call starts higher.
"""

from __future__ import annotations

BASE_S = 1.0
CAP_S = 120.0
THROTTLED_BASE_S = 5.0


def retry_after(failures: int, draw: float, *, throttled: bool = False) -> float:
    if failures <= 0:
        return 0.0
    base = THROTTLED_BASE_S if throttled else BASE_S
    ceiling = min(CAP_S, base * 2 ** min(failures - 1, 30))
    return float(max(0.0, min(1.0, draw)) * ceiling)
