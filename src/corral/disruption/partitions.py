"""Partitioned drains: a host group upgraded a slice at a time.

The group's hosts, sorted, are cut into partitions of ``ceil(len * percent / 100)`` hosts (the last one
smaller). One partition drains at a time; when every host of it is empty the next one starts, and after the
last the drain is done. Hosts of finished partitions stay drained — they are being upgraded — until the
operator undrains them; Corral never undrains a host on its own.

States: ``running`` (the current partition drains, and advances when empty), ``paused`` (the current
partition keeps draining but the drain does not advance), ``cancelled`` (the current partition stops
draining; finished partitions stay drained), ``done``. A paused or cancelled drain resumes at its current
partition. Each transition returns a new GroupDrain; invalid ones raise ``ValueError``.

Pure: the clock is ``now``; the shell marks and unmarks hosts as draining from ``hosts_to_drain``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from typing import Literal

DrainState = Literal["running", "paused", "cancelled", "done"]


def partitions(hosts: Sequence[str], percent: float) -> list[tuple[str, ...]]:
    """``hosts`` sorted and cut into slices of ``ceil(len * percent / 100)`` (the last one smaller)."""
    if not 0 < percent <= 100 or math.isnan(percent):
        raise ValueError(f"a partition is more than 0 and at most 100 % of the group, not {percent:g} %")
    ordered = sorted(set(hosts))
    size = max(1, math.ceil(len(ordered) * percent / 100 - 1e-9))
    return [tuple(ordered[i : i + size]) for i in range(0, len(ordered), size)]


@dataclass(frozen=True, slots=True)
class GroupDrain:
    group: str
    percent: float
    partitions: tuple[tuple[str, ...], ...]
    current: int  # the partition draining now (the last one once done)
    state: DrainState
    started_at: float
    partition_started_at: float  # when the current partition began to drain (its hosts' drain start)

    @property
    def hosts(self) -> tuple[str, ...]:
        return tuple(h for part in self.partitions for h in part)

    def describe(self) -> str:
        """``partition 2 of 5 (3 hosts): running``."""
        if not self.partitions:
            return f"{self.group}: no hosts, {self.state}"
        part = self.partitions[self.current]
        return f"partition {self.current + 1} of {len(self.partitions)} ({len(part)} hosts): {self.state}"


def start_drain(group: str, hosts: Sequence[str], percent: float, now: float) -> GroupDrain:
    """A drain of ``group``'s ``hosts``, ``percent`` at a time, its first partition draining from ``now``."""
    parts = tuple(partitions(hosts, percent))
    return GroupDrain(group, percent, parts, 0, "running" if parts else "done", now, now)


def advance(drain: GroupDrain, emptied: Callable[[str], bool] | Collection[str], now: float) -> GroupDrain:
    """The next partition once every host of the current one is empty; done after the last.

    One partition per call: the next one must be seen empty while drained, not just before it was."""
    if drain.state != "running":
        return drain
    empty = emptied if callable(emptied) else emptied.__contains__
    if not all(empty(h) for h in drain.partitions[drain.current]):
        return drain
    if drain.current + 1 >= len(drain.partitions):
        return replace(drain, state="done")
    return replace(drain, current=drain.current + 1, partition_started_at=now)


def pause(drain: GroupDrain, now: float) -> GroupDrain:
    """Hold at the current partition: it keeps draining, the drain does not advance."""
    if drain.state in ("paused", "cancelled"):
        return drain
    _not_done(drain, "paused")
    return replace(drain, state="paused")


def cancel(drain: GroupDrain, now: float) -> GroupDrain:
    """Stop: the current partition stops draining; finished partitions stay drained."""
    if drain.state == "cancelled":
        return drain
    _not_done(drain, "cancelled")
    return replace(drain, state="cancelled")


def resume(drain: GroupDrain, now: float) -> GroupDrain:
    """Run again from the current partition (a cancelled one drains again from ``now``)."""
    if drain.state == "running":
        return drain
    _not_done(drain, "resumed")
    since = now if drain.state == "cancelled" else drain.partition_started_at
    return replace(drain, state="running", partition_started_at=since)


def hosts_to_drain(drain: GroupDrain) -> tuple[str, ...]:
    """The hosts that should be draining now: every partition up to and including the current one while
    running or paused, all once done, those before the current one once cancelled."""
    upto = len(drain.partitions) if drain.state == "done" else drain.current + 1
    if drain.state == "cancelled":
        upto = drain.current
    return tuple(h for part in drain.partitions[:upto] for h in part)


def _not_done(drain: GroupDrain, verb: str) -> None:
    if drain.state == "done":
        raise ValueError(f"the drain of {drain.group} is done: it cannot be {verb}")
