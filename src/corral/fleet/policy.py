"""The knobs of the agent protocol's rules: heartbeats, deadlines, the unknown-task budget and the quorum."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FleetPolicy:
    heartbeat_timeout_s: float = 10.0  # silence after which a host is unreachable
    lost_after_s: float = 120.0  # a host expected at start that is not back by then has its tasks lost
    unknown_kill_min: int = 5  # unknown tasks a leader may kill in its term, at least ...
    unknown_kill_pct: float = 1.0  # ... or this percentage of the fleet's running tasks, if larger
    quorum_pct: float = 90.0  # no unknown task is judged before this share of the expected hosts is back ...
    settle_s: float = 30.0  # ... and this long after taking office (a leader that expects no host waits too)

    def __post_init__(self) -> None:
        for name in ("heartbeat_timeout_s", "lost_after_s"):
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a finite number > 0, not {value!r}")
        if not math.isfinite(self.settle_s) or self.settle_s < 0:
            raise ValueError(f"settle_s must be a finite number >= 0, not {self.settle_s!r}")
        if self.unknown_kill_min < 0:
            raise ValueError(f"unknown_kill_min must be >= 0, not {self.unknown_kill_min!r}")
        for name in ("unknown_kill_pct", "quorum_pct"):
            value = getattr(self, name)
            if not 0 <= value <= 100:
                raise ValueError(f"{name} must be a percentage in 0..100, not {value!r}")

    def budget(self, fleet_running: int) -> int:
        """How many unknown tasks a leader may kill in its term, given the fleet's running tasks."""
        # The epsilon keeps a share that is whole on paper whole in floating point (1.1 % of 1000 is 11).
        share = math.floor(self.unknown_kill_pct * max(fleet_running, 0) / 100 + 1e-9)
        return max(self.unknown_kill_min, share)
