"""Jobs set aside: one job whose reconciliation, placement, loading or storing raises is taken out of the
leader's loops instead of taking the leader down (Kubernetes tells an Unschedulable pod from an Error; the
seeds' lesson is that one bad record must never stop the control plane).

A set-aside job keeps what it runs — nothing is killed for it — but is neither reconciled nor scheduled
until an operator retries it (``corral admin resolve <alert> --retry``) or a new leader loads it cleanly.
The record lives in the leader's memory; every leader finds the same fault again on its own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)

STAGES = ("load", "reconcile", "schedule", "store", "agent")


@dataclass(frozen=True, slots=True)
class SetAside:
    job_id: str
    stage: str  # where it raised: load, reconcile, schedule, store, agent
    error: str  # the exception, as "Type: message"
    at: float

    @property
    def alert_id(self) -> str:
        return f"job-{self.job_id}"

    @property
    def message(self) -> str:
        return f"job {self.job_id} set aside: its {self.stage} raised {self.error}"


def describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class SetAsideJobs:
    """The jobs the leader has set aside, by id."""

    def __init__(self) -> None:
        self._jobs: dict[str, SetAside] = {}

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._jobs

    def __len__(self) -> int:
        return len(self._jobs)

    def get(self, job_id: str) -> SetAside | None:
        return self._jobs.get(job_id)

    def all(self) -> list[SetAside]:
        return sorted(self._jobs.values(), key=lambda s: s.at)

    def put(self, job_id: str, stage: str, error: BaseException, now: float) -> SetAside | None:
        """Set a job aside; returns the record if it is new (None if the job already was)."""
        if job_id in self._jobs:
            return None
        record = SetAside(job_id, stage, describe(error), now)
        self._jobs[job_id] = record
        log.error("%s; the leader goes on without it", record.message, exc_info=error)
        return record

    def lift(self, job_id: str) -> SetAside | None:
        return self._jobs.pop(job_id, None)
