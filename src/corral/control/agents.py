"""The master's side of the agent protocol: sessions, registration, status, heartbeats, launches, kills.

Reconciliation with a (re)connecting agent follows DESIGN.md §4: tasks the master knows are brought up
to date; a task the agent runs that the master has recorded as finished is killed; a task the master
has no record of at all is killed only while such tasks are few (``unknown_task_kill_limit`` /
``unknown_task_kill_pct``). Above that Corral kills nothing, raises an alert and waits for an operator:
a master that lost its state must never take production down with it.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from corral.control.clock import Clock
from corral.control.config import MasterConfig
from corral.control.ledger import Ledger
from corral.control.quarantine import HostQuarantine
from corral.control.writer import StoreWriter
from corral.domain import wire
from corral.domain.errors import ConflictError, CorralError, NotFoundError
from corral.domain.host import Host
from corral.domain.states import FinishedReason, HostState, TaskState
from corral.domain.task import Task
from corral.jobs.task_machine import Ended, HostLost, Reconnected, Reported
from corral.store.protocol import Store

log = logging.getLogger(__name__)


class LogsError(CorralError):
    def __init__(self, code: str, message: str, status: int = 404) -> None:
        super().__init__(code, message)
        self.status = status


class AgentChannel(Protocol):
    """The transport of one agent connection (a WebSocket in ``api``). Sending never blocks."""

    def send(self, message: dict[str, Any]) -> None: ...

    def close(self, reason: str) -> None: ...


@dataclass(slots=True)
class AgentSession:
    host_id: str
    channel: AgentChannel
    connected_at: float
    last_seen: float
    open: bool = True
    token_id: str = ""  # the credential it connected with: revoking it ends the session


@dataclass(frozen=True, slots=True)
class ReconciliationAlert:
    id: str
    host_id: str
    at: float
    unknown_tasks: tuple[str, ...]
    message: str


@dataclass(slots=True)
class _Outbox:
    """Messages that may only leave once the state they announce is durable."""

    launches: dict[str, None] = field(default_factory=dict)
    forgets: dict[str, list[str]] = field(default_factory=dict)
    ready: asyncio.Event = field(default_factory=asyncio.Event)


class AgentHub:
    def __init__(
        self, ledger: Ledger, store: Store, writer: StoreWriter, clock: Clock, config: MasterConfig
    ) -> None:
        self.ledger = ledger
        self.state = ledger.state
        self.store = store
        self.writer = writer
        self.clock = clock
        self.config = config
        self.sessions: dict[str, AgentSession] = {}
        self.alerts: list[ReconciliationAlert] = []
        self._outbox = _Outbox()
        self._kills: dict[str, list[wire.KillSpec]] = {}
        self._log_streams: dict[str, asyncio.Queue[wire.LogsChunk]] = {}
        self._awaiting: dict[str, float] = {}  # host -> when its tasks are lost if it has not registered
        self._log_ids = itertools.count(1)
        self._alert_ids = itertools.count(1)
        self._tolerated: set[str] = set()  # unknown tasks an operator chose to keep
        self._kill_flush_scheduled = False
        self.quarantine = HostQuarantine(ledger, config)

    # -- connection lifecycle -------------------------------------------------------------------

    async def register(self, channel: AgentChannel, msg: wire.Register, token_id: str = "") -> AgentSession:
        # Look up, off the loop, what the store knows of tasks memory does not hold.
        unknown_ids = [r.task_id for r in msg.tasks if r.task_id not in self.state.tasks]
        finished_elsewhere = (
            await asyncio.to_thread(self._finished_in_store, unknown_ids) if unknown_ids else set()
        )
        now = self.clock()
        old = self.sessions.get(msg.agent_id)
        if old is not None:
            old.open = False
            old.channel.close("replaced by a new connection from the same agent")
        session = AgentSession(msg.agent_id, channel, now, now, token_id=token_id)
        self.sessions[msg.agent_id] = session
        self._awaiting.pop(msg.agent_id, None)
        previous = self.state.hosts.get(msg.agent_id)
        host = Host(
            id=msg.agent_id,
            resources=msg.resources,
            attributes=msg.attributes,
            port_range=msg.port_range,
            network_interfaces=msg.network_interfaces,
            addresses_per_interface=msg.addresses_per_interface,
            state=HostState.READY,
            enabled=previous.enabled if previous else True,
            draining=msg.agent_id in self.state.drained,
            quarantined_until=previous.quarantined_until if previous else None,
            quarantine_detail=previous.quarantine_detail if previous else "",
            registered_at=now,
            last_heartbeat=now,
            runtime=msg.runtime,
            agent_version=msg.version,
        )
        if msg.health is not None:
            host = replace(host, healthy=msg.health.healthy, health_detail=msg.health.detail)
        channel.send(wire.encode(wire.Registered(self.config.heartbeat_interval_s)))
        self._reconcile(session, msg.tasks, finished_elsewhere, now)
        self.ledger.set_host(host)
        self.state.set_images(host.id, msg.images)
        log.info("agent %s registered with %d tasks", msg.agent_id, len(msg.tasks))
        return session

    def await_hosts(self, host_ids: Iterable[str], deadline: float) -> None:
        """Hosts with tasks that have not registered with this leader yet (after a start or a failover).
        Their tasks keep their state; a host still absent at ``deadline`` has its tasks lost."""
        for host_id in host_ids:
            if host_id not in self.sessions:
                self._awaiting[host_id] = deadline

    @property
    def next_deadline(self) -> float | None:
        return min(self._awaiting.values(), default=None)

    def close_all(self, reason: str) -> None:
        for session in list(self.sessions.values()):
            session.open = False
            session.channel.close(reason)
        self.sessions.clear()

    def drop_credential(self, token_id: str) -> int:
        """Close every session that connected with a credential that was just revoked."""
        dropped = 0
        for session in list(self.sessions.values()):
            if token_id and session.token_id == token_id:
                log.warning(
                    "agent %s: its credential %s was revoked; closing its session", session.host_id, token_id
                )
                session.channel.close("the agent's credential was revoked")
                dropped += 1
        return dropped

    def disconnect(self, session: AgentSession, why: str) -> None:
        if not session.open:
            return
        session.open = False
        if self.sessions.get(session.host_id) is session:
            del self.sessions[session.host_id]
            self._mark_unreachable(session.host_id, why)

    def check_heartbeats(self, now: float) -> None:
        self.quarantine.expire(now)
        for host_id, due in list(self._awaiting.items()):
            if due <= now:
                del self._awaiting[host_id]
                never = f"host {host_id} did not come back within {self.config.jobs.lost_after_s:g}s"
                for task in self.state.tasks_on_host(host_id):
                    reason = task.kill_reason or FinishedReason.LOST
                    self.ledger.apply(task, Ended(reason, now, never))
        deadline = now - self.config.heartbeat_timeout_s
        for session in [s for s in self.sessions.values() if s.last_seen < deadline]:
            silent = now - session.last_seen
            session.channel.close(f"no heartbeat for {silent:.1f}s")
            self.disconnect(session, f"missed heartbeats for {silent:.1f}s")

    def _mark_unreachable(self, host_id: str, why: str) -> None:
        now = self.clock()
        host = self.state.hosts.get(host_id)
        if host is not None:
            self.ledger.set_host(replace(host, state=HostState.UNREACHABLE))
        for task in self.state.tasks_on_host(host_id):
            self.ledger.apply(task, HostLost(now, f"host {host_id} unreachable: {why}"))
        log.warning("host %s unreachable: %s", host_id, why)

    # -- messages from agents -------------------------------------------------------------------

    def on_message(self, session: AgentSession, msg: wire.Message) -> None:
        now = self.clock()
        session.last_seen = now
        match msg:
            case wire.Heartbeat():
                host = self.state.hosts.get(session.host_id)
                if host is not None:
                    self.state.put_host(replace(host, last_heartbeat=now))
            case wire.Status():
                self._on_status(session, msg.updates, now)
            case wire.HostStatus():
                self._on_host_status(session, msg)
            case wire.LogsChunk():
                stream = self._log_streams.get(msg.request_id)
                if stream is not None:
                    stream.put_nowait(msg)
            case _:
                log.warning("agent %s sent an unexpected %s", session.host_id, type(msg).__name__)

    def _on_host_status(self, session: AgentSession, msg: wire.HostStatus) -> None:
        host = self.state.hosts.get(session.host_id)
        if host is None:
            return
        health = msg.health
        if (host.healthy, host.health_detail) != (health.healthy, health.detail):
            if health.healthy:
                log.info("host %s is healthy again", host.id)
            else:
                log.warning("host %s is unhealthy: %s", host.id, health.detail)
            self.ledger.set_host(replace(host, healthy=health.healthy, health_detail=health.detail))
        self.state.set_images(host.id, msg.images)

    # -- logs -----------------------------------------------------------------------------------

    async def open_logs(self, task: Task, tail: int | None, follow: bool) -> AsyncIterator[str]:
        """A task's log from the agent that runs (or ran) it. Raises LogsError before anything is streamed
        if it cannot be had; the returned iterator then yields the text as it comes."""
        if task.host_id is None:
            raise LogsError("task_never_placed", f"task {task.id} never ran on a host", 409)
        session = self.sessions.get(task.host_id)
        if session is None or not session.open:
            raise LogsError("host_unreachable", f"host {task.host_id} is not connected", 503)
        request_id = f"{task.id}/{next(self._log_ids)}"
        queue: asyncio.Queue[wire.LogsChunk] = asyncio.Queue()
        self._log_streams[request_id] = queue
        session.channel.send(wire.encode(wire.LogsRequest(request_id, task.id, tail, follow)))
        first = await queue.get()  # the agent answers at once: the start of the log, or why not
        if first.eof and first.error:
            del self._log_streams[request_id]
            raise LogsError("logs_unavailable", first.error)
        return self._follow_logs(session, request_id, queue, first)

    async def _follow_logs(
        self,
        session: AgentSession,
        request_id: str,
        queue: asyncio.Queue[wire.LogsChunk],
        chunk: wire.LogsChunk,
    ) -> AsyncIterator[str]:
        try:
            while True:
                if chunk.data:
                    yield chunk.data
                if chunk.eof:
                    return
                chunk = await queue.get()
        finally:
            del self._log_streams[request_id]
            if not chunk.eof and session.open:
                session.channel.send(wire.encode(wire.LogsCancel(request_id)))

    def _on_status(self, session: AgentSession, updates: Iterable[wire.TaskReport], now: float) -> None:
        strangers = []
        for report in updates:
            task = self.state.tasks.get(report.task_id)
            if task is None or task.host_id != session.host_id:
                strangers.append(report)
                continue
            self._apply_report(session, task, report, now)
        if strangers:
            asyncio.get_running_loop().create_task(self._on_strangers(session, strangers))

    async def _on_strangers(self, session: AgentSession, reports: list[wire.TaskReport]) -> None:
        ids = [r.task_id for r in reports]
        finished = await asyncio.to_thread(self._finished_in_store, ids)
        if session.open:
            self._handle_unknown(session, reports, finished, len(reports), self.clock())

    def _apply_report(self, session: AgentSession, task: Task, report: wire.TaskReport, now: float) -> None:
        if task.state is TaskState.DISCONNECTED:
            task = self.ledger.apply(task, Reconnected(now)) or task
        event = Reported(report.state, now, report.reason, report.detail, report.exit_code)
        reported = self.ledger.apply(task, event)
        if reported is not None and reported.is_finished:
            self.quarantine.task_ended(reported, now)
        task = reported or task
        if task.is_finished:
            self._forget_later(session.host_id, task.id)
        elif task.state is TaskState.KILL_INITIATED and task.kill_reason is not None:
            self.send_kills([task])

    # -- reconciliation on (re)register ---------------------------------------------------------

    def _reconcile(
        self, session: AgentSession, reports: Sequence[wire.TaskReport], finished: set[str], now: float
    ) -> None:
        reported = {r.task_id: r for r in reports}
        for task in self.state.tasks_on_host(session.host_id):
            report = reported.pop(task.id, None)
            if report is not None:
                self._apply_report(session, task, report, now)
            elif task.kill_reason is not None:
                self.ledger.apply(
                    task, Ended(task.kill_reason, now, "gone from its host when it reconnected")
                )
            elif task.effective_state is TaskState.LAUNCHED:
                # Placed, but the launch never reached the agent (lost with a connection or a master):
                # nothing ran, so send it again rather than count the task as lost.
                if task.state is TaskState.DISCONNECTED:
                    task = self.ledger.apply(task, Reconnected(now)) or task
                self.launch_after_commit([task.id])
            else:
                detail = f"host {session.host_id} reconnected without it"
                self.ledger.apply(task, Ended(FinishedReason.LOST, now, detail))
        self._handle_unknown(session, list(reported.values()), finished, len(reports), now)

    def _handle_unknown(
        self,
        session: AgentSession,
        reports: Sequence[wire.TaskReport],
        finished: set[str],
        total: int,
        now: float,
    ) -> None:
        kill: list[str] = []
        strangers: list[str] = []
        for r in reports:
            known = self.state.tasks.get(r.task_id)
            if r.task_id in self._tolerated:
                continue
            if r.state is TaskState.FINISHED:
                self._forget_later(session.host_id, r.task_id)
            elif r.task_id in finished or known is not None:
                kill.append(r.task_id)  # the master knows this task, and knows it is not meant to run here
            else:
                strangers.append(r.task_id)
        limit = max(self.config.unknown_task_kill_limit, total * self.config.unknown_task_kill_pct / 100)
        if strangers and len(strangers) > limit:
            message = (
                f"agent {session.host_id} runs {len(strangers)} of {total} tasks the master has no record "
                f"of; "
                f"over the safety limit ({limit:g}), so none were killed: check the master's state, then "
                "resolve the alert"
            )
            log.error(message)
            alert_id = f"{session.host_id}-{next(self._alert_ids)}"
            self.alerts.append(ReconciliationAlert(alert_id, session.host_id, now, tuple(strangers), message))
        else:
            kill.extend(strangers)
        if kill:
            reason = FinishedReason.KILLED
            specs = tuple(wire.KillSpec(t, reason, 0.0) for t in kill)
            session.channel.send(wire.encode(wire.Kill(specs)))
            log.warning("killing %d tasks on %s that should not run there", len(kill), session.host_id)

    def resolve_alert(self, alert_id: str, kill: bool) -> ReconciliationAlert:
        """An operator's answer to a reconciliation alert: kill the unknown tasks, or keep them running."""
        alert = next((a for a in self.alerts if a.id == alert_id), None)
        if alert is None:
            raise NotFoundError("alert", alert_id)
        if kill:
            session = self.sessions.get(alert.host_id)
            if session is None:
                raise ConflictError(
                    "host_unreachable", f"host {alert.host_id} is not connected: nothing can be killed"
                )
            specs = tuple(wire.KillSpec(t, FinishedReason.KILLED, 0.0) for t in alert.unknown_tasks)
            session.channel.send(wire.encode(wire.Kill(specs)))
            log.warning(
                "operator: killing %d unknown tasks on %s (alert %s)", len(specs), alert.host_id, alert_id
            )
        else:
            self._tolerated.update(alert.unknown_tasks)
            log.warning(
                "operator: keeping %d unknown tasks on %s (alert %s)",
                len(alert.unknown_tasks),
                alert.host_id,
                alert_id,
            )
        self.alerts.remove(alert)
        return alert

    def _finished_in_store(self, task_ids: Sequence[str]) -> set[str]:
        found = set()
        for task_id in task_ids:
            task = self.store.get_task(task_id)
            if task is not None and task.is_finished:
                found.add(task_id)
        return found

    # -- messages to agents ---------------------------------------------------------------------

    def launch_after_commit(self, task_ids: Iterable[str]) -> None:
        for task_id in task_ids:
            self._outbox.launches[task_id] = None
        self._outbox.ready.set()

    def _forget_later(self, host_id: str, task_id: str) -> None:
        self._outbox.forgets.setdefault(host_id, []).append(task_id)
        self._outbox.ready.set()

    def send_kills(self, tasks: Iterable[Task]) -> None:
        """Kill tasks in KillInitiated on their hosts. Kills asked for in one turn of the loop leave as one
        frame per host; a host that is not connected gets them when it registers again."""
        for task in tasks:
            if task.host_id is None or task.state is not TaskState.KILL_INITIATED or task.kill_reason is None:
                continue
            job = self.state.jobs.get(task.job_id)
            grace = float(job.descriptor.container.kill_grace_period_s) if job else 10.0
            spec = wire.KillSpec(task.id, task.kill_reason, grace)
            self._kills.setdefault(task.host_id, []).append(spec)
        if self._kills and not self._kill_flush_scheduled:
            self._kill_flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_kills)

    def _flush_kills(self) -> None:
        self._kill_flush_scheduled = False
        kills, self._kills = self._kills, {}
        for host_id, specs in kills.items():
            session = self.sessions.get(host_id)
            if session is not None:
                session.channel.send(wire.encode(wire.Kill(tuple(specs))))

    async def run_outbox(self) -> None:
        """Send launches and forgets once the state they follow from is committed."""
        box = self._outbox
        while True:
            await box.ready.wait()
            box.ready.clear()
            launches, box.launches = list(box.launches), {}
            forgets, box.forgets = box.forgets, {}
            await self.writer.flush()
            self._send_launches(launches)
            for host_id, ids in forgets.items():
                session = self.sessions.get(host_id)
                if session is not None:
                    session.channel.send(wire.encode(wire.Forget(tuple(ids))))

    def _send_launches(self, task_ids: Sequence[str]) -> None:
        by_host: dict[str, list[wire.LaunchSpec]] = {}
        kills: list[Task] = []
        for task_id in task_ids:
            task = self.state.tasks.get(task_id)
            if task is None or task.host_id is None:
                continue
            if task.state is TaskState.KILL_INITIATED:
                kills.append(task)  # killed before its launch left: the agent answers for an unknown task
                continue
            job = self.state.jobs.get(task.job_id)
            if task.state is not TaskState.LAUNCHED or job is None:
                continue
            batch = job.descriptor.batch
            spec = wire.LaunchSpec(
                task_id=task.id,
                job_id=task.job_id,
                index=task.index,
                container=job.descriptor.container,
                ports=task.ports,
                interface=task.interface,
                address=task.address,
                runtime_limit_s=batch.runtime_limit_s if batch else None,
                attempt=task.attempt,
            )
            by_host.setdefault(task.host_id, []).append(spec)
        for host_id, specs in by_host.items():
            session = self.sessions.get(host_id)
            if session is not None:
                session.channel.send(wire.encode(wire.Launch(tuple(specs))))
        self.send_kills(kills)
