"""An in-memory FleetView for the fleet's unit tests, and a helper that applies a Decision's session and
book effects the way the shell does (tasks stay as the test set them: the ledger is not in this room)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from corral.domain import wire
from corral.domain.states import TaskState
from corral.domain.task import Task
from corral.fleet import (
    Credential,
    Decision,
    FleetBook,
    FleetEvent,
    FleetPolicy,
    Registered,
    SessionInfo,
    StatusReported,
    handle,
)

POLICY = FleetPolicy(heartbeat_timeout_s=10.0, lost_after_s=120.0)
JOIN = Credential("join")  # the shared join token: binds to no host


def own(host: str) -> Credential:
    """The credential the shell minted for ``host`` at its first registration (see FakeView.step)."""
    return Credential(f"minted-{host}", host)


def settled_book(**changes: Any) -> FleetBook:
    """A leader long in office that expects no host: unknown tasks are judged at once."""
    return FleetBook(took_office_at=-1000.0, **changes)


@dataclass
class FakeView:
    tasks: dict[str, Task] = field(default_factory=dict)
    sessions: dict[str, SessionInfo] = field(default_factory=dict)
    book: FleetBook = field(default_factory=settled_book)
    credentials: dict[str, str] = field(default_factory=dict)  # host -> its bound credential
    undelivered: dict[str, tuple[str, str]] = field(default_factory=dict)  # host -> (minted, join token)
    grace: dict[str, float] = field(default_factory=dict)  # job -> kill grace period
    running: int | None = None  # overrides the count of tasks on hosts (a big fleet without the tasks)

    def task(self, task_id: str) -> Task | None:
        return self.tasks.get(task_id)

    def tasks_on_host(self, host_id: str) -> Sequence[Task]:
        return [t for t in self.tasks.values() if t.host_id == host_id and t.on_host]

    def running_tasks(self) -> int:
        if self.running is not None:
            return self.running
        return sum(1 for t in self.tasks.values() if t.on_host)

    def kill_grace_s(self, task: Task) -> float:
        return self.grace.get(task.job_id, 10.0)

    def host_credential(self, host_id: str) -> str | None:
        return self.credentials.get(host_id)

    def undelivered_credential(self, host_id: str) -> tuple[str, str] | None:
        return self.undelivered.get(host_id)

    # -- test helpers -----------------------------------------------------------------------------

    def add(self, *tasks: Task) -> FakeView:
        self.tasks.update((t.id, t) for t in tasks)
        return self

    def connect(
        self, host_id: str, at: float = 0.0, session_id: str | None = None, credential: str = "join"
    ) -> None:
        self.sessions[host_id] = SessionInfo(session_id or f"{host_id}/s", credential, at, at)

    def beat(self, now: float) -> None:
        """Every connected agent sent a heartbeat at ``now`` (the shell stamps ``last_seen``)."""
        self.sessions = {h: replace(s, last_seen=now) for h, s in self.sessions.items()}

    def step(self, event: FleetEvent, now: float = 0.0, policy: FleetPolicy = POLICY) -> Decision:
        """handle(), then apply what the shell would to the sessions, credentials and book (in the order
        fleet/decision.py gives)."""
        decision = handle(self, event, now, policy)
        if decision.accept_session:
            assert isinstance(event, Registered)
            self.sessions[event.host_id] = SessionInfo(event.session_id, event.credential.token_id, now, now)
            minted = self.undelivered.get(event.host_id)
            if minted is not None and minted[0] == event.credential.token_id:
                del self.undelivered[event.host_id]  # presented: it reached its agent
        if decision.mint_credential_for is not None:
            assert isinstance(event, Registered)
            host = decision.mint_credential_for
            self.credentials[host] = f"minted-{host}"
            self.undelivered[host] = (f"minted-{host}", event.credential.token_id)
        for host_id, session_id, _why in decision.close_sessions:
            current = self.sessions.get(host_id)
            if current is not None and current.session_id == session_id:
                del self.sessions[host_id]
        self.book = decision.book
        return decision


def reports(*pairs: tuple[str, TaskState] | str) -> tuple[wire.TaskReport, ...]:
    """Task reports: ``"t1"`` is Started; ``("t1", S.FINISHED)`` says the state."""
    out = []
    for p in pairs:
        task_id, state = (p, TaskState.STARTED) if isinstance(p, str) else p
        out.append(wire.TaskReport(task_id, state))
    return tuple(out)


def register(
    host: str,
    *task_reports: wire.TaskReport,
    session: str | None = None,
    credential: Credential = JOIN,
    finished_in_store: Iterable[str] = (),
) -> Registered:
    return Registered(
        host, session or f"{host}/s", credential, tuple(task_reports), frozenset(finished_in_store)
    )


def status(host: str, *task_reports: wire.TaskReport, session: str | None = None) -> StatusReported:
    return StatusReported(host, session or f"{host}/s", tuple(task_reports))


def strangers(host: str, n: int, prefix: str = "ghost") -> tuple[wire.TaskReport, ...]:
    return reports(*(f"{prefix}-{host}-{i}" for i in range(n)))


def killed_ids(decision: Decision) -> set[str]:
    return {spec.task_id for _host, spec in decision.kills}
