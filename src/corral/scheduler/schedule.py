"""Placement: first fit over hosts, never over-committing a host (the placeholder before Fenzo-grade).

Each task goes to the first schedulable host with room for its resources and ports; the host's free
vector is reduced before the next task is considered.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from corral.domain.resources import Resources
from corral.scheduler.plan import Assignment, Pending, PendingReason, Plan
from corral.scheduler.profile import Profile
from corral.scheduler.snapshot import HostOffer, Snapshot, TaskRequest


@dataclass(slots=True)
class _HostRoom:
    offer: HostOffer
    free: Resources
    used_ports: set[int] = field(default_factory=set)

    def take_ports(self, count: int) -> tuple[int, ...] | None:
        low, high = self.offer.port_range
        picked: list[int] = []
        port = low
        while len(picked) < count and port <= high:
            if port not in self.used_ports:
                picked.append(port)
            port += 1
        return tuple(picked) if len(picked) == count else None


def schedule(snapshot: Snapshot, profile: Profile, rng: Any = None) -> Plan:
    """Place every ready task of ``snapshot`` that fits; explain every task left pending."""
    del profile, rng  # first fit needs neither; the interface is the one the full scheduler keeps
    rooms = [_HostRoom(h, h.free, set(h.used_ports)) for h in snapshot.hosts if h.schedulable]
    unschedulable = len(snapshot.hosts) - len(rooms)
    assignments: list[Assignment] = []
    pending: list[Pending] = []
    for task in snapshot.tasks:
        if task.ready_at > snapshot.now:
            wait = task.ready_at - snapshot.now
            pending.append(
                Pending(task.task_id, PendingReason.NOT_READY, f"retry delay: ready in {wait:.1f}s")
            )
            continue
        placed = _place(task, rooms)
        if placed is not None:
            assignments.append(placed)
        else:
            pending.append(_explain(task, rooms, unschedulable))
    return Plan(tuple(assignments), tuple(pending))


def _place(task: TaskRequest, rooms: list[_HostRoom]) -> Assignment | None:
    for room in rooms:
        if not task.resources.fits_in(room.free):
            continue
        ports = room.take_ports(task.ports)
        if ports is None:
            continue
        room.free = room.free - task.resources
        room.used_ports.update(ports)
        return Assignment(task.task_id, room.offer.host_id, ports)
    return None


def _explain(task: TaskRequest, rooms: list[_HostRoom], unschedulable: int) -> Pending:
    rejections: Counter[str] = Counter()
    if unschedulable:
        rejections["host_unavailable"] = unschedulable
    if not rooms:
        return Pending(task.task_id, PendingReason.NO_HOSTS, "no schedulable host", dict(rejections))
    short_ports = 0
    for room in rooms:
        short = task.resources.short_of(room.free)
        if short:
            rejections.update(f"resources:{name}" for name in short)
        else:
            short_ports += 1
    if short_ports:
        rejections["ports"] = short_ports
    if short_ports == len(rooms):
        return Pending(
            task.task_id, PendingReason.NO_PORTS, f"no ports: {short_ports} hosts", dict(rejections)
        )
    name, count = max(
        ((k, v) for k, v in rejections.items() if k.startswith("resources:")), key=lambda kv: kv[1]
    )
    message = f"no capacity: {name.split(':', 1)[1]} — {count:,} of {len(rooms):,} hosts too full"
    return Pending(task.task_id, PendingReason.NO_CAPACITY, message, dict(rejections))
