"""The scheduler's output: where tasks go, and for each task left pending, why."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class PendingReason(StrEnum):
    NOT_READY = "not_ready"  # waiting out a retry delay
    NO_HOSTS = "no_hosts"  # no host is registered and schedulable
    NO_CAPACITY = "no_capacity"  # no schedulable host has room
    NO_PORTS = "no_ports"  # hosts have room but not enough free ports


@dataclass(frozen=True, slots=True)
class Assignment:
    task_id: str
    host_id: str
    ports: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Pending:
    task_id: str
    reason: PendingReason
    message: str
    rejections: dict[str, int] = field(default_factory=dict)  # filter name -> hosts it rejected


@dataclass(frozen=True, slots=True)
class Plan:
    assignments: tuple[Assignment, ...] = ()
    pending: tuple[Pending, ...] = ()
