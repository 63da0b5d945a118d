"""What the agent protocol decided for one event: orders for the shell, as data.

The shell applies a Decision in this order:
1. ``book``: keep it as the next call's ``view.book`` before anything else (applying the rest may make the
   transport report new events, which must see this book).
2. ``refused``: answer the registration (403/409) or the operator (404/409) with it; nothing else is set
   then but ``book``, ``alerts_raised`` and ``logs``.
3. ``accept_session``: install the new session as the host's current one (and mint a credential bound to
   ``mint_credential_for``; then revoke ``replace_credential``, the one it replaces), *then*
   ``close_sessions``: drop each from the table if it is still current and close its channel. A
   Disconnected the transport reports for a closed session is then ignored (it is no longer current);
   it must not be fed while that session is still current.
4. ``unreachable``: mark those hosts unreachable.
5. ``stimuli``: apply each to the task's current record, in order (the ledger drops those that no longer
   apply).
6. ``kills``: send now, one frame per host (``kills_by_host``), after the ``registered`` answer.
7. ``launch_after_commit`` and ``forgets_by_host()``: through the outbox, once the state is durable.
8. Publish ``alerts_raised`` / ``alerts_resolved`` (log, metric, API, console) and log ``logs``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from corral.domain import wire
from corral.domain.stimuli import TaskStimulus
from corral.fleet.book import Alert, FleetBook


@dataclass(frozen=True, slots=True)
class Refusal:
    status: int  # 403 wrong_host, 409 host_claimed / host_unreachable, 404 alert_not_found
    code: str
    message: str


class Stimulus(NamedTuple):
    task_id: str
    stimulus: TaskStimulus


class KillOrder(NamedTuple):
    host_id: str
    spec: wire.KillSpec


class ForgetOrder(NamedTuple):
    host_id: str
    task_id: str


class SessionClose(NamedTuple):
    host_id: str
    session_id: str
    why: str


class Unreachable(NamedTuple):
    host_id: str
    why: str


@dataclass(frozen=True, slots=True)
class LogLine:
    level: Literal["info", "warning", "error"]
    message: str


@dataclass(frozen=True, slots=True)
class Decision:
    book: FleetBook
    refused: Refusal | None = None
    accept_session: bool = False
    mint_credential_for: str | None = None
    replace_credential: str | None = None  # a minted credential no agent ever presented: revoke it
    stimuli: tuple[Stimulus, ...] = ()
    launch_after_commit: tuple[str, ...] = ()
    kills: tuple[KillOrder, ...] = ()
    forget_after_commit: tuple[ForgetOrder, ...] = ()
    close_sessions: tuple[SessionClose, ...] = ()
    unreachable: tuple[Unreachable, ...] = ()
    alerts_raised: tuple[Alert, ...] = ()  # new alerts, and impostor alerts that counted another attempt
    alerts_resolved: tuple[Alert, ...] = ()
    logs: tuple[LogLine, ...] = ()

    def kills_by_host(self) -> dict[str, tuple[wire.KillSpec, ...]]:
        """The kills as one frame's worth per host."""
        out: dict[str, list[wire.KillSpec]] = {}
        for host_id, spec in self.kills:
            out.setdefault(host_id, []).append(spec)
        return {host_id: tuple(specs) for host_id, specs in out.items()}

    def forgets_by_host(self) -> dict[str, tuple[str, ...]]:
        out: dict[str, list[str]] = {}
        for host_id, task_id in self.forget_after_commit:
            out.setdefault(host_id, []).append(task_id)
        return {host_id: tuple(ids) for host_id, ids in out.items()}


@dataclass(slots=True)
class Draft:
    """A Decision being written by the rules of one ``handle`` call (never leaves the fleet package)."""

    book: FleetBook
    refused: Refusal | None = None
    accept_session: bool = False
    mint_credential_for: str | None = None
    replace_credential: str | None = None
    stimuli: list[Stimulus] = field(default_factory=list)
    launches: list[str] = field(default_factory=list)
    kills: list[KillOrder] = field(default_factory=list)
    forgets: list[ForgetOrder] = field(default_factory=list)
    closes: list[SessionClose] = field(default_factory=list)
    unreachable: list[Unreachable] = field(default_factory=list)
    raised: list[Alert] = field(default_factory=list)
    resolved: list[Alert] = field(default_factory=list)
    logs: list[LogLine] = field(default_factory=list)

    def stimulate(self, task_id: str, stimulus: TaskStimulus) -> None:
        self.stimuli.append(Stimulus(task_id, stimulus))

    def kill(self, host_id: str, spec: wire.KillSpec) -> None:
        self.kills.append(KillOrder(host_id, spec))

    def forget(self, host_id: str, task_id: str) -> None:
        self.forgets.append(ForgetOrder(host_id, task_id))

    def log(self, level: Literal["info", "warning", "error"], message: str) -> None:
        self.logs.append(LogLine(level, message))

    def done(self) -> Decision:
        return Decision(
            book=self.book,
            refused=self.refused,
            accept_session=self.accept_session,
            mint_credential_for=self.mint_credential_for,
            replace_credential=self.replace_credential,
            stimuli=tuple(self.stimuli),
            launch_after_commit=tuple(self.launches),
            kills=tuple(self.kills),
            forget_after_commit=tuple(self.forgets),
            close_sessions=tuple(self.closes),
            unreachable=tuple(self.unreachable),
            alerts_raised=tuple(self.raised),
            alerts_resolved=tuple(self.resolved),
            logs=tuple(self.logs),
        )
