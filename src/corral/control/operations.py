"""Operator actions that change how the cluster is shared: capacity groups and each tier's mode.

They are rare, so they write through to the store before they answer (no write-behind), and take
effect at the next scheduling iteration.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from corral.control.fenced import FencedStore
from corral.control.ledger import Ledger
from corral.control.scheduling import SchedulerShell
from corral.domain.capacity import DEFAULT_GROUP, CapacityGroup, Tier, validate_group
from corral.domain.errors import ConflictError, NotFoundError, ValidationError
from corral.scheduler.profile import Mode, Profile

MODE_KEY = "scheduler.mode."
DRAIN_KEY = "host.draining."


def drained_from_settings(settings: dict[str, str]) -> set[str]:
    return {k[len(DRAIN_KEY) :] for k, v in settings.items() if k.startswith(DRAIN_KEY) and v == "true"}


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

    async def set_draining(self, host_id: str, draining: bool) -> None:
        """A draining host gets no new tasks; what runs there keeps running. Survives master restarts."""
        host = self.state.hosts.get(host_id)
        if host is None:
            raise NotFoundError("host", host_id)
        await asyncio.to_thread(self.store.put_setting, DRAIN_KEY + host_id, "true" if draining else "false")
        if draining:
            self.state.drained.add(host_id)
        else:
            self.state.drained.discard(host_id)
        self.ledger.set_host(replace(host, draining=draining))

    def require_group(self, name: str) -> None:
        """Jobs name an existing capacity group."""
        if name not in self.state.groups:
            raise ValidationError(
                "unknown_capacity_group", f"capacity group {name!r} does not exist", "capacity_group"
            )

    def _reschedule(self) -> None:
        self.ledger.schedule_needed = True
        self.ledger.wake.set()
