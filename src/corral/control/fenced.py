"""The store as one leadership term sees it: every write carries the term's epoch.

A term is given its epoch when it takes the lease and keeps it for its whole life, so a write that was
already in a worker thread when the term ended still carries the old epoch, and the database refuses it
(FencedError) once a newer leader exists. Nothing here can change the epoch; a new term gets a new
``FencedStore``. Reads go straight to the store.
"""

from __future__ import annotations

from collections.abc import Sequence

from corral.domain.auth import Team, Token
from corral.domain.capacity import CapacityGroup
from corral.domain.idempotency import IdempotencyRecord
from corral.domain.job import Job
from corral.domain.task import Task
from corral.store.lease import Lease
from corral.store.protocol import JobQuery, LoadedState, Store, TaskQuery, WriteBatch


class FencedStore:
    """``store`` with every mutating method bound to ``epoch`` (the same methods, without the argument)."""

    __slots__ = ("_epoch", "_store")

    def __init__(self, store: Store, epoch: int) -> None:
        self._store = store
        self._epoch = epoch

    @property
    def epoch(self) -> int:
        return self._epoch

    @property
    def store(self) -> Store:
        return self._store

    # -- writes, fenced with the term's epoch ------------------------------------------------------

    def write(self, batch: WriteBatch) -> None:
        self._store.write(batch, epoch=self._epoch)

    def put_group(self, group: CapacityGroup) -> None:
        self._store.put_group(group, epoch=self._epoch)

    def delete_group(self, name: str) -> None:
        self._store.delete_group(name, epoch=self._epoch)

    def put_setting(self, key: str, value: str) -> None:
        self._store.put_setting(key, value, epoch=self._epoch)

    def put_team(self, team: Team) -> None:
        self._store.put_team(team, epoch=self._epoch)

    def delete_team(self, name: str) -> None:
        self._store.delete_team(name, epoch=self._epoch)

    def put_token(self, token: Token) -> None:
        self._store.put_token(token, epoch=self._epoch)

    def prune_finished(self, before: float) -> int:
        return self._store.prune_finished(before, epoch=self._epoch)

    def prune_idempotency(self, before: float) -> int:
        return self._store.prune_idempotency(before, epoch=self._epoch)

    # -- reads ------------------------------------------------------------------------------------

    def load_active(self) -> LoadedState:
        return self._store.load_active()

    def get_job(self, job_id: str) -> Job | None:
        return self._store.get_job(job_id)

    def list_jobs(self, query: JobQuery) -> list[Job]:
        return self._store.list_jobs(query)

    def get_task(self, task_id: str) -> Task | None:
        return self._store.get_task(task_id)

    def list_tasks(self, query: TaskQuery) -> list[Task]:
        return self._store.list_tasks(query)

    def load_groups(self) -> list[CapacityGroup]:
        return self._store.load_groups()

    def load_settings(self) -> dict[str, str]:
        return self._store.load_settings()

    def load_teams(self) -> list[Team]:
        return self._store.load_teams()

    def load_tokens(self) -> list[Token]:
        return self._store.load_tokens()

    def get_idempotency(self, principal: str, key: str) -> IdempotencyRecord | None:
        return self._store.get_idempotency(principal, key)

    def find_idempotency(self, pairs: Sequence[tuple[str, str]]) -> list[IdempotencyRecord]:
        return self._store.find_idempotency(pairs)

    def load_idempotency(self, since: float) -> list[IdempotencyRecord]:
        return self._store.load_idempotency(since)

    def lease(self) -> Lease:
        return self._store.lease()
