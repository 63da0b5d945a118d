"""The scheduler's shell: describe the pending work, run one iteration, apply the plan.

Placed tasks move to Launched in memory at once (so the next iteration sees the room they took) and
their launch messages leave once that is committed. Each task left pending keeps its explanation for
``corral why`` and the API. The profile (each tier's mode) can be switched while running.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from corral.control.agents import AgentHub
from corral.control.ledger import Ledger
from corral.domain.job import Job
from corral.jobs.crash_loop import crash_loop_delay_s
from corral.jobs.task_machine import Placed
from corral.scheduler import JobClass, Pending, PendingTask, Profile, Snapshot, schedule


@dataclass(slots=True)
class IterationStats:
    iterations: int = 0
    placed: int = 0
    last_ms: float = 0.0
    last_tasks: int = 0
    last_placed: int = 0


@dataclass(slots=True)
class SchedulerShell:
    ledger: Ledger
    hub: AgentHub
    profile: Profile = field(default_factory=Profile)
    seed: int = 0
    pending_reasons: dict[str, Pending] = field(default_factory=dict)
    next_ready_at: float | None = None
    stats: IterationStats = field(default_factory=IterationStats)
    _classes: dict[str, tuple[Job, JobClass]] = field(default_factory=dict)

    def due(self, now: float) -> bool:
        if self.ledger.schedule_needed:
            return True
        return self.next_ready_at is not None and self.next_ready_at <= now

    def iterate(self, now: float) -> int:
        """One scheduling iteration over every pending task; returns how many were placed."""
        self.ledger.schedule_needed = False
        self.next_ready_at = None
        state = self.ledger.state
        jobs: dict[str, JobClass] = {}
        tasks: list[PendingTask] = []
        waits: list[float] = []
        for task in state.pending_tasks():
            if task.job_id not in jobs:
                job = state.jobs.get(task.job_id)
                if job is None:
                    continue
                jobs[task.job_id] = self._class_of(job)
            order = (task.created_at, task.index or 0)
            if task.ready_at > now:
                waits.append(task.ready_at)
                backoff = crash_loop_delay_s(self.hub.config.jobs, task.job_failure_streak)
                if backoff > 0:
                    tasks.append(
                        PendingTask(
                            task.id, task.job_id, task.ready_at, order, backoff, task.job_failure_streak
                        )
                    )
                    continue
            tasks.append(PendingTask(task.id, task.job_id, task.ready_at, order))
        if len(self._classes) > 2 * len(jobs) + 64:
            self._classes = {k: v for k, v in self._classes.items() if k in jobs}
        if not tasks:
            self.pending_reasons = {}
            return 0
        snapshot = Snapshot(now, state.cluster, jobs, tasks, state.groups, state.group_usage())
        rng = np.random.default_rng([self.seed, self.stats.iterations])
        started = time.perf_counter()
        plan = schedule(snapshot, self.profile, rng)
        elapsed = time.perf_counter() - started
        self.stats.last_ms = elapsed * 1000
        metrics = self.ledger.metrics
        metrics.iteration.observe(elapsed)
        self.stats.iterations += 1
        self.stats.last_tasks = len(tasks)
        placed = []
        for a in plan.assignments:
            chosen = state.tasks.get(a.task_id)
            event = Placed(a.host_id, now, a.ports, a.interface, a.address)
            if chosen is not None and self.ledger.apply(chosen, event) is not None:
                placed.append(a.task_id)
                metrics.queue_wait.observe(max(0.0, now - max(chosen.created_at, chosen.ready_at)))
        self.stats.placed += len(placed)
        self.stats.last_placed = len(placed)
        metrics.placed.inc(len(placed))
        metrics.iteration_placements.observe(len(placed))
        for pending in plan.pending:
            for name, hosts in pending.rejections.items():
                metrics.rejections.labels(name).inc(hosts)
        self.hub.launch_after_commit(placed)
        self.pending_reasons = {p.task_id: p for p in plan.pending}
        if waits:
            self.next_ready_at = min(waits)
        return len(placed)

    def _class_of(self, job: Job) -> JobClass:
        cached = self._classes.get(job.id)
        if cached is not None and cached[0] is job:
            return cached[1]
        d = job.descriptor
        c = d.container
        size = d.batch.size if d.batch is not None else (d.service.capacity.desired if d.service else 1)
        cls = JobClass(
            job_id=job.id,
            group=d.capacity_group,
            request=c.resources.vector,
            created_at=job.created_at,
            ports=c.resources.ports,
            sg_code=self.ledger.state.cluster.sg_code(c.security.security_groups),
            image=c.image.reference,
            size=size,
            hard=c.hard_constraints,
            soft=c.soft_constraints,
        )
        self._classes[job.id] = (job, cls)
        return cls

    def explain(self, task_id: str) -> Pending | None:
        return self.pending_reasons.get(task_id)
