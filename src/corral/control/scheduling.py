"""The scheduler's shell: snapshot the cluster, run one iteration, apply the plan.

Placed tasks move to Launched in memory at once (so the next iteration sees the room they took) and
their launch messages leave once that is committed. Each task left pending keeps its explanation for
``corral task show`` and the API.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from corral.control.agents import AgentHub
from corral.control.ledger import Ledger
from corral.jobs.task_machine import Placed
from corral.scheduler import HostOffer, Pending, Profile, Snapshot, TaskRequest, schedule


@dataclass(slots=True)
class IterationStats:
    iterations: int = 0
    placed: int = 0
    last_ms: float = 0.0
    last_tasks: int = 0


@dataclass(slots=True)
class SchedulerShell:
    ledger: Ledger
    hub: AgentHub
    profile: Profile = field(default_factory=Profile)
    seed: int = 0
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
        state = self.ledger.state
        requests = []
        for task in state.pending_tasks():
            job = state.jobs.get(task.job_id)
            if job is None:
                continue
            res = job.descriptor.container.resources
            requests.append(TaskRequest(task.id, task.job_id, res.vector, res.ports, task.ready_at))
        if not requests:
            self.pending_reasons = {}
            return 0
        offers = tuple(
            HostOffer(h.id, state.free(h), h.port_range, state.used_ports(h.id), h.schedulable)
            for h in state.hosts.values()
        )
        started = time.perf_counter()
        plan = schedule(
            Snapshot(now, tuple(requests), offers), self.profile, np.random.default_rng(self.seed)
        )
        self.stats.last_ms = (time.perf_counter() - started) * 1000
        self.stats.iterations += 1
        self.stats.last_tasks = len(requests)
        placed = []
        for a in plan.assignments:
            chosen = state.tasks.get(a.task_id)
            if chosen is not None and self.ledger.apply(chosen, Placed(a.host_id, now, a.ports)) is not None:
                placed.append(a.task_id)
        self.stats.placed += len(placed)
        self.hub.launch_after_commit(placed)
        self.pending_reasons = {p.task_id: p for p in plan.pending}
        waits = [r.ready_at for r in requests if r.ready_at > now]
        if waits:
            self.next_ready_at = min(waits)
        # Capacity may free up or hosts arrive; those set schedule_needed. Not-ready tasks wake the timer.
        return len(placed)

    def explain(self, task_id: str) -> Pending | None:
        return self.pending_reasons.get(task_id)
