"""The one door through which the leader's state changes.

A change is made in memory, queued for the store (write-behind), published on the event bus, and the
job it touches is marked for reconciliation. Nothing else writes to ``ClusterState``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from corral.control.bus import EventBus
from corral.control.metrics import Metrics
from corral.control.state import ClusterState
from corral.control.writer import StoreWriter
from corral.domain.codec import to_builtins
from corral.domain.host import Host
from corral.domain.job import Job
from corral.domain.states import TaskState
from corral.domain.task import Task
from corral.jobs.task_machine import TaskStimulus, transition
from corral.scheduler import Placement


@dataclass(slots=True)
class Ledger:
    state: ClusterState
    writer: StoreWriter
    bus: EventBus
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    dirty_jobs: dict[str, None] = field(default_factory=dict)
    schedule_needed: bool = True
    finished: dict[str, None] = field(default_factory=dict)  # jobs and tasks that may leave memory
    metrics: Metrics = field(default_factory=Metrics)

    def set_job(self, job: Job) -> None:
        self.state.put_job(job)
        self.writer.put_job(job)
        self.bus.publish("job", lambda: to_builtins(job))
        if not job.is_active:
            self.finished[job.id] = None
        self.touch(job.id)

    def set_task(self, task: Task, footprint: Placement | None = None) -> None:
        old = self.state.put_task(task, footprint)
        self.writer.put_task(task)
        self.bus.publish("task", lambda: to_builtins(task))
        # New pending work, or capacity given back, is worth a scheduling iteration.
        if task.state is TaskState.ACCEPTED or (task.is_finished and old is not None and old.on_host):
            self.schedule_needed = True
        if task.is_finished:
            self.finished[task.id] = None
            if old is not None and not old.is_finished and task.reason is not None:
                self.metrics.finished.labels(task.reason.value).inc()
        elif task.started_at is not None and (old is None or old.started_at is None):
            self.metrics.submit_to_started.observe(max(0.0, task.started_at - task.created_at))
        elif old is None and task.resubmit_of is not None:
            self.finished[task.resubmit_of] = None  # superseded now: it may leave memory
        self.touch(task.job_id)

    def apply(self, task: Task, event: TaskStimulus, footprint: Placement | None = None) -> Task | None:
        """Run ``event`` through the task state machine and record the result; None if it was dropped.
        ``footprint``: for a placement, what the scheduler charged (the state holds exactly that)."""
        new = transition(task, event)
        if new is not None:
            self.set_task(new, footprint)
        return new

    def set_host(self, host: Host, *, publish: bool = True) -> None:
        self.state.put_host(host)
        if publish:
            self.bus.publish("host", lambda: to_builtins(host))
            self.schedule_needed = True
            self.wake.set()

    def touch(self, job_id: str) -> None:
        self.dirty_jobs[job_id] = None
        self.wake.set()
