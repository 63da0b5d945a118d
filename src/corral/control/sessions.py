"""Agent sessions: the transport side of one agent connection, as the shell keeps it.

A session is a channel (a WebSocket in ``api``) plus what the shell needs to tell sessions apart: its id,
the credential it registered with, when it connected and when the agent last spoke. Nothing here decides
anything; ``corral.fleet`` decides, ``control/agents.py`` applies.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Protocol

_ids = itertools.count(1)


class AgentChannel(Protocol):
    """The transport of one agent connection. Sending never blocks; closing ends the connection."""

    def send(self, message: dict[str, Any]) -> None: ...

    def close(self, reason: str) -> None: ...


@dataclass(slots=True, eq=False)
class AgentSession:
    host_id: str
    channel: AgentChannel
    connected_at: float
    last_seen: float
    open: bool = True
    token_id: str = ""  # the credential it connected with: revoking it ends the session
    id: int = 0
    ready: bool = False  # ``registered`` has gone out: other messages may follow
    _early: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.id:
            self.id = next(_ids)

    def start(self, registered: dict[str, Any]) -> None:
        """Send the answer to the registration, then whatever was asked to be sent before it."""
        self.channel.send(registered)
        self.ready = True
        early, self._early = self._early, []
        for message in early:
            self.channel.send(message)

    def send(self, message: dict[str, Any]) -> None:
        if self.ready:
            self.channel.send(message)
        else:
            self._early.append(message)
