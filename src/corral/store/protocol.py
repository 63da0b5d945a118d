"""The ``Store`` protocol every backend implements, and the queries and batches it takes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from corral.domain.auth import Team, Token
from corral.domain.capacity import CapacityGroup
from corral.domain.job import Job
from corral.domain.states import JobState, JobType, TaskState
from corral.domain.task import Task
from corral.store.lease import Lease


class StoreError(Exception):
    """The store cannot be trusted (unreadable rows, unknown schema): the master must not lead on it."""


@dataclass(frozen=True, slots=True)
class WriteBatch:
    jobs: Sequence[Job] = ()
    tasks: Sequence[Task] = ()

    def __len__(self) -> int:
        return len(self.jobs) + len(self.tasks)


@dataclass(frozen=True, slots=True)
class LoadedState:
    jobs: list[Job]
    tasks: list[Task]


@dataclass(frozen=True, slots=True)
class JobQuery:
    owner: str | None = None
    application: str | None = None
    capacity_group: str | None = None
    job_type: JobType | None = None
    states: frozenset[JobState] = frozenset()
    labels: dict[str, str] = field(default_factory=dict)
    after_id: str | None = None  # paging: ids sort by creation time; the page starts past this id
    limit: int = 100
    newest_first: bool = False  # descending ids (then after_id pages towards older jobs)


@dataclass(frozen=True, slots=True)
class TaskQuery:
    job_id: str | None = None
    states: frozenset[TaskState] = frozenset()
    host_id: str | None = None
    after_id: str | None = None
    limit: int = 100


class Store(Protocol):
    epoch: int | None  # the leader's epoch: while set, writes from an older epoch are refused (fencing)

    def open(self) -> None:
        """Create or migrate the schema. Raises StoreError when the database cannot be trusted."""

    def close(self) -> None: ...

    def load_active(self) -> LoadedState:
        """Every job not finished and every task of those jobs. Raises StoreError on any bad row."""

    def write(self, batch: WriteBatch) -> None:
        """Upsert the batch's jobs and tasks in one transaction."""

    def get_job(self, job_id: str) -> Job | None: ...

    def list_jobs(self, query: JobQuery) -> list[Job]: ...

    def get_task(self, task_id: str) -> Task | None: ...

    def list_tasks(self, query: TaskQuery) -> list[Task]: ...

    def load_groups(self) -> list[CapacityGroup]:
        """Every capacity group. Raises StoreError on a bad row."""

    def put_group(self, group: CapacityGroup) -> None: ...

    def delete_group(self, name: str) -> None: ...

    def load_settings(self) -> dict[str, str]: ...

    def put_setting(self, key: str, value: str) -> None: ...

    def load_teams(self) -> list[Team]: ...

    def put_team(self, team: Team) -> None: ...

    def delete_team(self, name: str) -> None: ...

    def load_tokens(self) -> list[Token]: ...

    def put_token(self, token: Token) -> None:
        """Insert or replace a token record (revoking is a put with ``revoked_at`` set)."""

    def lease(self) -> Lease:
        """Who leads, with which epoch, until when (and the database's clock now)."""

    def acquire_lease(self, holder: str, url: str, ttl_s: float, take_from: int | None = None) -> int | None:
        """Become leader if nobody's lease is live (or, with ``take_from``, from that epoch's gone leader):
        the new epoch, or None."""

    def renew_lease(self, holder: str, epoch: int, ttl_s: float) -> bool: ...

    def release_lease(self, holder: str, epoch: int) -> None: ...

    def prune_finished(self, before: float) -> int:
        """Delete jobs (and their tasks) finished before ``before``, and older finished tasks that a newer
        task replaced (``resubmit_of``); return how many jobs went."""
