"""The agent protocol: the messages agents and the master exchange over ``/api/v1/agents/stream``.

Each message is a JSON object with a ``type``. Launches, kills and status updates carry lists, so a
burst travels as one frame. The master's clock, not the agent's, stamps task state changes.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from corral.domain.codec import from_builtins, to_builtins
from corral.domain.errors import ValidationError
from corral.domain.health import ProbeResult
from corral.domain.host import HostAttributes
from corral.domain.job import Container
from corral.domain.resources import Resources
from corral.domain.states import FinishedReason, TaskState
from corral.domain.validation import check_strings

PROTOCOL_VERSION = 1


@dataclass(frozen=True, slots=True)
class Health:
    """The agent's health checks: ``healthy`` only if every check passes; ``checks`` says each one's state."""

    healthy: bool = True
    detail: str = ""
    checks: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TaskReport:
    task_id: str
    state: TaskState
    reason: FinishedReason | None = None
    detail: str = ""
    exit_code: int | None = None
    probes: ProbeResult | None = None  # what the task's health checks found (a running task with probes)


# -- agent -> master -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Register:
    agent_id: str
    resources: Resources
    attributes: HostAttributes = field(default_factory=HostAttributes)
    port_range: tuple[int, int] = (30000, 32767)
    network_interfaces: int = 8
    addresses_per_interface: int = 30
    runtime: str = "sim"
    version: str = ""
    protocol: int = PROTOCOL_VERSION
    tasks: tuple[TaskReport, ...] = ()  # everything it runs, and finished tasks not yet forgotten
    health: Health | None = None
    images: tuple[str, ...] = ()  # images it has locally (image locality)


@dataclass(frozen=True, slots=True)
class Heartbeat:
    seq: int = 0


@dataclass(frozen=True, slots=True)
class HostStatus:
    """The agent's own view of its host, sent when it changes (and now and then regardless)."""

    health: Health
    images: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LogsChunk:
    """Part of a task's log, answering ``LogsRequest`` ``request_id``; ``eof`` ends it (``error``: why)."""

    request_id: str
    data: str = ""
    eof: bool = False
    error: str = ""


@dataclass(frozen=True, slots=True)
class Status:
    updates: tuple[TaskReport, ...]


# -- master -> agent -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Registered:
    heartbeat_interval_s: float
    master_version: str = ""
    # An agent that joined with a join token gets a credential bound to its host, once: it keeps it and
    # presents it from then on (the join token may not register a host that has its own credential).
    credential: str = ""


@dataclass(frozen=True, slots=True)
class LaunchSpec:
    task_id: str
    job_id: str
    index: int | None
    container: Container
    ports: tuple[int, ...] = ()
    interface: int | None = None
    address: int | None = None
    runtime_limit_s: int | None = None
    attempt: int = 0
    version: int = 1  # the job version the container is (the agent runs ``container.health`` probes)


@dataclass(frozen=True, slots=True)
class Launch:
    tasks: tuple[LaunchSpec, ...]


@dataclass(frozen=True, slots=True)
class KillSpec:
    task_id: str
    reason: FinishedReason
    grace_period_s: float = 10.0


@dataclass(frozen=True, slots=True)
class Kill:
    tasks: tuple[KillSpec, ...]


@dataclass(frozen=True, slots=True)
class LogsRequest:
    request_id: str
    task_id: str
    tail: int | None = None  # last lines only; None: all
    follow: bool = False


@dataclass(frozen=True, slots=True)
class LogsCancel:
    request_id: str


@dataclass(frozen=True, slots=True)
class Forget:
    """The master has recorded these tasks as finished: the agent may drop them from its reports."""

    task_ids: tuple[str, ...]


Message = (
    Register
    | Heartbeat
    | Status
    | HostStatus
    | LogsChunk
    | Registered
    | Launch
    | Kill
    | Forget
    | LogsRequest
    | LogsCancel
)

_TYPES: dict[str, type[Any]] = {
    "register": Register,
    "heartbeat": Heartbeat,
    "status": Status,
    "host_status": HostStatus,
    "logs_chunk": LogsChunk,
    "logs_request": LogsRequest,
    "logs_cancel": LogsCancel,
    "registered": Registered,
    "launch": Launch,
    "kill": Kill,
    "forget": Forget,
}
_NAMES = {cls: name for name, cls in _TYPES.items()}


def encode(message: Message) -> dict[str, Any]:
    data: dict[str, Any] = to_builtins(message)
    data["type"] = _NAMES[type(message)]
    return data


AGENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,252}\Z")


def validate_register(msg: Register) -> None:
    """Reject a registration whose values cannot be true of a host (a peer is not trusted blindly)."""
    if not AGENT_ID.match(msg.agent_id):
        raise ValidationError("bad_register", f"{msg.agent_id!r} is not a valid agent id", "agent_id")
    r = msg.resources
    for name in ("cpu", "memory_mb", "disk_mb", "network_mbps", "gpu"):
        value = getattr(r, name)
        if not math.isfinite(value) or value < 0:
            raise ValidationError("bad_register", f"{name} must be a finite number >= 0", f"resources.{name}")
    low, high = msg.port_range
    if not 1 <= low <= high <= 65535:
        raise ValidationError("bad_register", f"port range {low}-{high} is not within 1-65535", "port_range")
    if not 0 <= msg.network_interfaces <= 64 or not 0 <= msg.addresses_per_interface <= 64:
        raise ValidationError(
            "bad_register",
            "network interfaces and addresses per interface must be 0..64",
            "network_interfaces",
        )
    if msg.protocol != PROTOCOL_VERSION:
        raise ValidationError(
            "bad_register", f"agent speaks protocol {msg.protocol}, the master {PROTOCOL_VERSION}", "protocol"
        )


def decode(data: Any) -> Message:
    """Parse a message; raise ValidationError (code ``bad_message``) for anything malformed."""
    if not isinstance(data, dict):
        raise ValidationError("bad_message", "a message is a JSON object")
    kind = _TYPES.get(str(data.get("type")))
    if kind is None:
        raise ValidationError("bad_message", f"unknown message type {data.get('type')!r}", "type")
    body = {k: v for k, v in data.items() if k != "type"}
    try:
        message: Message = from_builtins(body, kind)
    except Exception as e:
        raise ValidationError("bad_message", f"malformed {data['type']} message: {e}") from e
    # A peer's strings reach the store (task details, host attributes): no lone surrogate, no NUL.
    check_strings(message, str(data["type"]))
    return message
