"""The scheduler's output: where tasks go (concretely: ports, interface, address) and, for each task
left pending, why — the reason, a sentence, and how many hosts each filter turned away."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from corral.scheduler.cluster import Placement


class PendingReason(StrEnum):
    NOT_READY = "not_ready"  # waiting out a retry delay
    CRASH_LOOP = "crash_loop"  # waiting out its job's crash-loop backoff
    NO_HOSTS = "no_hosts"  # no host is registered and schedulable
    QUARANTINED = "quarantined"  # the only hosts left are quarantined after repeated system errors
    NO_CAPACITY = "no_capacity"  # hosts are too full (cpu, memory, disk, network, gpu)
    NO_PORTS = "no_ports"
    NO_NETWORK = "no_network"  # no interface and address for the task's security groups
    CONSTRAINT = "constraint"  # a hard constraint rules out the hosts with room
    GROUP_LIMIT = "group_limit"  # the capacity group is at its hard limit: not a cluster shortfall


@dataclass(frozen=True, slots=True)
class Assignment:
    task_id: str
    host_id: str
    ports: tuple[int, ...] = ()
    interface: int | None = None
    address: int | None = None
    footprint: Placement | None = None  # what the scheduler charged: the master holds exactly this


@dataclass(frozen=True, slots=True)
class Pending:
    task_id: str
    reason: PendingReason
    message: str
    rejections: dict[str, int] = field(default_factory=dict)  # filter -> hosts it turned away
    hosts: int = 0  # hosts considered


@dataclass(frozen=True, slots=True)
class Plan:
    assignments: tuple[Assignment, ...] = ()
    pending: tuple[Pending, ...] = ()
