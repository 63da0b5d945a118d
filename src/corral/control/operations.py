"""Operator actions that change how the cluster is shared: capacity groups and each tier's mode.

They are rare, so they write through to the store before they answer (no write-behind), and take
effect at the next scheduling iteration.
"""

from __future__ import annotations

import asyncio
import json
import math
from dataclasses import replace

from corral.control.fenced import FencedStore
from corral.control.ledger import Ledger
from corral.control.scheduling import SchedulerShell
from corral.disruption.relocation import DrainingHost
from corral.domain.capacity import DEFAULT_GROUP, CapacityGroup, Tier, validate_group
from corral.domain.errors import ConflictError, NotFoundError, ValidationError
from corral.scheduler.profile import Mode, Profile

MODE_KEY = "scheduler.mode."
DRAIN_KEY = "host.draining."


DEFAULT_DRAIN_DEADLINE_S = 600.0


def drained_from_settings(settings: dict[str, str], now: float) -> dict[str, DrainingHost]:
    """The hosts being drained: ``{"since": .., "deadline_s": ..}`` per host (``true`` from older
    masters: draining since now, the default deadline)."""
    out: dict[str, DrainingHost] = {}
    for key, value in settings.items():
        if not key.startswith(DRAIN_KEY) or value == "false":
            continue
        host = key[len(DRAIN_KEY) :]
        try:
            data = json.loads(value) if value != "true" else {}
            since, deadline = (
                float(data.get("since", now)),
                float(data.get("deadline_s", DEFAULT_DRAIN_DEADLINE_S)),
            )
        except (ValueError, TypeError, AttributeError):
            since, deadline = now, DEFAULT_DRAIN_DEADLINE_S
        out[host] = DrainingHost(host, since, deadline)
    return out


def profile_from_settings(settings: dict[str, str]) -> Profile:
    profile = Profile()
    for tier in Tier:
        value = settings.get(MODE_KEY + tier.value)
        if value is not None:
            profile = profile.with_mode(tier, Mode(value))
    return profile


class Operations:
    def __init__(self, ledger: Ledger, store: FencedStore, scheduler: SchedulerShell) -> None:
        self.ledger = ledger
        self.state = ledger.state
        self.store = store
        self.scheduler = scheduler

    def group(self, name: str) -> CapacityGroup:
        group = self.state.groups.get(name)
        if group is None:
            raise NotFoundError("capacity_group", name)
        return group

    async def create_group(self, group: CapacityGroup) -> CapacityGroup:
        if group.name in self.state.groups:
            raise ConflictError("capacity_group_exists", f"capacity group {group.name!r} exists", "name")
        return await self.put_group(group)

    async def put_group(self, group: CapacityGroup) -> CapacityGroup:
        validate_group(group)
        await asyncio.to_thread(self.store.put_group, group)
        self.state.groups[group.name] = group
        self._reschedule()
        return group

    async def delete_group(self, name: str) -> None:
        self.group(name)
        if name == DEFAULT_GROUP:
            raise ConflictError("default_group", "the default capacity group cannot be deleted")
        users = [
            j.id for j in self.state.jobs.values() if j.is_active and j.descriptor.capacity_group == name
        ]
        if users:
            raise ConflictError(
                "capacity_group_in_use",
                f"{len(users)} active jobs use capacity group {name!r} (e.g. {users[0]})",
            )
        await asyncio.to_thread(self.store.delete_group, name)
        del self.state.groups[name]

    async def set_mode(self, tier: Tier, mode: Mode) -> Profile:
        await asyncio.to_thread(self.store.put_setting, MODE_KEY + tier.value, mode.value)
        self.scheduler.profile = self.scheduler.profile.with_mode(tier, mode)
        self._reschedule()
        return self.scheduler.profile

    async def set_draining(
        self, host_id: str, draining: bool, now: float, deadline_s: float = DEFAULT_DRAIN_DEADLINE_S
    ) -> None:
        """A draining host gets no new tasks, and its tasks move (corral.control.drains): services make
        before break, batch tasks finish until ``deadline_s``. Survives master restarts."""
        host = self.state.hosts.get(host_id)
        if host is None:
            raise NotFoundError("host", host_id)
        if not (math.isfinite(deadline_s) and 0 <= deadline_s <= 7 * 24 * 3600):
            raise ValidationError("invalid_deadline", "deadline_s must be 0..604800", "deadline_s")
        previous = self.state.drained.get(host_id)
        if draining and previous is not None:
            return
        entry = DrainingHost(host_id, now, deadline_s)
        value = json.dumps({"since": now, "deadline_s": deadline_s}) if draining else "false"
        await asyncio.to_thread(self.store.put_setting, DRAIN_KEY + host_id, value)
        if draining:
            self.state.drained[host_id] = entry
        else:
            self.state.drained.pop(host_id, None)
        self.ledger.set_host(replace(host, draining=draining))

    def set_cordoned(self, host_ids: set[str]) -> None:
        """Exactly ``host_ids`` take no new tasks while their tasks stay (the later partitions of group
        drains: tasks moved off the current partition should not land on hosts drained next)."""
        for host_id in self.state.cordoned ^ host_ids:
            host = self.state.hosts.get(host_id)
            if host is not None:
                self.ledger.set_host(replace(host, cordoned=host_id in host_ids))
        self.state.cordoned = set(host_ids)

    def require_group(self, name: str) -> None:
        """Jobs name an existing capacity group."""
        if name not in self.state.groups:
            raise ValidationError(
                "unknown_capacity_group", f"capacity group {name!r} does not exist", "capacity_group"
            )

    def _reschedule(self) -> None:
        self.ledger.schedule_needed = True
        self.ledger.wake.set()
