"""The leader's in-memory state: jobs, tasks, hosts, and the indices the loops need.

Single-threaded by design (it lives on the master's event loop), so it takes no locks. Every change
goes through ``put_job`` / ``put_task`` / ``put_host`` so the indices and the per-host accounting
cannot drift from the records.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from corral.domain.host import Host
from corral.domain.job import Job
from corral.domain.resources import ZERO, Resources
from corral.domain.states import TaskState
from corral.domain.task import Task


class ClusterState:
    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}
        self.tasks: dict[str, Task] = {}
        self.hosts: dict[str, Host] = {}
        self._by_job: dict[str, dict[str, None]] = {}
        self._by_host: dict[str, dict[str, None]] = {}
        self._pending: dict[str, None] = {}  # Accepted tasks, in creation order
        self._group_keys: dict[str, str] = {}
        self._allocated: dict[str, Resources] = {}
        self._ports: dict[str, set[int]] = {}

    # -- jobs -----------------------------------------------------------------------------------

    def put_job(self, job: Job) -> None:
        self.jobs[job.id] = job
        self._by_job.setdefault(job.id, {})
        key = job.descriptor.job_group_key
        if key is not None:
            if job.is_active:
                self._group_keys[key] = job.id
            elif self._group_keys.get(key) == job.id:
                del self._group_keys[key]

    def job_with_group(self, key: str) -> str | None:
        return self._group_keys.get(key)

    def drop_job(self, job_id: str) -> None:
        """Forget a finished job and its tasks (they live on in the store)."""
        for task_id in list(self._by_job.pop(job_id, {})):
            self.drop_task(task_id)
        job = self.jobs.pop(job_id, None)
        key = job.descriptor.job_group_key if job else None
        if key is not None and self._group_keys.get(key) == job_id:
            del self._group_keys[key]

    def tasks_of(self, job_id: str) -> list[Task]:
        return [self.tasks[t] for t in self._by_job.get(job_id, {})]

    # -- tasks ----------------------------------------------------------------------------------

    def put_task(self, task: Task) -> Task | None:
        """Store ``task``, keeping indices and host accounting right. Returns the previous record."""
        old = self.tasks.get(task.id)
        self.tasks[task.id] = task
        self._by_job.setdefault(task.job_id, {})[task.id] = None
        if task.state is TaskState.ACCEPTED:
            self._pending[task.id] = None
        else:
            self._pending.pop(task.id, None)
        old_host = old.host_id if old is not None and old.on_host else None
        new_host = task.host_id if task.on_host else None
        if old is not None and old_host is not None and old_host != new_host:
            self._release(old, old_host)
        if new_host is not None and new_host != old_host:
            self._hold(task, new_host)
        return old

    def drop_task(self, task_id: str) -> None:
        task = self.tasks.pop(task_id, None)
        if task is None:
            return
        self._pending.pop(task_id, None)
        if task.on_host and task.host_id is not None:
            self._release(task, task.host_id)
        by_job = self._by_job.get(task.job_id)
        if by_job is not None:
            by_job.pop(task_id, None)

    def pending_tasks(self) -> Iterator[Task]:
        return (self.tasks[t] for t in self._pending)

    @property
    def pending_count(self) -> int:
        return len(self._pending)

    def tasks_on_host(self, host_id: str) -> list[Task]:
        return [self.tasks[t] for t in self._by_host.get(host_id, {})]

    def _resources(self, task: Task) -> Resources:
        job = self.jobs.get(task.job_id)
        return job.descriptor.container.resources.vector if job else ZERO

    def _hold(self, task: Task, host_id: str) -> None:
        self._by_host.setdefault(host_id, {})[task.id] = None
        self._allocated[host_id] = self._allocated.get(host_id, ZERO) + self._resources(task)
        self._ports.setdefault(host_id, set()).update(task.ports)

    def _release(self, task: Task, host_id: str) -> None:
        on_host = self._by_host.get(host_id)
        if on_host is not None:
            on_host.pop(task.id, None)
        self._allocated[host_id] = self._allocated.get(host_id, ZERO) - self._resources(task)
        self._ports.get(host_id, set()).difference_update(task.ports)

    # -- hosts ----------------------------------------------------------------------------------

    def put_host(self, host: Host) -> None:
        self.hosts[host.id] = host

    def allocated(self, host_id: str) -> Resources:
        return self._allocated.get(host_id, ZERO)

    def free(self, host: Host) -> Resources:
        return host.resources - self.allocated(host.id)

    def used_ports(self, host_id: str) -> frozenset[int]:
        return frozenset(self._ports.get(host_id, ()))

    # -- loading --------------------------------------------------------------------------------

    def load(self, jobs: Iterable[Job], tasks: Iterable[Task]) -> None:
        for job in jobs:
            self.put_job(job)
        for task in tasks:
            if task.job_id in self.jobs:
                self.put_task(task)
