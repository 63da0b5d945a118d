"""The drain shell: moves tasks off draining hosts as ``corral.disruption.relocation`` plans it.

A service task gets its replacement elsewhere first and is stopped (reason ``relocated``) only once the
replacement is ready; a batch task may finish until its host's drain deadline, then is stopped and rerun
elsewhere without spending the user's retries. Every move asks the job's disruption budget. The plan is
pure; this module creates the replacements, asks the kills, and keeps what each remaining task waits for
(``corral host drain --status``). A leader that cannot yet trust its picture of the fleet (just in office,
hosts still reporting back) moves nothing and says so.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace

from corral.control.agents import AgentHub
from corral.control.ledger import Ledger
from corral.disruption import relocation
from corral.disruption.budget import recent_to_keep
from corral.disruption.relocation import RelocationPlan, Wait
from corral.domain.job import Job
from corral.domain.states import FinishedReason, TaskState
from corral.domain.stimuli import KillRequested
from corral.domain.task import Task, TaskEvent

log = logging.getLogger(__name__)

PLAN_EVERY_S = 0.2  # while tasks wait on draining hosts, plan again at least this often
UNSURE = (
    "the leader is still confirming its picture of the fleet (settling after taking office, hosts "
    "reporting back): nothing is moved until then"
)


class Drainer:
    def __init__(self, ledger: Ledger, hub: AgentHub, ids: Callable[[], str]) -> None:
        self.ledger = ledger
        self.state = ledger.state
        self.hub = hub
        self.ids = ids
        self.waits: dict[str, Wait] = {}
        self.unsure = False  # the last step held back: the leader could not trust its picture yet
        self.next_at: float | None = None
        self.plan_ms = 0.0  # the last plan's time (the relocation benchmark reads it from /status)
        self.plan_ms_total = 0.0
        self.plans = 0

    def due(self, now: float) -> bool:
        return self.next_at is not None and now >= self.next_at

    def step(self, now: float) -> RelocationPlan | None:
        draining = self.state.drained
        job_ids = {t.job_id for host in draining for t in self.state.tasks_on_host(host)}
        job_ids |= {t.job_id for t in self.state.relocating()}
        if not job_ids:
            self.waits, self.next_at, self.unsure = {}, None, False
            return None
        self.unsure = not self.hub.picture_complete(now)
        if self.unsure:
            self.waits, self.next_at = {}, now + PLAN_EVERY_S
            return None
        jobs = [
            (self.state.jobs[j], self.state.tasks_of(j))
            for j in sorted(job_ids)
            if j in self.state.jobs and j not in self.state.set_aside
        ]
        started = time.perf_counter()
        plan = relocation.plan(draining, jobs, now)
        self.plan_ms = (time.perf_counter() - started) * 1000
        self.plan_ms_total += self.plan_ms
        self.plans += 1
        for move in plan.start:
            self._start(move.task_id, now)
        for stop in plan.stop:
            self._stop(stop.task_id, stop.detail, now)
        for task_id in plan.abandon:
            task = self.state.tasks.get(task_id)
            if task is not None and task.relocating_to is not None:
                self.ledger.set_task(replace(task, relocating_to=None))
        self.waits = dict(plan.waits)
        soon = now + PLAN_EVERY_S
        self.next_at = soon if plan.next_at is None else min(plan.next_at, soon)
        return plan

    def _start(self, task_id: str, now: float) -> None:
        old = self.state.tasks.get(task_id)
        job = self.state.jobs.get(old.job_id) if old is not None else None
        if old is None or job is None:
            return
        new = Task(
            id=self.ids(),
            job_id=job.id,
            index=old.index,
            created_at=now,
            updated_at=now,
            ready_at=now,
            version=job.version,
            relocations=old.relocations + 1,
            history=(
                TaskEvent(now, TaskState.ACCEPTED, None, f"replaces {old.id}, moved off {old.host_id}"),
            ),
        )
        self.ledger.set_task(new)
        note = TaskEvent(now, old.state, None, f"relocating: {new.id} starts elsewhere, then this task stops")
        self.ledger.set_task(replace(old, relocating_to=new.id, history=(*old.history, note)))
        self._count_disruption(job, now)
        log.info("relocating task %s of job %s off %s: replacement %s", old.id, job.id, old.host_id, new.id)

    def _stop(self, task_id: str, detail: str, now: float) -> None:
        task = self.state.tasks.get(task_id)
        if task is None or task.is_finished or task.kill_reason is not None:
            return
        job = self.state.jobs.get(task.job_id)
        if job is not None and job.descriptor.batch is not None:  # a service's move counted when it began
            self._count_disruption(job, now)
        killed = self.ledger.apply(task, KillRequested(FinishedReason.RELOCATED, now, detail))
        if killed is not None and killed.state is not TaskState.FINISHED:
            self.hub.send_kills([killed])

    def _count_disruption(self, job: Job, now: float) -> None:
        """Record a voluntary disruption's start for the job's rate (kept only as long as the rate needs)."""
        kept = recent_to_keep(job.descriptor.disruption_budget, (*job.disruptions, now), now)
        if kept != job.disruptions:
            self.ledger.set_job(replace(job, disruptions=kept))
