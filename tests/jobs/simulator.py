"""A pure simulator of the job manager's shell, for property tests.

It keeps one job and its tasks in a dict, applies the reconciler's actions with the task state machine
(as control/manager.py does), and plays the scheduler, the agents and the user through ``Event``s.
Time is a fake clock; ids come from a counter but are scrambled, so no decision may rest on their order.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

from corral.domain.errors import ConflictError, ValidationError
from corral.domain.job import Capacity, Job
from corral.domain.states import TASK_STATE_RANK, FinishedReason, JobState, TaskState
from corral.domain.stimuli import Ended, HostLost, KillRequested, Placed, Reconnected, Reported, TaskStimulus
from corral.domain.task import Task
from corral.jobs import CreateTask, FinishJob, FinishTask, JobManagerConfig, KillTask, commands, reconcile
from corral.jobs.task_machine import transition

S = TaskState
HOSTS = ("h0", "h1", "h2")
STEPS = (1.0, 5.0, 12.0, 21.0, 30.0, 60.0)  # clock steps, chosen to straddle the test config's timeouts
MAX_PASSES = 8

# An event is a tuple: its kind, then small integers the simulator maps onto whatever exists.
Event = tuple[str, int, int]

# What an agent may report, by the event's second number.
REPORTS: tuple[Callable[[float], Reported], ...] = (
    lambda at: Reported(S.START_INITIATED, at),
    lambda at: Reported(S.STARTED, at),
    lambda at: Reported(S.FINISHED, at, detail="exited 0", exit_code=0),
    lambda at: Reported(S.FINISHED, at, detail="exited 1", exit_code=1),
    lambda at: Reported(S.FINISHED, at, detail="exited 137", exit_code=137),
    lambda at: Reported(S.FINISHED, at, FinishedReason.CRASHED, "runtime crashed"),
    lambda at: Reported(S.KILL_INITIATED, at),  # sent only for tasks the master is killing
)


class NoFixpoint(AssertionError):
    pass


@dataclass
class Sim:
    job: Job
    config: JobManagerConfig
    now: float = 0.0
    tasks: dict[str, Task] = field(default_factory=dict)
    down: set[str] = field(default_factory=set)  # hosts whose agents cannot be heard
    ranks: dict[str, int] = field(default_factory=dict)  # the highest rank each task has shown
    created: int = 0

    # -- the shell ----------------------------------------------------------------------------

    def reconcile(self) -> None:
        """Reconcile until a pass asks for nothing, as the shell does while the job stays dirty."""
        for _ in range(MAX_PASSES):
            if self.job.state is JobState.FINISHED:
                return
            actions = reconcile(self.job, list(self.tasks.values()), self.now, self.config).actions
            if not actions:
                return
            for action in actions:
                self.apply(action)
        raise NoFixpoint(f"reconcile still asks for work after {MAX_PASSES} passes")

    def apply(self, action: CreateTask | KillTask | FinishTask | FinishJob) -> None:
        match action:
            case CreateTask():
                self.created += 1
                task = Task(
                    f"t{self.created * 7919 % 10007:05d}.{self.created}",  # unique, in no useful order
                    action.job_id,
                    action.index,
                    created_at=self.now,
                    updated_at=self.now,
                    ready_at=action.ready_at,
                    attempt=action.attempt,
                    system_attempt=action.system_attempt,
                    resubmit_of=action.replaces,
                    job_failure_streak=action.job_failure_streak,
                )
                self.tasks[task.id] = task
                self.observe(task)
            case KillTask():
                self.stimulate(action.task_id, KillRequested(action.reason, self.now, action.detail))
            case FinishTask():
                self.stimulate(action.task_id, Ended(action.reason, self.now, action.detail))
            case FinishJob():
                self.job = commands.finish_job(self.job, action.reason, action.detail, self.now)

    def stimulate(self, task_id: str, event: TaskStimulus) -> bool:
        after = transition(self.tasks[task_id], event)
        if after is None:
            return False
        self.tasks[task_id] = after
        self.observe(after)
        return True

    def observe(self, task: Task) -> None:
        """States never go backwards: a task's effective rank only rises."""
        rank = TASK_STATE_RANK[task.effective_state]
        assert rank >= self.ranks.get(task.id, 0), f"{task.id} went back to {task.effective_state}"
        self.ranks[task.id] = rank

    # -- the world ----------------------------------------------------------------------------

    def pick(self, tasks: list[Task], n: int) -> Task | None:
        tasks.sort(key=lambda t: t.id)
        return tasks[n % len(tasks)] if tasks else None

    def ready(self) -> list[Task]:
        return [t for t in self.tasks.values() if t.state is S.ACCEPTED and t.ready_at <= self.now]

    def heard(self) -> list[Task]:
        """Placed tasks whose agents are connected."""
        return [t for t in self.tasks.values() if t.on_host and t.host_id not in self.down]

    def play(self, event: Event) -> None:
        kind, a, b = event
        if kind == "place":  # a scheduling iteration: up to ``a % 4 + 1`` ready tasks, spread from host ``b``
            ready = sorted(self.ready(), key=lambda t: t.id)[: a % 4 + 1]
            for i, task in enumerate(ready):
                self.stimulate(task.id, Placed(HOSTS[(b + i) % len(HOSTS)], self.now))
        elif kind == "report":
            heard = self.pick(self.heard(), a)
            report = REPORTS[b % len(REPORTS)](self.now)
            if heard is not None and (report.state is not S.KILL_INITIATED or heard.kill_reason is not None):
                self.stimulate(heard.id, report)
        elif kind == "lose":
            self.lose(HOSTS[a % len(HOSTS)])
        elif kind == "reconnect":
            self.reconnect(HOSTS[a % len(HOSTS)])
        elif kind == "advance":
            self.now += STEPS[a % len(STEPS)]
        elif kind == "kill_task":
            self.kill_task(a, bool(b % 2))
        elif kind == "resize":
            self.command(commands.resize, Capacity(min(a, b), a, max(a, b) + 1))
        elif kind == "enable":
            self.command(commands.set_enabled, bool(a % 2))
        elif kind == "kill_job":
            self.command(commands.kill_job)
        else:
            raise ValueError(kind)
        self.reconcile()

    def lose(self, host: str) -> None:
        self.down.add(host)
        for task in list(self.tasks.values()):
            if task.host_id == host and task.on_host:
                self.stimulate(task.id, HostLost(self.now, "heartbeats missed"))

    def reconnect(self, host: str) -> None:
        self.down.discard(host)
        for task in list(self.tasks.values()):
            if task.host_id == host and task.state is S.DISCONNECTED:
                self.stimulate(task.id, Reconnected(self.now))

    def kill_task(self, n: int, shrink: bool) -> None:
        task = self.pick([t for t in self.tasks.values() if t.is_live], n)
        if task is None:
            return
        try:
            self.job, kill = commands.kill_task(self.job, task, shrink, self.now)
        except ConflictError:
            return
        self.stimulate(task.id, kill)

    def command(self, call: Callable[..., Job], *args: object) -> None:
        with contextlib.suppress(ConflictError, ValidationError):
            self.job = call(self.job, *args, self.now)

    # -- calm after the storm -----------------------------------------------------------------

    def settle_round(self, exit_code: int | None = None) -> None:
        """Hosts come back, every ready task is placed and started (then exits with ``exit_code``,
        if given), every kill is confirmed, and the clock moves on past any backoff."""
        for host in HOSTS:
            self.reconnect(host)
        self.reconcile()
        for task in self.ready():
            self.stimulate(task.id, Placed(HOSTS[0], self.now))
        for task in self.heard():
            if task.kill_reason is not None:
                self.stimulate(task.id, Reported(S.FINISHED, self.now, exit_code=143))
                continue
            self.stimulate(task.id, Reported(S.STARTED, self.now))
            if exit_code is not None:
                self.stimulate(task.id, Reported(S.FINISHED, self.now, exit_code=exit_code))
        self.reconcile()
        self.now += 30.0
        self.reconcile()

    def live(self) -> list[Task]:
        return [t for t in self.tasks.values() if t.is_live]
