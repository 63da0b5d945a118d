"""Time and ids, the two things the pure core is handed rather than fetches."""

from __future__ import annotations

import secrets
import time
from typing import Protocol

_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


class Clock(Protocol):
    def __call__(self) -> float: ...


def system_clock() -> float:
    return time.time()


class IdGenerator:
    """Ids that sort by creation time (48-bit milliseconds, then 40 random bits), in lowercase base32.

    Sortable ids let the API page through jobs and tasks in creation order with an ``after`` cursor.
    """

    def __init__(self, clock: Clock = system_clock) -> None:
        self.clock = clock
        self._last_ms = 0
        self._last_rand = 0

    def __call__(self) -> str:
        ms = int(self.clock() * 1000)
        if ms <= self._last_ms:
            # Same millisecond (or a clock step back): keep ids increasing.
            ms = self._last_ms
            rand = self._last_rand + 1
        else:
            rand = secrets.randbits(40) & ~0xFFFFF  # leave room to count up within a millisecond
        self._last_ms, self._last_rand = ms, rand
        return _encode(ms, 10) + _encode(rand, 8)


def _encode(value: int, width: int) -> str:
    chars = []
    for _ in range(width):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))
