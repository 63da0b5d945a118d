"""The ``Store`` protocol every backend implements, and the queries and batches it takes.

Every method that changes the store takes the writer's ``epoch`` (keyword-only) and checks it against the
lease inside its own transaction: there is no unfenced write. The leader's term wraps the store in
``corral.control.fenced.FencedStore``, which passes the term's epoch for it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from corral.domain.auth import Team, Token
from corral.domain.capacity import CapacityGroup
from corral.domain.idempotency import IdempotencyRecord
from corral.domain.job import Job
from corral.domain.states import JobState, JobType, TaskState
from corral.domain.task import Task
from corral.store.lease import Lease


class AsyncKeyLookup(Protocol):
    """Looks up idempotency records of (principal, key) pairs from the event loop; ``close`` when done."""

    def __call__(self, pairs: Sequence[tuple[str, str]]) -> Awaitable[list[IdempotencyRecord]]: ...

    async def close(self) -> None: ...


class StoreError(Exception):
    """The store cannot be trusted (unreadable rows, unknown schema): the master must not lead on it."""


class UnwritableRecord(Exception):
    """A write failed because of the data itself (it cannot be encoded, or the database refuses its
    value), not because the store is unreachable: the same write would fail again, and a write without
    the offending record can succeed. Nothing of the failed write was committed."""


@dataclass(frozen=True, slots=True)
class WriteBatch:
    jobs: Sequence[Job] = ()
    tasks: Sequence[Task] = ()
    idempotency: Sequence[IdempotencyRecord] = ()  # committed with the batch's jobs, in one transaction

    def __len__(self) -> int:
        return len(self.jobs) + len(self.tasks) + len(self.idempotency)


@dataclass(frozen=True, slots=True)
class LoadedState:
    jobs: list[Job]
    tasks: list[Task]


@dataclass(frozen=True, slots=True)
class IntegrityRecord:
    """What the store holds, as its writes recorded it (the one row of ``corral_integrity``)."""

    generation: int  # +1 per write transaction (the lease row holds the same number)
    active_jobs: int  # job rows not Finished
    active_tasks: int  # task rows not Finished
    updated_at: float  # the database's clock at the last write
    epoch: int  # the epoch of the last write


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
    def open(self) -> None:
        """Create or migrate the schema. Raises StoreError when the database cannot be trusted."""

    def close(self) -> None: ...

    # -- reads ------------------------------------------------------------------------------------

    def load_active(self) -> LoadedState:
        """Every job not finished and every task of those jobs, once the store's integrity is verified.
        Raises StoreError (saying what is wrong and how to restore) on any doubt."""

    def verify(self) -> IntegrityRecord:
        """The checks ``load_active`` makes, without keeping what it read: the integrity record, or
        StoreError."""

    def get_job(self, job_id: str) -> Job | None: ...

    def list_jobs(self, query: JobQuery) -> list[Job]: ...

    def get_task(self, task_id: str) -> Task | None: ...

    def list_tasks(self, query: TaskQuery) -> list[Task]: ...

    def load_groups(self) -> list[CapacityGroup]:
        """Every capacity group. Raises StoreError on a bad row."""

    def load_settings(self) -> dict[str, str]: ...

    def load_teams(self) -> list[Team]: ...

    def load_tokens(self) -> list[Token]: ...

    def get_idempotency(self, principal: str, key: str) -> IdempotencyRecord | None: ...

    def find_idempotency(self, pairs: Sequence[tuple[str, str]]) -> list[IdempotencyRecord]:
        """The records of several (principal, key) pairs in one query (those that exist)."""

    def async_key_lookup(self) -> AsyncKeyLookup | None:
        """A lookup of (principal, key) pairs that a leader's event loop awaits itself (PostgreSQL), or
        None where ``find_idempotency`` in a worker thread is the way (SQLite)."""

    def load_idempotency(self, since: float) -> list[IdempotencyRecord]:
        """Every idempotency record created at or after ``since``, oldest first."""

    # -- writes: each one transaction, refused with FencedError unless ``epoch`` leads -------------

    def write(self, batch: WriteBatch, *, epoch: int) -> None:
        """Upsert the batch's jobs and tasks and insert its idempotency records (a key already there is
        kept), in one transaction. UnwritableRecord when the data itself is refused."""

    def put_group(self, group: CapacityGroup, *, epoch: int) -> None: ...

    def delete_group(self, name: str, *, epoch: int) -> None: ...

    def put_setting(self, key: str, value: str, *, epoch: int) -> None: ...

    def put_team(self, team: Team, *, epoch: int) -> None: ...

    def delete_team(self, name: str, *, epoch: int) -> None: ...

    def put_token(self, token: Token, *, epoch: int) -> None:
        """Insert or replace a token record (revoking is a put with ``revoked_at`` set)."""

    def prune_finished(self, before: float, *, epoch: int) -> int:
        """Delete jobs (and their tasks) finished before ``before``, and older finished tasks that a newer
        task replaced (``resubmit_of``); return how many jobs went."""

    def prune_idempotency(self, before: float, *, epoch: int) -> int:
        """Delete idempotency records created before ``before``; return how many went."""

    def reseal(self, *, epoch: int) -> IntegrityRecord:
        """Record what the store holds now (counted whole) as its integrity record, at a new generation:
        for an operator who has checked that a store the load refused is right as it is."""

    # -- leadership -------------------------------------------------------------------------------

    def lease(self) -> Lease:
        """Who leads, with which epoch, until when (and the database's clock now)."""

    def acquire_lease(self, holder: str, url: str, ttl_s: float, take_from: int | None = None) -> int | None:
        """Become leader if nobody's lease is live (or, with ``take_from``, from that epoch's gone leader):
        the new epoch, or None."""

    def renew_lease(self, holder: str, epoch: int, ttl_s: float) -> bool: ...

    def release_lease(self, holder: str, epoch: int) -> None: ...
