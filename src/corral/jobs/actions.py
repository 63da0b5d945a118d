"""What a reconciler asks the shell to do. Plain data; the control layer carries them out."""

from __future__ import annotations

from dataclasses import dataclass

from corral.domain.job import Job
from corral.domain.states import FinishedReason


@dataclass(frozen=True, slots=True)
class CreateTask:
    job_id: str
    index: int | None
    ready_at: float
    attempt: int = 0
    system_attempt: int = 0
    replaces: str | None = None
    job_failure_streak: int = 0  # the job's user failures in a row (the crash-loop backoff)
    version: int | None = None  # the job version it runs (None: the job's current version)


@dataclass(frozen=True, slots=True)
class KillTask:
    """Ask the agent to stop the task; it finishes with ``reason`` once the agent confirms."""

    task_id: str
    reason: FinishedReason
    detail: str = ""


@dataclass(frozen=True, slots=True)
class FinishTask:
    """End the task now, without waiting for an agent (never placed, or the agent went silent)."""

    task_id: str
    reason: FinishedReason
    detail: str = ""


@dataclass(frozen=True, slots=True)
class FinishJob:
    job_id: str
    reason: FinishedReason
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ChangeJob:
    """The job record moves on by itself (a rollout advances, succeeds, fails or reverts): keep ``job``."""

    job: Job
    message: str = ""


@dataclass(frozen=True, slots=True)
class SetEnabled:
    """Enable or disable another job (a red/black deploy disables the job it replaces)."""

    job_id: str
    enabled: bool
    by: str = ""


Action = CreateTask | KillTask | FinishTask | FinishJob | ChangeJob | SetEnabled


@dataclass(frozen=True, slots=True)
class Reconciliation:
    actions: tuple[Action, ...] = ()
    wake_at: float | None = None  # when a timeout falls due, if nothing else happens first
