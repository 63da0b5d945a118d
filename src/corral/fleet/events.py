"""What the shell tells the agent protocol: a registration, a status report, a tick, a disconnect, an
operator's answer to an alert. Each is a plain value; ``handle`` turns it into a Decision."""

from __future__ import annotations

from dataclasses import dataclass

from corral.domain import wire


@dataclass(frozen=True, slots=True)
class Credential:
    """The credential an agent connected with: its id, and the host it is bound to (None: a join token,
    which may register any host that has no credential of its own yet)."""

    token_id: str
    bound_host: str | None = None


@dataclass(frozen=True, slots=True)
class Registered:
    """An agent (re)registers as ``host_id`` on a new session, reporting every task it runs or finished.

    ``finished_in_store``: ids among ``reports`` that memory does not hold and the store records as finished
    (the shell looks them up before calling ``handle``)."""

    host_id: str
    session_id: str
    credential: Credential
    reports: tuple[wire.TaskReport, ...] = ()
    finished_in_store: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class StatusReported:
    """A status update from the agent on ``session_id`` (same ``finished_in_store`` lookup)."""

    host_id: str
    session_id: str
    reports: tuple[wire.TaskReport, ...]
    finished_in_store: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Tick:
    """Time passed: heartbeats, awaited hosts and held unknown tasks are checked against ``now``.
    ``late_s``: how far past its due time the shell got to this tick (its loop was busy or starved)."""

    late_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Disconnected:
    """The connection of ``session_id`` closed (by the agent, the network or the shell)."""

    host_id: str
    session_id: str
    why: str


@dataclass(frozen=True, slots=True)
class ResolveAlert:
    """An operator's answer to an alert: kill its unknown tasks, or keep them (``kill=False``)."""

    alert_id: str
    kill: bool


FleetEvent = Registered | StatusReported | Tick | Disconnected | ResolveAlert
