"""Changing a service over time: its numbered versions, how an update rolls, and the rollout in progress.

A job's ``version`` is the version its tasks should run; every task carries the version it runs. An update
adds a version and starts a ``Rollout`` from the old one to the new; the service reconciler replaces old
tasks within the job's ``update_strategy`` (``corral.jobs.update``). A rollout that fails is reverted to
the last version that was healthy: the job's ``version`` points back at it, and the failed version is kept,
marked ``failed``, in the job's history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class RollingUpdate:
    """Nomad's ``update`` block, Kubernetes' RollingUpdate: counts or percentages (``"25%"``) of desired."""

    max_unavailable: int | str = 1  # how many of desired may be not ready at any time
    max_surge: int | str = 1  # how many tasks above desired may run meanwhile
    min_healthy_s: float = 10.0  # ready this long before a new task counts as healthy
    progress_deadline_s: float = 600.0  # a new task must become healthy this soon after the last did
    canaries: int = 0  # new-version tasks that come first and wait for a promotion
    auto_promote: bool = False  # promote canaries once all are healthy
    auto_revert: bool = True  # a failed version reverts to the last healthy one


@dataclass(frozen=True, slots=True)
class UpdateStrategy:
    rolling: RollingUpdate = field(default_factory=RollingUpdate)


class VersionOutcome(StrEnum):
    CURRENT = "current"  # the version tasks should run now
    HEALTHY = "healthy"  # was current and reached full health
    FAILED = "failed"  # its rollout failed (and was reverted, or stopped)
    SUPERSEDED = "superseded"  # replaced by a newer version before it was known healthy


class RolloutPhase(StrEnum):
    CANARY = "canary"  # canaries of the new version run beside the old; waiting for a promotion
    ROLLING = "rolling"  # old tasks are being replaced within the strategy's limits
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # ended without reaching the new version (reverted, or left for an operator)

    @property
    def active(self) -> bool:
        return self in (RolloutPhase.CANARY, RolloutPhase.ROLLING)


@dataclass(frozen=True, slots=True)
class Rollout:
    from_version: int
    to_version: int
    started_at: float
    phase: RolloutPhase = RolloutPhase.ROLLING
    promoted: bool = False
    progress_at: float = 0.0  # when the rollout last made progress (a new task healthy): the deadline's start
    ended_at: float | None = None
    detail: str = ""  # why it ended, or what it waits for
    revert_of: int | None = None  # this rollout goes back from a failed version
    by: str = ""


class RedBlackPhase(StrEnum):
    DEPLOYING = "deploying"  # the new job comes up beside the old, which keeps serving
    DONE = "done"  # the new job is healthy; the old is disabled, kept for a fast rollback
    FAILED = "failed"  # the new job did not become healthy: it is disabled, the old serves on
    ROLLED_BACK = "rolled_back"  # the old job was enabled again and the new one disabled


@dataclass(frozen=True, slots=True)
class RedBlack:
    """Titus's red/black deploy: this job is the next of its job group after ``previous``."""

    previous: str  # the job it replaces
    started_at: float
    phase: RedBlackPhase = RedBlackPhase.DEPLOYING
    ended_at: float | None = None
    detail: str = ""
