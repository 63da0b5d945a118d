"""The read side: answers from memory for what is active, from the store for history, merged by id.

Ids sort by creation time, so both sources are read in id order after the caller's cursor and merged;
memory wins where both hold a record (it is never older than the store).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Generic, TypeVar

from corral.control.state import ClusterState
from corral.domain.errors import NotFoundError
from corral.domain.job import Job
from corral.domain.states import JobState, TaskState
from corral.domain.task import Task
from corral.store.protocol import JobQuery, Store, TaskQuery

T = TypeVar("T", Job, Task)


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_after: str | None  # pass as ``after`` for the next page; None on the last page


class Queries:
    def __init__(self, state: ClusterState, store: Store) -> None:
        self.state = state
        self.store = store

    async def get_job(self, job_id: str) -> Job:
        job = self.state.jobs.get(job_id) or await asyncio.to_thread(self.store.get_job, job_id)
        if job is None:
            raise NotFoundError("job", job_id)
        return job

    async def get_task(self, task_id: str) -> Task:
        task = self.state.tasks.get(task_id) or await asyncio.to_thread(self.store.get_task, task_id)
        if task is None:
            raise NotFoundError("task", task_id)
        return task

    async def list_jobs(self, query: JobQuery) -> Page[Job]:
        in_memory = [j for j in self.state.jobs.values() if _job_matches(j, query)]
        stored: list[Job] = []
        if not query.states or JobState.FINISHED in query.states:
            history = replace(query, states=frozenset({JobState.FINISHED}))
            stored = await asyncio.to_thread(self.store.list_jobs, history)
        return _merge(in_memory, stored, query.limit, query.newest_first)

    async def list_tasks(self, query: TaskQuery) -> Page[Task]:
        in_memory = [t for t in self._task_candidates(query) if _task_matches(t, query)]
        stored: list[Task] = []
        if not query.states or TaskState.FINISHED in query.states:
            history = replace(query, states=frozenset({TaskState.FINISHED}))
            stored = await asyncio.to_thread(self.store.list_tasks, history)
        return _merge(in_memory, stored, query.limit)

    def _task_candidates(self, query: TaskQuery) -> Iterable[Task]:
        if query.job_id is not None:
            return self.state.tasks_of(query.job_id)
        return self.state.tasks.values()


def _job_matches(job: Job, q: JobQuery) -> bool:
    d = job.descriptor
    return (
        (q.after_id is None or (job.id < q.after_id if q.newest_first else job.id > q.after_id))
        and (q.owner is None or d.owner.team_email == q.owner)
        and (q.application is None or d.application == q.application)
        and (q.capacity_group is None or d.capacity_group == q.capacity_group)
        and (q.job_type is None or d.type is q.job_type)
        and (not q.states or job.state in q.states)
        and all(d.labels.get(k) == v for k, v in q.labels.items())
    )


def _task_matches(task: Task, q: TaskQuery) -> bool:
    return (
        (q.after_id is None or task.id > q.after_id)
        and (q.job_id is None or task.job_id == q.job_id)
        and (q.host_id is None or task.host_id == q.host_id)
        and (not q.states or task.state in q.states)
    )


def _merge(memory: list[T], stored: list[T], limit: int, newest_first: bool = False) -> Page[T]:
    by_id = {item.id: item for item in stored}
    by_id.update((item.id, item) for item in memory)
    items = [by_id[k] for k in sorted(by_id, reverse=newest_first)][:limit]
    more = len(by_id) > limit or len(stored) >= limit
    return Page(items, items[-1].id if more and items else None)
