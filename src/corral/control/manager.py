"""The job manager's shell: user commands in, reconciler actions applied, timers kept.

Decisions come from ``corral.jobs`` (pure); this module turns them into state changes through the
ledger and into kill messages through the agent hub.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Callable
from dataclasses import replace

from corral.control.agents import AgentHub
from corral.control.clock import Clock
from corral.control.ledger import Ledger
from corral.domain.errors import ConflictError, NotFoundError, ValidationError
from corral.domain.job import Capacity, Job, JobDescriptor, JobEvent
from corral.domain.states import JobState, TaskState
from corral.domain.task import Task, TaskEvent
from corral.domain.validation import validate_descriptor
from corral.jobs import commands, redblack, versions
from corral.jobs.actions import Action, ChangeJob, CreateTask, FinishJob, FinishTask, KillTask, SetEnabled
from corral.jobs.config import JobManagerConfig
from corral.jobs.reconcile import reconcile
from corral.jobs.task_machine import Ended, KillRequested

log = logging.getLogger(__name__)

# A pass that keeps producing work is cut off and resumed on the next step, so one job cannot starve the loop.
MAX_PASSES = 4


def _raise(_job_id: str, _stage: str, error: BaseException, _now: float) -> object:
    raise error


class JobManager:
    def __init__(
        self,
        ledger: Ledger,
        hub: AgentHub,
        clock: Clock,
        ids: Callable[[], str],
        config: JobManagerConfig,
    ) -> None:
        self.ledger = ledger
        self.state = ledger.state
        self.hub = hub
        self.clock = clock
        self.ids = ids
        self.config = config
        self._timers: list[tuple[float, str]] = []
        self.admit: Callable[[str], None] = lambda _group: None  # checks a job's capacity group exists
        self.set_aside: Callable[[str, str, BaseException, float], object] = _raise

    # -- user commands --------------------------------------------------------------------------

    def submit(self, descriptor: JobDescriptor, team: str = "", submitted_by: str = "") -> Job:
        validate_descriptor(descriptor)
        self.admit(descriptor.capacity_group)
        key = descriptor.job_group_key
        if key is not None:
            other = self.state.job_with_group(key)
            if other is not None:
                raise ConflictError(
                    "job_group_conflict", f"active job {other} already has job group {key!r}", "job_group"
                )
        now = self.clock()
        job = Job(
            id=self.ids(),
            descriptor=descriptor,
            created_at=now,
            updated_at=now,
            history=(JobEvent(now, JobState.ACCEPTED, "accepted"),),
            team=team,
            submitted_by=submitted_by,
        )
        self.ledger.set_job(job)
        self.ledger.metrics.submitted.labels(job.type.value).inc()
        return job

    def kill_job(self, job_id: str, by: str = "") -> Job:
        job = commands.kill_job(self._job(job_id), self.clock(), f"killed by {by or 'user'}")
        self.ledger.set_job(job)
        return job

    def resize(self, job_id: str, capacity: Capacity, by: str = "") -> Job:
        job = commands.resize(self._job(job_id), capacity, self.clock(), by)
        self.ledger.set_job(job)
        return job

    def set_enabled(self, job_id: str, enabled: bool, by: str = "") -> Job:
        job = commands.set_enabled(self._job(job_id), enabled, self.clock(), by)
        self.ledger.set_job(job)
        return job

    def update(self, job_id: str, descriptor: JobDescriptor, by: str = "") -> tuple[Job, bool]:
        """A new spec for a service: a new version and its rollout when the container changed."""
        validate_descriptor(descriptor)
        job, started = versions.update(self._job(job_id), descriptor, self.clock(), by)
        if job is not self.state.jobs[job_id]:
            self.ledger.set_job(job)
        return job, started

    def promote(self, job_id: str, by: str = "") -> Job:
        job = versions.promote(self._job(job_id), self.clock(), by)
        self.ledger.set_job(job)
        return job

    def rollback(self, job_id: str, to: int | None, by: str = "") -> Job:
        """Back to an earlier version; a red/black deploy (without ``to``): back to the job it replaced."""
        current = self._job(job_id)
        if current.red_black is not None and to is None:
            previous = self._job(current.red_black.previous)
            job = redblack.roll_back(current, self.clock(), by)
            self.ledger.set_job(
                commands.set_enabled(previous, True, self.clock(), by or "a red/black rollback")
            )
        else:
            job = versions.rollback(current, to, self.clock(), by)
        self.ledger.set_job(job)
        return job

    def red_black_previous(self, descriptor: JobDescriptor) -> Job | None:
        """The active job a red/black deploy of ``descriptor`` would replace (None: a first deploy)."""
        return redblack.deployed_after(Job("", descriptor), list(self.state.jobs.values()))

    def deploy_red_black(self, descriptor: JobDescriptor, team: str = "", by: str = "") -> Job:
        """Submit the next job of ``descriptor``'s job group (sequence + 1 after the active one) beside it;
        the old one is disabled once the new one is healthy."""
        if descriptor.service is None or descriptor.job_group is None:
            raise ValidationError(
                "red_black_needs_job_group",
                "a red/black deploy is of a service job with a job_group",
                "job_group",
            )
        previous = self.red_black_previous(descriptor)
        if previous is None:
            return self.submit(descriptor, team, by)
        group = previous.descriptor.job_group
        assert group is not None
        sequence = redblack.next_sequence(group.sequence)
        new = replace(descriptor, job_group=replace(descriptor.job_group, sequence=sequence))
        job = redblack.start(self.submit(new, team, by), previous, self.clock())
        self.ledger.set_job(job)
        return job

    def kill_task(self, task_id: str, shrink: bool, by: str = "") -> Task:
        task = self.state.tasks.get(task_id)
        if task is None:
            raise NotFoundError("task", task_id)
        job, kill = commands.kill_task(self._job(task.job_id), task, shrink, self.clock(), by)
        if job is not self.state.jobs[job.id]:
            self.ledger.set_job(job)
        killed = self.ledger.apply(task, kill) or task
        self.hub.send_kills([killed])
        return killed

    def _job(self, job_id: str) -> Job:
        job = self.state.jobs.get(job_id)
        if job is None:
            raise NotFoundError("job", job_id)
        return job

    # -- reconciliation -------------------------------------------------------------------------

    @property
    def next_timer(self) -> float | None:
        return self._timers[0][0] if self._timers else None

    def reconcile_due(self, now: float) -> int:
        """Reconcile every job that changed or whose timer fell due; return how many actions ran."""
        while self._timers and self._timers[0][0] <= now:
            _, job_id = heapq.heappop(self._timers)
            self.ledger.dirty_jobs[job_id] = None
        done = 0
        for _ in range(MAX_PASSES):
            dirty, self.ledger.dirty_jobs = self.ledger.dirty_jobs, {}
            if not dirty:
                break
            for job_id in dirty:
                if job_id in self.state.set_aside:
                    continue
                try:
                    done += self._reconcile_job(job_id, now)
                except Exception as e:  # that job is at fault, not the leader: set it aside, go on
                    self.set_aside(job_id, "reconcile", e, now)
        return done

    def _reconcile_job(self, job_id: str, now: float) -> int:
        job = self.state.jobs.get(job_id)
        if job is None or not job.is_active:
            return 0
        result = reconcile(job, self.state.tasks_of(job_id), now, self.config)
        for action in result.actions:
            self._apply(action, now)
        if result.wake_at is not None:
            heapq.heappush(self._timers, (result.wake_at, job_id))
        return len(result.actions)

    def _apply(self, action: Action, now: float) -> None:
        match action:
            case CreateTask():
                self._create(action, now)
            case KillTask():
                task = self.state.tasks.get(action.task_id)
                if task is not None:
                    killed = self.ledger.apply(task, KillRequested(action.reason, now, action.detail))
                    if killed is not None:
                        self.hub.send_kills([killed])
            case FinishTask():
                task = self.state.tasks.get(action.task_id)
                if task is None:
                    return
                ended = self.ledger.apply(task, Ended(action.reason, now, action.detail))
                if ended is not None and task.on_host:
                    # Best effort: if the agent still runs it, it should stop.
                    self.hub.send_kills(
                        [replace(task, state=TaskState.KILL_INITIATED, kill_reason=action.reason)]
                    )
            case ChangeJob():
                current = self.state.jobs.get(action.job.id)
                if current is not None and current.is_active:
                    self.ledger.set_job(action.job)
                    if action.message:
                        log.info("job %s: %s", action.job.id, action.message)
            case SetEnabled():
                other = self.state.jobs.get(action.job_id)
                if other is not None and other.state is JobState.ACCEPTED and other.descriptor.service:
                    self.ledger.set_job(commands.set_enabled(other, action.enabled, now, action.by))
            case FinishJob():
                job = self.state.jobs.get(action.job_id)
                if job is not None and job.is_active:
                    self.ledger.set_job(commands.finish_job(job, action.reason, action.detail, now))
                    log.info("job %s finished: %s (%s)", job.id, action.reason, action.detail)

    def _create(self, action: CreateTask, now: float) -> None:
        detail = f"replaces {action.replaces}" if action.replaces else ""
        job = self.state.jobs.get(action.job_id)
        version = action.version if action.version is not None else (job.version if job else 1)
        task = Task(
            id=self.ids(),
            job_id=action.job_id,
            index=action.index,
            created_at=now,
            updated_at=now,
            ready_at=action.ready_at,
            attempt=action.attempt,
            system_attempt=action.system_attempt,
            resubmit_of=action.replaces,
            history=(TaskEvent(now, TaskState.ACCEPTED, None, detail),),
            job_failure_streak=action.job_failure_streak,
            version=version,
        )
        self.ledger.set_task(task)
        if action.ready_at > now:
            self.ledger.schedule_needed = True
