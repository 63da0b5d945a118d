"""What the agent protocol may read of the leader's state: a small Protocol the shell's state satisfies.

Unit tests pass a tiny in-memory fake; the shell (control/agents.py) passes a view over its ClusterState,
its session table, the authority's credentials and the FleetBook it keeps between calls.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from corral.domain.task import Task
from corral.fleet.book import FleetBook


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """A live agent session, as the shell holds it (``last_seen``: the last message of any kind)."""

    session_id: str
    credential_id: str
    connected_at: float
    last_seen: float


class FleetView(Protocol):
    @property
    def book(self) -> FleetBook:
        """The protocol's own bookkeeping, as the last Decision left it."""
        ...

    @property
    def sessions(self) -> Mapping[str, SessionInfo]:
        """Live agent sessions by host id."""
        ...

    def task(self, task_id: str) -> Task | None:
        """Any task the leader holds in memory (live or finished)."""
        ...

    def tasks_on_host(self, host_id: str) -> Sequence[Task]:
        """Tasks the leader places on ``host_id`` (placed and not finished)."""
        ...

    def running_tasks(self) -> int:
        """How many tasks the leader holds on hosts, fleet-wide."""
        ...

    def kill_grace_s(self, task: Task) -> float:
        """The task's job's kill grace period (10.0 if the job is not known)."""
        ...

    def host_credential(self, host_id: str) -> str | None:
        """The id of the live credential bound to ``host_id``, if it has one."""
        ...

    def undelivered_credential(self, host_id: str) -> tuple[str, str] | None:
        """A credential this leader minted for ``host_id`` that no agent has presented yet: its id and the
        id of the join token it was minted from (None: none, or it was presented, or another leader's)."""
        ...
