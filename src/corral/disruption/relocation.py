"""The drain planner: which tasks on draining hosts to move now, which to stop, and why the rest wait.

``plan(draining, jobs, now) -> RelocationPlan``. For a service it is make before break: a ready task on a
draining host first gets a replacement elsewhere (``start``, one of its job's disruption allowance each), and
is stopped only once that replacement is ready (``stop``, no allowance: it was counted when it started). A
service task that is not ready is stopped at once without asking the budget (an unready task takes nothing
away); the service reconciler replaces it as usual. A batch task may finish until its host's drain deadline
(``since + deadline_s``), then is stopped within its job's allowance and rerun elsewhere. A replacement that
ended before it was ready is abandoned: the shell clears ``relocating_to`` and a later plan tries again.

A move once started is completed even if its host is no longer draining: the replacement exists, so the old
task stops when it is ready. The shell should therefore pass every job with a task on a draining host or a
task with ``relocating_to`` set, each with all its tasks; the plan costs O(those tasks).

Pure: the clock is ``now``; the shell applies the plan (creates replacements, asks the kills with reason
``relocated``, clears abandoned ``relocating_to``) and explains the waits. It records ``now`` in
``Job.disruptions`` for each disruption that used the allowance — each service start, each batch stop — since
the rate counts them (``budget.recent_to_keep`` says which to keep).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from corral.disruption.budget import BudgetState, allowance, effective, in_seconds, may_relocate
from corral.domain.disruption import DisruptionBudget
from corral.domain.health import HealthChecks
from corral.domain.job import Job
from corral.domain.readiness import is_ready
from corral.domain.states import FinishedReason, JobState, JobType, TaskState
from corral.domain.task import Task

WAIT_KINDS = ("budget", "rate", "window", "self_managed", "relocation_limit", "replacement", "deadline")


@dataclass(frozen=True, slots=True)
class DrainingHost:
    host_id: str
    since: float  # when its drain began
    deadline_s: float  # batch tasks may finish until since + deadline_s


@dataclass(frozen=True, slots=True)
class StartRelocation:
    """Create a replacement for ``task_id`` elsewhere; the task itself keeps running until it is ready."""

    task_id: str
    job_id: str
    host_id: str = ""  # the draining host it is moved off


@dataclass(frozen=True, slots=True)
class StopTask:
    """Ask ``task_id`` to stop with reason ``relocated``."""

    task_id: str
    detail: str
    job_id: str = ""

    @property
    def reason(self) -> FinishedReason:
        return FinishedReason.RELOCATED


@dataclass(frozen=True, slots=True)
class Wait:
    """Why a task on a draining host is neither moved nor stopped now (``kind`` is one of WAIT_KINDS)."""

    task_id: str
    job_id: str
    host_id: str
    kind: str
    detail: str


@dataclass(frozen=True, slots=True)
class RelocationPlan:
    start: tuple[StartRelocation, ...] = ()
    stop: tuple[StopTask, ...] = ()
    abandon: tuple[str, ...] = ()  # tasks whose replacement ended: clear relocating_to
    waits: Mapping[str, Wait] = field(default_factory=dict)
    next_at: float | None = None  # when the plan may change by time alone


@dataclass(slots=True)
class _Builder:
    start: list[StartRelocation] = field(default_factory=list)
    stop: list[StopTask] = field(default_factory=list)
    abandon: list[str] = field(default_factory=list)
    waits: dict[str, Wait] = field(default_factory=dict)
    next_at: float | None = None

    def wake(self, at: float | None) -> None:
        if at is not None and (self.next_at is None or at < self.next_at):
            self.next_at = at

    def wait(self, task: Task, host: DrainingHost, kind: str, detail: str) -> None:
        self.waits[task.id] = Wait(task.id, task.job_id, host.host_id, kind, detail)


def plan(
    draining: Mapping[str, DrainingHost], jobs: Iterable[tuple[Job, Sequence[Task]]], now: float
) -> RelocationPlan:
    """What to do about the tasks on ``draining`` hosts at ``now``; ``jobs`` each with all its tasks."""
    out = _Builder()
    for job, tasks in jobs:
        if job.state is not JobState.ACCEPTED:  # finished or being killed: its tasks are going anyway
            continue
        if job.type is JobType.SERVICE:
            _plan_service(job, tasks, draining, now, out)
        else:
            _plan_batch(job, tasks, draining, now, out)
    return RelocationPlan(tuple(out.start), tuple(out.stop), tuple(out.abandon), out.waits, out.next_at)


def _draining_host(task: Task, draining: Mapping[str, DrainingHost]) -> DrainingHost | None:
    if task.host_id is None or not task.on_host:
        return None
    return draining.get(task.host_id)


def _ready_ids(job: Job, tasks: Sequence[Task]) -> set[str]:
    checks: dict[int, HealthChecks | None] = {}
    ready = set()
    for t in tasks:
        if t.state is not TaskState.STARTED:
            continue
        if t.version not in checks:
            checks[t.version] = job.container_of(t.version).health
        if is_ready(t, checks[t.version]):
            ready.add(t.id)
    return ready


def _plan_service(
    job: Job, tasks: Sequence[Task], draining: Mapping[str, DrainingHost], now: float, out: _Builder
) -> None:
    budget = job.descriptor.disruption_budget
    by_id = {t.id: t for t in tasks}
    ready = _ready_ids(job, tasks)
    stopped_ready = 0  # ready tasks this plan stops (their replacements are ready and already counted)
    in_flight = 0
    candidates: list[tuple[DrainingHost, Task]] = []
    for t in tasks:
        if not t.is_live or t.kill_reason is not None or t.state is TaskState.KILL_INITIATED:
            continue
        host = _draining_host(t, draining)
        if t.relocating_to is not None:
            replacement = by_id.get(t.relocating_to)
            if replacement is None or not replacement.is_live or replacement.kill_reason is not None:
                out.abandon.append(t.id)
                if host is None:
                    continue
                if t.id not in ready:
                    out.stop.append(StopTask(t.id, _unready_detail(t), job.id))
                else:
                    ended = _ended(t.relocating_to, replacement)
                    out.wait(t, host, "replacement", f"{ended}; it will be moved again")
                continue
            if replacement.id in ready:
                where = f" on {replacement.host_id}" if replacement.host_id else ""
                out.stop.append(StopTask(t.id, f"its replacement {replacement.id} is ready{where}", job.id))
                stopped_ready += t.id in ready
                continue
            if host is not None and t.id not in ready:
                out.stop.append(StopTask(t.id, _unready_detail(t), job.id))
                continue
            in_flight += 1
            if host is not None:
                pending = f"its replacement {replacement.id} is {_describe(replacement)}"
                out.wait(t, host, "replacement", pending)
            continue
        if host is None:
            continue
        if t.id not in ready:
            out.stop.append(StopTask(t.id, _unready_detail(t), job.id))
            continue
        candidates.append((host, t))
    if not candidates:
        return
    spec = job.descriptor.service
    desired = spec.capacity.desired if spec is not None and spec.enabled else 0
    state = BudgetState(JobType.SERVICE, desired, len(ready) - stopped_ready, in_flight, job.disruptions)
    for host, t in _admit(budget, candidates, state, now, out):
        out.start.append(StartRelocation(t.id, job.id, host.host_id))


def _plan_batch(
    job: Job, tasks: Sequence[Task], draining: Mapping[str, DrainingHost], now: float, out: _Builder
) -> None:
    live = 0
    in_flight = 0  # tasks already asked to stop for a drain and not yet finished
    candidates: list[tuple[DrainingHost, Task]] = []
    for t in tasks:
        if not t.is_live:
            continue
        live += 1
        if t.kill_reason is not None or t.state is TaskState.KILL_INITIATED:
            in_flight += t.kill_reason is FinishedReason.RELOCATED
            continue
        host = _draining_host(t, draining)
        if host is None:
            continue
        deadline = host.since + host.deadline_s
        if now < deadline:
            out.wait(t, host, "deadline", f"finishing: drain deadline in {in_seconds(deadline - now)}")
            out.wake(deadline)
            continue
        candidates.append((host, t))
    if not candidates:
        return
    ready = len(_ready_ids(job, tasks))
    state = BudgetState(JobType.BATCH, live, ready, in_flight, job.disruptions)
    for _host, t in _admit(job.descriptor.disruption_budget, candidates, state, now, out):
        out.stop.append(StopTask(t.id, "drain deadline passed: rerun elsewhere", job.id))


def _admit(
    budget: DisruptionBudget | None,
    candidates: list[tuple[DrainingHost, Task]],
    state: BudgetState,
    now: float,
    out: _Builder,
) -> list[tuple[DrainingHost, Task]]:
    """The candidates the job's budget lets go now (oldest drain first, then by host and task id); the
    rest are recorded as waits with what they wait for."""
    rules = effective(budget, state.job_type)
    timeout = rules.self_managed.relocation_timeout_s if rules and rules.self_managed else None
    eligible: list[tuple[DrainingHost, Task]] = []
    for host, t in candidates:
        refused = may_relocate(t, rules)
        if refused is not None:
            out.wait(t, host, "relocation_limit", refused)
            continue
        if timeout is not None and now < host.since + timeout:
            # Self-managed: each host's own drain start counts, not the earliest of the job's.
            own = allowance(rules, replace(state, draining_since=host.since), now)
            out.wait(t, host, own.kind or "self_managed", own.reason)
            out.wake(own.next_at)
            continue
        eligible.append((host, t))
    if not eligible:
        return []
    eligible.sort(key=lambda pair: (pair[0].since, pair[0].host_id, pair[1].id))
    state = replace(state, draining_since=eligible[0][0].since)
    granted = allowance(rules, state, now)
    taken = eligible[: granted.count]
    if len(taken) < len(eligible):
        # Why the rest wait: the budget as it stands once these have started.
        k = len(taken)
        started = replace(state, in_flight=state.in_flight + k, recent=(*state.recent, *(now,) * k))
        after = allowance(rules, started, now)
        kind = after.kind or granted.kind or "budget"
        for host, t in eligible[len(taken) :]:
            out.wait(t, host, kind, after.reason)
        out.wake(after.next_at)
    return taken


def _unready_detail(task: Task) -> str:
    return f"not ready ({_describe(task)}): stopped at once, no budget used"


def _describe(task: Task) -> str:
    where = f" on {task.host_id}" if task.host_id else ""
    state = task.effective_state
    if task.state is TaskState.ACCEPTED:
        return "waiting to be placed"
    if task.state is TaskState.DISCONNECTED:
        return f"disconnected{where}"
    if state in (TaskState.LAUNCHED, TaskState.START_INITIATED):
        return f"starting{where}"
    if state is TaskState.STARTED:
        detail = task.probes.detail if task.probes is not None and task.probes.detail else ""
        return f"running{where}, not ready" + (f": {detail}" if detail else "")
    return f"{state.value}{where}"


def _ended(replacement_id: str, replacement: Task | None) -> str:
    if replacement is None:
        return f"its replacement {replacement_id} is gone"
    why = replacement.reason or replacement.kill_reason
    return f"its replacement {replacement_id} ended" + (f" ({why.value})" if why is not None else "")
