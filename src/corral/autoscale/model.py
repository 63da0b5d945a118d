"""What the autoscaler decides on, what it remembers between decisions, and what it decides — as values.

The shell builds a ``GroupView`` per configured host group from the leader's state (hosts, tasks, the
provider's instances) and keeps the group's ``GroupRecord`` in the store, so a new leader continues
exactly where the last one stopped: the size it asked for, its cooldowns, the hosts it is removing and
the hosts whose termination it has asked or done (never asked twice).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class HostCondition(StrEnum):
    READY = "ready"  # registered, reporting
    UNREACHABLE = "unreachable"  # stopped reporting (its tasks may still be on record)
    GONE = "gone"  # the provider says the instance is terminated, or it never registered


@dataclass(frozen=True, slots=True)
class HostView:
    """One host of a group, as the autoscaler weighs it."""

    host_id: str
    condition: HostCondition = HostCondition.READY
    tasks: int = 0  # live tasks on record on the host (running, starting, being killed)
    schedulable: bool = True  # takes new tasks (not draining, cordoned, quarantined, disabled)
    draining: bool = False  # drained by anyone (an operator, a group upgrade, this autoscaler)
    bad_since: float | None = None  # quarantined or unhealthy (its agent says so) since
    bad_detail: str = ""
    registered_at: float = 0.0
    unneeded_since: float | None = None  # idle, or its tasks fitting elsewhere, without a break since

    @property
    def idle(self) -> bool:
        return self.condition is HostCondition.READY and self.schedulable and self.tasks == 0


class RemovalKind(StrEnum):
    SCALE_DOWN = "scale_down"  # idle above what the group keeps, or its tasks fit elsewhere
    REPLACE = "replace"  # bad for too long: drained, terminated, a new host asked in its place


@dataclass(frozen=True, slots=True)
class Removal:
    """A host this autoscaler drains to terminate it."""

    kind: RemovalKind
    since: float
    reason: str


@dataclass(frozen=True, slots=True)
class GroupRecord:
    """What the autoscaler remembers of one group (kept in the store's settings)."""

    desired: int | None = None  # the size last asked of the provider (None: never asked)
    last_up_at: float | None = None
    last_down_at: float | None = None
    removing: Mapping[str, Removal] = field(default_factory=dict)
    terminating: tuple[str, ...] = ()  # asked of the provider; written before the call
    terminated: tuple[str, ...] = ()  # done (the last few: a host that reappears is not terminated again)
    failures: int = 0  # provider calls that failed in a row (backoff)
    retry_at: float | None = None  # no provider call before this (backoff with jitter)
    last_error: str = ""


@dataclass(frozen=True, slots=True)
class Kept:
    """Why a host is not scaled down: the reason's kind (stable) and a sentence."""

    kind: str  # "tasks_fit_nowhere" | "budget" | "min_size" | "min_idle" | "cooldown" | "limit" | ...
    detail: str


@dataclass(frozen=True, slots=True)
class GroupDecision:
    """What to do about one group now, and why; the shell applies it in this order: write ``record``,
    undrain ``cancel``, drain ``remove``, call ``terminate``, call ``scale_to``."""

    group: str
    record: GroupRecord
    scale_to: int | None = None  # ask the provider for this size (None: no call)
    scale_reason: str = ""
    remove: Mapping[str, Removal] = field(default_factory=dict)  # start draining these to remove them
    cancel: tuple[str, ...] = ()  # removals cancelled (demand came back): undrain them
    terminate: tuple[str, ...] = ()  # drained and empty: terminate through the provider
    kept: Mapping[str, Kept] = field(default_factory=dict)  # per host: why it is not scaled down
    waiting: Mapping[str, str] = field(default_factory=dict)  # per host being removed: what it waits for
    notes: tuple[str, ...] = ()  # group-level: cooldowns, backoff, max size reached
