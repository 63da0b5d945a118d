"""The task record: one attempt at running a job's container on a host."""

from __future__ import annotations

from dataclasses import dataclass

from corral.domain.health import HealthStatus, ProbeResult
from corral.domain.states import ON_HOST_STATES, TASK_STATE_RANK, FinishedReason, TaskState


@dataclass(frozen=True, slots=True)
class TaskEvent:
    """One line of a task's history."""

    at: float
    state: TaskState
    reason: FinishedReason | None = None
    detail: str = ""
    host: str | None = None  # where the task was at the time


@dataclass(frozen=True, slots=True)
class Task:
    id: str
    job_id: str
    index: int | None  # the batch index this task runs; None for service tasks
    state: TaskState = TaskState.ACCEPTED
    created_at: float = 0.0
    updated_at: float = 0.0
    ready_at: float = 0.0  # not to be placed before this time (retry delays)
    attempt: int = 0  # user retries spent on this index before this task
    system_attempt: int = 0  # system-error retries before this task (its own budget and backoff)
    resubmit_of: str | None = None  # the task this one replaces
    host_id: str | None = None
    ports: tuple[int, ...] = ()
    interface: int | None = None  # the network interface the task's address is on ...
    address: int | None = None  # ... and which of its address slots
    started_at: float | None = None
    finished_at: float | None = None
    reason: FinishedReason | None = None
    reason_detail: str = ""
    exit_code: int | None = None
    kill_reason: FinishedReason | None = None  # set when a kill is asked for; becomes the finished reason
    kill_detail: str = ""
    disconnected_from: TaskState | None = None  # the state left for Disconnected
    history: tuple[TaskEvent, ...] = ()
    # The job's user failures in a row when this task was created: the crash-loop backoff is derived
    # from it and the failures since (corral.jobs.crash_loop), so it survives a master restart.
    job_failure_streak: int = 0
    version: int = 1  # the job version whose container it runs
    probes: ProbeResult | None = None  # what its health checks last found (None: nothing reported)
    ready_since: float | None = None  # when its readiness probe last passed (None: not ready)
    relocating_to: str | None = None  # the replacement started elsewhere before this task is stopped
    relocations: int = 0  # how many times its line was moved off draining hosts (relocation_limit)

    @property
    def health(self) -> HealthStatus:
        """healthy | unhealthy | unknown, from its probes; a running task without probes is healthy."""
        if self.probes is not None:
            return self.probes.status()
        return HealthStatus.HEALTHY if self.effective_state is TaskState.STARTED else HealthStatus.UNKNOWN

    @property
    def is_finished(self) -> bool:
        return self.state is TaskState.FINISHED

    @property
    def is_live(self) -> bool:
        return self.state is not TaskState.FINISHED

    @property
    def on_host(self) -> bool:
        """Placed and not yet finished: it holds resources on ``host_id``."""
        return self.state in ON_HOST_STATES

    @property
    def effective_state(self) -> TaskState:
        """The state that ranks this task: for Disconnected, the state it was in before."""
        if self.state is TaskState.DISCONNECTED and self.disconnected_from is not None:
            return self.disconnected_from
        return self.state

    @property
    def rank(self) -> int:
        return TASK_STATE_RANK[self.effective_state]
