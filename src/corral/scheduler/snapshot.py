"""The scheduler's input: the tasks waiting to be placed and what each host has free, at ``now``."""

from __future__ import annotations

from dataclasses import dataclass, field

from corral.domain.resources import Resources


@dataclass(frozen=True, slots=True)
class TaskRequest:
    task_id: str
    job_id: str
    resources: Resources
    ports: int = 0
    ready_at: float = 0.0


@dataclass(frozen=True, slots=True)
class HostOffer:
    host_id: str
    free: Resources
    port_range: tuple[int, int] = (30000, 32767)
    used_ports: frozenset[int] = field(default_factory=frozenset)
    schedulable: bool = True


@dataclass(frozen=True, slots=True)
class Snapshot:
    now: float
    tasks: tuple[TaskRequest, ...]
    hosts: tuple[HostOffer, ...]
