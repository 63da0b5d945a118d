"""Task and job states and the reasons a task or job finishes (DESIGN.md §2)."""

from __future__ import annotations

from enum import StrEnum


class TaskState(StrEnum):
    ACCEPTED = "Accepted"
    LAUNCHED = "Launched"
    START_INITIATED = "StartInitiated"
    STARTED = "Started"
    KILL_INITIATED = "KillInitiated"
    DISCONNECTED = "Disconnected"
    FINISHED = "Finished"


# The order a task moves through; Disconnected is a side state and is ranked by the state it left.
TASK_STATE_RANK: dict[TaskState, int] = {
    TaskState.ACCEPTED: 0,
    TaskState.LAUNCHED: 1,
    TaskState.START_INITIATED: 2,
    TaskState.STARTED: 3,
    TaskState.KILL_INITIATED: 4,
    TaskState.FINISHED: 5,
}

# States in which a task holds resources on a host (it has been placed and not yet finished).
ON_HOST_STATES = frozenset(
    {
        TaskState.LAUNCHED,
        TaskState.START_INITIATED,
        TaskState.STARTED,
        TaskState.KILL_INITIATED,
        TaskState.DISCONNECTED,
    }
)


class JobState(StrEnum):
    ACCEPTED = "Accepted"
    KILL_INITIATED = "KillInitiated"
    FINISHED = "Finished"


class JobType(StrEnum):
    BATCH = "batch"
    SERVICE = "service"


class FinishedReason(StrEnum):
    NORMAL = "normal"
    FAILED = "failed"
    KILLED = "killed"
    EVICTED = "evicted"
    RELOCATED = "relocated"  # moved off a draining host (its replacement was ready first, for a service)
    UNHEALTHY = "unhealthy"  # its liveness probe failed past its threshold: replaced
    SCALED_DOWN = "scaled_down"
    LOST = "lost"
    INVALID_REQUEST = "invalid_request"
    RUNTIME_LIMIT_EXCEEDED = "runtime_limit_exceeded"
    STUCK_IN_STATE = "stuck_in_state"
    CRASHED = "crashed"
    TRANSIENT_SYSTEM_ERROR = "transient_system_error"
    LOCAL_SYSTEM_ERROR = "local_system_error"
    UNKNOWN_SYSTEM_ERROR = "unknown_system_error"

    @property
    def is_system_error(self) -> bool:
        """System errors are Corral's fault, not the user's: retried without spending the user's retries."""
        return self in SYSTEM_ERRORS


SYSTEM_ERRORS = frozenset(
    {
        FinishedReason.CRASHED,
        FinishedReason.TRANSIENT_SYSTEM_ERROR,
        FinishedReason.LOCAL_SYSTEM_ERROR,
        FinishedReason.UNKNOWN_SYSTEM_ERROR,
        FinishedReason.STUCK_IN_STATE,
        FinishedReason.LOST,
    }
)


class HostState(StrEnum):
    READY = "ready"
    UNREACHABLE = "unreachable"
