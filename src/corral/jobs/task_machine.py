"""The task state machine: ``transition(task, event) -> Task | None``.

States only move forward (Accepted → Launched → StartInitiated → Started → KillInitiated → Finished);
Disconnected is a side state ranked by the state it left. An event that would move a task backwards,
repeat its state, or touch a finished task returns None: the caller drops it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from corral.domain.health import HealthStatus
from corral.domain.states import TASK_STATE_RANK, FinishedReason, TaskState
from corral.domain.stimuli import (
    Ended,
    HostLost,
    KillRequested,
    Placed,
    ProbesReported,
    Reconnected,
    Reported,
    TaskStimulus,
)
from corral.domain.task import Task, TaskEvent

# The stimuli live in domain/stimuli.py, so that fleet speaks them without importing jobs; they are
# re-exported here for the modules that still import them from this one.
__all__ = [
    "HISTORY_LIMIT",
    "KILLABLE_ON_HOST",
    "REPORTABLE",
    "Ended",
    "HostLost",
    "KillRequested",
    "Placed",
    "ProbesReported",
    "Reconnected",
    "Reported",
    "TaskStimulus",
    "transition",
]

HISTORY_LIMIT = 64
REPORTABLE = frozenset(
    {
        TaskState.LAUNCHED,
        TaskState.START_INITIATED,
        TaskState.STARTED,
        TaskState.KILL_INITIATED,
        TaskState.FINISHED,
    }
)
KILLABLE_ON_HOST = frozenset({TaskState.LAUNCHED, TaskState.START_INITIATED, TaskState.STARTED})


def transition(task: Task, event: TaskStimulus) -> Task | None:
    """The task after ``event``, or None when the event does not apply (duplicate, stale or invalid)."""
    if task.state is TaskState.FINISHED:
        return None
    match event:
        case Placed():
            if task.state is not TaskState.ACCEPTED:
                return None
            return _enter(
                task,
                TaskState.LAUNCHED,
                event.at,
                host_id=event.host_id,
                ports=event.ports,
                interface=event.interface,
                address=event.address,
            )
        case Reported():
            return _reported(task, event)
        case KillRequested():
            return _kill(task, event)
        case HostLost():
            if task.state not in KILLABLE_ON_HOST and task.state is not TaskState.KILL_INITIATED:
                return None
            return _enter(
                task, TaskState.DISCONNECTED, event.at, detail=event.detail, disconnected_from=task.state
            )
        case Reconnected():
            if task.state is not TaskState.DISCONNECTED or task.disconnected_from is None:
                return None
            back = task.disconnected_from
            return _enter(task, back, event.at, detail="host reconnected", disconnected_from=None)
        case Ended():
            return _finish(task, event.reason, event.at, event.detail, None)
        case ProbesReported():
            return _probes(task, event)


def _probes(task: Task, event: ProbesReported) -> Task | None:
    """Record what the task's probes found; a line of history only when its health changes."""
    if not task.on_host or event.probes == task.probes:
        return None
    ready = event.probes.ready is HealthStatus.HEALTHY
    ready_since = (task.ready_since or event.at) if ready else None
    before, after = task.health, event.probes.status()
    changes: dict[str, Any] = {"probes": event.probes, "ready_since": ready_since, "updated_at": event.at}
    if before is after and (task.ready_since is None) == (ready_since is None):
        return replace(task, **changes)
    detail = f"{after.value}: {event.probes.detail}" if event.probes.detail else after.value
    return _record(task, task.state, event.at, None, detail, **changes)


def _reported(task: Task, event: Reported) -> Task | None:
    if event.state not in REPORTABLE or task.state is TaskState.ACCEPTED:
        return None
    changes: dict[str, Any] = {}
    if task.state is TaskState.DISCONNECTED:
        # A report is proof the host is back; rank it against the state the task left.
        if (
            task.disconnected_from is None
            or TASK_STATE_RANK[event.state] < TASK_STATE_RANK[task.disconnected_from]
        ):
            return None
        if event.state is task.disconnected_from:
            return _enter(task, event.state, event.at, detail="host reconnected", disconnected_from=None)
        changes["disconnected_from"] = None
    elif TASK_STATE_RANK[event.state] <= TASK_STATE_RANK[task.state]:
        return None
    if event.state is TaskState.FINISHED:
        if task.kill_reason is not None:
            detail = task.kill_detail or event.detail
            return _finish(task, task.kill_reason, event.at, detail, event.exit_code)
        reason = event.reason or (FinishedReason.NORMAL if event.exit_code == 0 else FinishedReason.FAILED)
        return _finish(task, reason, event.at, event.detail, event.exit_code)
    if event.state is TaskState.STARTED:
        changes["started_at"] = event.at
    return _enter(task, event.state, event.at, detail=event.detail, **changes)


def _kill(task: Task, event: KillRequested) -> Task | None:
    if task.kill_reason is not None:
        return None
    if task.state is TaskState.ACCEPTED:
        return _finish(task, event.reason, event.at, event.detail, None)
    marked = {"kill_reason": event.reason, "kill_detail": event.detail}
    if task.state is TaskState.DISCONNECTED:
        # The agent cannot hear us: remember the kill, to send when the host returns or assume if it is lost.
        return _record(
            task,
            TaskState.DISCONNECTED,
            event.at,
            event.reason,
            event.detail,
            disconnected_from=TaskState.KILL_INITIATED,
            **marked,
        )
    if task.state is TaskState.KILL_INITIATED:
        return None
    return _enter(task, TaskState.KILL_INITIATED, event.at, why=event.reason, detail=event.detail, **marked)


def _finish(task: Task, reason: FinishedReason, at: float, detail: str, exit_code: int | None) -> Task:
    return _enter(
        task,
        TaskState.FINISHED,
        at,
        why=reason,
        detail=detail,
        reason=reason,
        reason_detail=detail,
        exit_code=exit_code,
        finished_at=at,
        disconnected_from=None,
    )


def _enter(
    task: Task,
    state: TaskState,
    at: float,
    *,
    why: FinishedReason | None = None,
    detail: str = "",
    **changes: Any,
) -> Task:
    """``task`` in ``state`` from ``at``, with ``changes`` to its other fields: one new record."""
    return _record(task, state, at, why, detail, updated_at=at, **changes, state=state)


def _record(
    task: Task, entered: TaskState, at: float, why: FinishedReason | None, detail: str, **changes: Any
) -> Task:
    """The task with ``changes`` and a line of history saying it is in ``entered`` (one ``replace``: this
    is the hot path of every report)."""
    host = changes.get("host_id", task.host_id)
    history = (*task.history, TaskEvent(at, entered, why, detail, host))
    if len(history) > HISTORY_LIMIT:
        history = (history[0], *history[-(HISTORY_LIMIT - 1) :])
    return replace(task, history=history, **changes)
