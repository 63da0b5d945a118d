"""The scheduler's shell: describe the pending work, run one iteration, apply the plan.

Placed tasks move to Launched in memory at once (so the next iteration sees the room they took) and
their launch messages leave once that is committed. Each task left pending keeps its explanation for
``corral why`` and the API. The profile (each tier's mode) can be switched while running.

One job must not stop the scheduler: a job whose description raises is set aside; if the iteration itself
raises, the jobs are halved until the ones that make it raise are found and set aside, and the rest is
scheduled.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from corral.control.classes import class_key
from corral.control.ledger import Ledger
from corral.control.setaside import SetAside
from corral.jobs.config import JobManagerConfig
from corral.jobs.crash_loop import crash_loop_delay_s
from corral.jobs.task_machine import Placed
from corral.scheduler import JobClass, Pending, PendingTask, Plan, Profile, Snapshot, schedule

log = logging.getLogger(__name__)


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
    launch_after_commit: Callable[[list[str]], None]
    config: JobManagerConfig
    set_aside: Callable[[str, str, BaseException, float], SetAside | None]
    profile: Profile = field(default_factory=Profile)
    seed: int = 0
    schedule_fn: Callable[[Snapshot, Profile, np.random.Generator], Plan] = schedule  # the pure core
    pending_reasons: dict[str, Pending] = field(default_factory=dict)
    next_ready_at: float | None = None
    stats: IterationStats = field(default_factory=IterationStats)

    def due(self, now: float) -> bool:
        if self.ledger.schedule_needed:
            return True
        return self.next_ready_at is not None and self.next_ready_at <= now

    def iterate(self, now: float) -> int:
        """One scheduling iteration over every pending task; returns how many were placed."""
        self.ledger.schedule_needed = False
        self.next_ready_at = None
        jobs, tasks, waits = self.describe(now)
        if not tasks:
            self.pending_reasons = {}
            return 0
        rng = np.random.default_rng([self.seed, self.stats.iterations])
        started = time.perf_counter()
        plan = self._plan(now, jobs, tasks, rng)
        elapsed = time.perf_counter() - started
        placed = self._apply(plan, now)
        self._record(plan, elapsed, len(tasks), len(placed))
        self.launch_after_commit(placed)
        self.pending_reasons = {p.task_id: p for p in plan.pending}
        if waits:
            self.next_ready_at = min(waits)
        return len(placed)

    def describe(self, now: float) -> tuple[dict[str, JobClass], list[PendingTask], list[float]]:
        """The pending work as the scheduler takes it; a job that cannot be described is set aside."""
        state = self.ledger.state
        jobs: dict[str, JobClass] = {}
        tasks: list[PendingTask] = []
        waits: list[float] = []
        for task in state.pending_tasks():
            job = state.jobs.get(task.job_id)
            if job is None or job.id in state.set_aside:
                continue
            # A task of another version than its job's (canaries, a rollout) is a class of its own.
            key = job.id if task.version == job.version else class_key(job.id, task.version)
            if key not in jobs:
                try:
                    jobs[key] = state.classes.of(job, task.version)
                except Exception as e:
                    self.set_aside(job.id, "schedule", e, now)
                    continue
            order = (task.created_at, task.index or 0)
            if task.ready_at > now:
                waits.append(task.ready_at)
                backoff = crash_loop_delay_s(self.config, task.job_failure_streak)
                if backoff > 0:
                    tasks.append(
                        PendingTask(task.id, key, task.ready_at, order, backoff, task.job_failure_streak)
                    )
                    continue
            tasks.append(PendingTask(task.id, key, task.ready_at, order))
        return jobs, tasks, waits

    def _plan(
        self, now: float, jobs: dict[str, JobClass], tasks: list[PendingTask], rng: np.random.Generator
    ) -> Plan:
        try:
            return self.schedule_fn(self._snapshot(now, jobs, tasks), self.profile, rng)
        except Exception as e:
            log.error("a scheduling iteration raised (%s): looking for the jobs that make it raise", e)
        culprits = self._culprits(now, sorted(jobs), tasks)
        for key, error in culprits.items():
            self.set_aside(key.partition("@v")[0], "schedule", error, now)
        rest = [t for t in tasks if t.job_id not in culprits]
        jobs = {k: v for k, v in jobs.items() if k not in culprits}
        rng = np.random.default_rng([self.seed, self.stats.iterations, len(culprits)])
        return self.schedule_fn(self._snapshot(now, jobs, rest), self.profile, rng) if rest else Plan()

    def _culprits(self, now: float, job_ids: list[str], tasks: list[PendingTask]) -> dict[str, BaseException]:
        """Halve the jobs until each one that makes an iteration raise on its own is found."""
        found: dict[str, BaseException] = {}

        def search(ids: list[str]) -> None:
            chosen = set(ids)
            part = [t for t in tasks if t.job_id in chosen]
            try:
                jobs = {j: self._class(j) for j in ids}
                self.schedule_fn(self._snapshot(now, jobs, part), self.profile, np.random.default_rng(0))
                return
            except Exception as e:
                if len(ids) == 1:
                    found[ids[0]] = e
                    return
            half = len(ids) // 2
            search(ids[:half])
            search(ids[half:])

        if job_ids:
            search(job_ids)
        return found

    def _class(self, key: str) -> JobClass:
        """The class a pending task names: its job's, or its job's at another version (``<job>@v<n>``)."""
        state = self.ledger.state
        job_id, _, version = key.partition("@v")
        job = state.jobs[job_id]
        return state.classes.of(job, int(version) if version else None)

    def _snapshot(self, now: float, jobs: dict[str, JobClass], tasks: list[PendingTask]) -> Snapshot:
        state = self.ledger.state
        return Snapshot(now, state.cluster, jobs, tasks, state.groups, state.group_usage())

    def _apply(self, plan: Plan, now: float) -> list[str]:
        state = self.ledger.state
        queue_wait = self.ledger.metrics.queue_wait
        placed = []
        for a in plan.assignments:
            chosen = state.tasks.get(a.task_id)
            if chosen is None:
                continue
            event = Placed(a.host_id, now, a.ports, a.interface, a.address)
            try:
                if self.ledger.apply(chosen, event, a.footprint) is None:
                    continue
            except Exception as e:  # holding the placement raised: that job, not the iteration, is at fault
                self.set_aside(chosen.job_id, "schedule", e, now)
                continue
            placed.append(a.task_id)
            queue_wait.observe(max(0.0, now - max(chosen.created_at, chosen.ready_at)))
        return placed

    def _record(self, plan: Plan, elapsed: float, tasks: int, placed: int) -> None:
        metrics = self.ledger.metrics
        self.stats.last_ms = elapsed * 1000
        self.stats.iterations += 1
        self.stats.last_tasks = tasks
        self.stats.placed += placed
        self.stats.last_placed = placed
        metrics.iteration.observe(elapsed)
        metrics.placed.inc(placed)
        metrics.iteration_placements.observe(placed)
        for pending in plan.pending:
            for name, hosts in pending.rejections.items():
                metrics.rejections.labels(name).inc(hosts)

    def explain(self, task_id: str) -> Pending | None:
        return self.pending_reasons.get(task_id)
