"""What can happen to a task: the stimuli of the task state machine (``corral.jobs.task_machine``).

They live in ``domain`` so that every room of the pure core can speak them without importing another
room: ``jobs`` applies them (``transition``), ``fleet`` decides them from what agents report, and the shell
hands them from one to the other.
"""

from __future__ import annotations

from dataclasses import dataclass

from corral.domain.health import ProbeResult
from corral.domain.states import FinishedReason, TaskState


@dataclass(frozen=True, slots=True)
class Placed:
    """The scheduler put the task on a host; the launch goes out."""

    host_id: str
    at: float
    ports: tuple[int, ...] = ()
    interface: int | None = None
    address: int | None = None


@dataclass(frozen=True, slots=True)
class Reported:
    """An agent says the task is in ``state``."""

    state: TaskState
    at: float
    reason: FinishedReason | None = None
    detail: str = ""
    exit_code: int | None = None


@dataclass(frozen=True, slots=True)
class KillRequested:
    reason: FinishedReason
    at: float
    detail: str = ""


@dataclass(frozen=True, slots=True)
class HostLost:
    at: float
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Reconnected:
    at: float


@dataclass(frozen=True, slots=True)
class Ended:
    """Finish the task without the agent: never placed, timed out, or its host is gone."""

    reason: FinishedReason
    at: float
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ProbesReported:
    """An agent says what the task's health checks found (not a state change: the task stays where it is)."""

    probes: ProbeResult
    at: float


TaskStimulus = Placed | Reported | KillRequested | HostLost | Reconnected | Ended | ProbesReported
