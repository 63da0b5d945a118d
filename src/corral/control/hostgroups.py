"""Host group configuration and the autoscaler's memory, kept in the store's settings.

``hostgroup.<name>``: the group (shape, sizes, cooldowns, cost, provider) as an operator configured it.
``autoscale.<name>``: the autoscaler's record of the group (the size it asked for, its cooldowns, the hosts
it removes and terminates), written before each provider call so that a new leader neither asks twice nor
forgets what is in flight. A record that cannot be read is set aside with a log line, never fatal.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TypeVar

from corral.autoscale.model import GroupRecord
from corral.control.fenced import FencedStore
from corral.control.state import ClusterState
from corral.domain.codec import DecodeError, from_json, to_json
from corral.domain.errors import NotFoundError
from corral.domain.hostgroup import HostGroup, validate_host_group

log = logging.getLogger(__name__)

GROUP_KEY = "hostgroup."
RECORD_KEY = "autoscale."
T = TypeVar("T")
DELETED = ""  # a setting's value once its group is deleted (settings are never removed)


def groups_from_settings(settings: dict[str, str]) -> dict[str, HostGroup]:
    return _read(settings, GROUP_KEY, HostGroup)


def records_from_settings(settings: dict[str, str]) -> dict[str, GroupRecord]:
    return _read(settings, RECORD_KEY, GroupRecord)


def _read(settings: dict[str, str], prefix: str, kind: type[T]) -> dict[str, T]:
    out: dict[str, T] = {}
    for key, value in settings.items():
        if not key.startswith(prefix) or value == DELETED:
            continue
        try:
            out[key[len(prefix) :]] = from_json(value, kind)
        except (DecodeError, ValueError, TypeError) as e:
            log.error("setting %s cannot be read (%s): ignored", key, e)
    return out


class HostGroups:
    """The configured groups (``state.host_groups``) and the autoscaler's records, durable."""

    def __init__(self, state: ClusterState, store: FencedStore, records: dict[str, GroupRecord]) -> None:
        self.state = state
        self.store = store
        self.records = records

    def get(self, name: str) -> HostGroup:
        group = self.state.host_groups.get(name)
        if group is None:
            raise NotFoundError("host_group", name)
        return group

    async def put(self, group: HostGroup) -> HostGroup:
        validate_host_group(group)
        await asyncio.to_thread(self.store.put_setting, GROUP_KEY + group.name, to_json(group).decode())
        self.state.host_groups[group.name] = group
        return group

    async def delete(self, name: str) -> None:
        self.get(name)
        await asyncio.to_thread(self.store.put_setting, GROUP_KEY + name, DELETED)
        self.state.host_groups.pop(name, None)

    async def keep(self, name: str, record: GroupRecord) -> None:
        """Write the autoscaler's record of a group (before the provider call it announces)."""
        if self.records.get(name) == record:
            return
        await asyncio.to_thread(self.store.put_setting, RECORD_KEY + name, to_json(record).decode())
        self.records[name] = record
