"""Partitioned upgrades: a host group drained a partition at a time (``corral host drain --group G
--partition 20%``), as ``corral.disruption.partitions`` decides.

Each turn (every ``TICK_S``) a running drain advances once every host of its current partition is empty,
and the hosts it says should drain are drained (their tasks move as any drain's do: make before break, within
the jobs' budgets). Hosts of finished partitions stay drained for their upgrade until an operator undrains
them. A cancelled drain undrains only its current partition. The drain's record lives in the store's
settings, so a new leader carries it on from the same partition.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from corral.control.fenced import FencedStore
from corral.control.operations import DEFAULT_DRAIN_DEADLINE_S, Operations
from corral.control.state import ClusterState
from corral.disruption.partitions import GroupDrain, advance, cancel, hosts_to_drain, resume, start_drain
from corral.domain.codec import DecodeError, from_json, to_json
from corral.domain.errors import ConflictError, NotFoundError, ValidationError

log = logging.getLogger(__name__)

KEY = "drain.group."
TICK_S = 0.5


@dataclass(frozen=True, slots=True)
class GroupDrainRecord:
    drain: GroupDrain
    deadline_s: float = DEFAULT_DRAIN_DEADLINE_S  # for the batch tasks of each host drained


def from_settings(settings: dict[str, str]) -> dict[str, GroupDrainRecord]:
    out: dict[str, GroupDrainRecord] = {}
    for key, value in settings.items():
        if key.startswith(KEY):
            try:
                out[key[len(KEY) :]] = from_json(value, GroupDrainRecord)
            except (DecodeError, ValueError) as e:  # one bad record is set aside, not fatal
                log.error("group drain %s cannot be read (%s): ignored", key, e)
    return out


class GroupDrains:
    def __init__(
        self, state: ClusterState, ops: Operations, store: FencedStore, records: dict[str, GroupDrainRecord]
    ) -> None:
        self.state = state
        self.ops = ops
        self.store = store
        self.records = records

    def get(self, group: str) -> GroupDrainRecord:
        record = self.records.get(group)
        if record is None:
            raise NotFoundError("group_drain", group)
        return record

    async def start(self, group: str, percent: float, deadline_s: float, now: float) -> GroupDrainRecord:
        current = self.records.get(group)
        if current is not None and current.drain.state in ("running", "paused"):
            raise ConflictError(
                "group_drain_running", f"host group {group} is already draining: {current.drain.describe()}"
            )
        hosts = [h.id for h in self.state.hosts.values() if h.attributes.host_group == group]
        if not hosts:
            raise NotFoundError("host_group", group)
        try:
            drain = start_drain(group, hosts, percent, now)
        except ValueError as e:
            raise ValidationError("invalid_partition", str(e), "partition_percent") from e
        record = GroupDrainRecord(drain, deadline_s)
        await self._keep(record)
        await self.tick(now)
        return self.records[group]

    async def cancel(self, group: str, now: float) -> GroupDrainRecord:
        return await self._change(group, cancel, now)

    async def resume(self, group: str, now: float) -> GroupDrainRecord:
        return await self._change(group, resume, now)

    async def _change(
        self, group: str, how: Callable[[GroupDrain, float], GroupDrain], now: float
    ) -> GroupDrainRecord:
        record = self.get(group)
        try:
            drain = how(record.drain, now)
        except ValueError as e:
            raise ConflictError("group_drain_done", str(e)) from e
        before = set(hosts_to_drain(record.drain))
        record = GroupDrainRecord(drain, record.deadline_s)
        await self._keep(record)
        for host in sorted(before - set(hosts_to_drain(drain))):
            if host in self.state.drained and host in self.state.hosts:
                await self.ops.set_draining(host, False, now)
        await self.tick(now)
        return self.records[group]

    async def tick(self, now: float) -> None:
        """Advance each running drain whose current partition is empty; cordon the hosts it will drain later
        (no new tasks there, so nothing moved lands on them) before draining what it says should drain."""
        for group, record in list(self.records.items()):
            if record.drain.state == "running":
                moved = advance(record.drain, self._empty, now)
                if moved != record.drain:
                    log.info("group drain %s: %s", group, moved.describe())
                    await self._keep(GroupDrainRecord(moved, record.deadline_s))
        # Every host of a running drain that is not draining yet (a later partition, or the current one
        # until each of its hosts is marked) takes no new tasks.
        later = {
            host
            for record in self.records.values()
            if record.drain.state in ("running", "paused")
            for host in record.drain.hosts
            if host not in self.state.drained
        }
        self.ops.set_cordoned(later)
        # Only the current partition of a running or paused drain is drained here: a host of a finished
        # partition that an operator undrained after its upgrade stays as the operator left it.
        for record in list(self.records.values()):
            drain = record.drain
            if drain.state not in ("running", "paused") or not drain.partitions:
                continue
            for host in drain.partitions[drain.current]:
                if host not in self.state.drained and host in self.state.hosts:
                    await self.ops.set_draining(host, True, now, record.deadline_s)
        self.ops.set_cordoned(later - set(self.state.drained))  # draining now: no cordon needed

    def _empty(self, host: str) -> bool:
        return host in self.state.drained and not self.state.tasks_on_host(host)

    async def _keep(self, record: GroupDrainRecord) -> None:
        await asyncio.to_thread(self.store.put_setting, KEY + record.drain.group, to_json(record).decode())
        self.records[record.drain.group] = record
