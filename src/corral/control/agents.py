"""The master's side of the agent protocol, as a thin shell: sessions, channels and the outbox.

What to do about a registration, a status report, silence, a disconnect or an operator's answer to an
alert is decided by ``corral.fleet.handle`` (pure: the unknown-task rule with its fleet-wide budget, host
identity, heartbeats). This module feeds it events with a view of the leader's state, keeps the FleetBook
it returns, and applies each Decision: task stimuli through the ledger, kills on the channels, launches
and forgets through the outbox once what they announce is durable. Log streaming is ``logs.py``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace

from corral.control.auth import Authority
from corral.control.clock import Clock
from corral.control.config import MasterConfig
from corral.control.ledger import Ledger
from corral.control.logs import LogStreams
from corral.control.quarantine import HostQuarantine
from corral.control.sessions import AgentChannel, AgentSession
from corral.control.writer import StoreWriter
from corral.domain import wire
from corral.domain.auth import AGENTS_TEAM, Role
from corral.domain.errors import ConflictError, CorralError, NotFoundError
from corral.domain.host import Host
from corral.domain.states import HostState, TaskState
from corral.domain.stimuli import TaskStimulus
from corral.domain.task import Task
from corral.fleet import (
    Alert,
    Credential,
    Decision,
    Disconnected,
    FleetBook,
    FleetEvent,
    FleetPolicy,
    Refusal,
    Registered,
    ResolveAlert,
    SessionInfo,
    StatusReported,
    Tick,
    handle,
    next_deadline,
)
from corral.fleet.budget import picture_complete
from corral.store.protocol import Store

log = logging.getLogger(__name__)
_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


class RegistrationRefused(CorralError):
    """The fleet rules refused a registration (host identity): the connection closes with 4000 + status."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.code, refusal.message)
        self.status = refusal.status


def policy_of(config: MasterConfig) -> FleetPolicy:
    return FleetPolicy(
        heartbeat_timeout_s=config.heartbeat_timeout_s,
        lost_after_s=config.jobs.lost_after_s,
        unknown_kill_min=config.unknown_task_kill_limit,
        unknown_kill_pct=config.unknown_task_kill_pct,
        quorum_pct=config.unknown_task_quorum_pct,
        settle_s=config.unknown_task_settle_s,
    )


@dataclass(slots=True)
class _Outbox:
    """Messages that may only leave once the state they announce is durable."""

    launches: dict[str, None] = field(default_factory=dict)
    forgets: dict[str, list[str]] = field(default_factory=dict)
    ready: asyncio.Event = field(default_factory=asyncio.Event)


class _Sessions(Mapping[str, SessionInfo]):
    """The session table as the fleet rules read it (built on access: a status report reads one entry)."""

    def __init__(self, sessions: dict[str, AgentSession]) -> None:
        self._sessions = sessions

    def __getitem__(self, host_id: str) -> SessionInfo:
        s = self._sessions[host_id]
        return SessionInfo(str(s.id), s.token_id, s.connected_at, s.last_seen)

    def __iter__(self) -> Iterator[str]:
        return iter(self._sessions)

    def __len__(self) -> int:
        return len(self._sessions)


class AgentHub:
    def __init__(
        self,
        ledger: Ledger,
        store: Store,
        writer: StoreWriter,
        clock: Clock,
        config: MasterConfig,
        auth: Authority,
    ) -> None:
        self.ledger = ledger
        self.state = ledger.state
        self.store = store
        self.writer = writer
        self.clock = clock
        self.config = config
        self.auth = auth
        self.policy = policy_of(config)
        self.sessions: dict[str, AgentSession] = {}  # the current session of each host
        self._open: dict[str, AgentSession] = {}  # every open session by id (a replaced one until closed)
        self._infos = _Sessions(self.sessions)
        self.book = FleetBook.at_start(clock(), True, (), self.policy.lost_after_s)
        self.logs = LogStreams(self.sessions.get)
        self.quarantine = HostQuarantine(ledger, config)
        self.on_set_aside: Callable[[str, str, BaseException, float], object] = _reraise
        self._outbox = _Outbox()
        self._kills: dict[str, list[wire.KillSpec]] = {}
        self._kill_flush_scheduled = False
        # Heartbeats are checked this often: a fifth of the timeout keeps detection within 1.2 timeouts.
        self._tick_every = min(1.0, config.heartbeat_timeout_s / 5)
        self._next_tick = 0.0
        # Host credentials this leader minted that no agent has presented yet: host -> (credential, join
        # token). Memory only: a new leader cannot know whether its predecessor's arrived (none replaced).
        self._undelivered: dict[str, tuple[str, str]] = {}

    # -- the FleetView the rules read ------------------------------------------------------------

    @property
    def sessions_view(self) -> Mapping[str, SessionInfo]:
        return self._infos

    def task(self, task_id: str) -> Task | None:
        return self.state.tasks.get(task_id)

    def tasks_on_host(self, host_id: str) -> Sequence[Task]:
        return self.state.tasks_on_host(host_id)

    def running_tasks(self) -> int:
        return self.state.on_host_count

    def kill_grace_s(self, task: Task) -> float:
        job = self.state.jobs.get(task.job_id)
        return float(job.descriptor.container.kill_grace_period_s) if job else 10.0

    def host_credential(self, host_id: str) -> str | None:
        return self.auth.host_credential(host_id)

    def undelivered_credential(self, host_id: str) -> tuple[str, str] | None:
        return self._undelivered.get(host_id)

    # -- start of a term -------------------------------------------------------------------------

    def take_office(self, now: float, expected_hosts: Iterable[str], tolerated: Iterable[str] = ()) -> None:
        """The book of a new leader: the hosts its state places tasks on are awaited (their tasks keep
        their state, lost only if the host never returns); ``tolerated``: tasks of jobs it set aside at
        load, which it must neither kill nor count as unknown."""
        book = FleetBook.at_start(now, True, expected_hosts, self.policy.lost_after_s)
        self.book = replace(book, tolerated=frozenset(tolerated))

    def picture_complete(self, now: float) -> bool:
        """Whether this leader may trust its picture of the fleet: settled since taking office and enough
        of the expected hosts reported. Until then nothing voluntary is disrupted (drains wait)."""
        return picture_complete(self.book, now, self.policy)

    @property
    def next_deadline(self) -> float | None:
        """When the loop should call ``check_heartbeats`` next: the book's own deadlines (awaited hosts,
        the end of settling) or the next heartbeat check, whichever comes first."""
        due = next_deadline(self.book, _View(self, sessions=False), self.policy)
        return self._next_tick if due is None else min(due, self._next_tick)

    @property
    def alerts(self) -> tuple[Alert, ...]:
        return self.book.open_alerts

    # -- connection lifecycle -------------------------------------------------------------------

    async def register(
        self, channel: AgentChannel, msg: wire.Register, credential: Credential
    ) -> AgentSession:
        """Register an agent: RegistrationRefused if the fleet rules refuse it (host identity)."""
        # Look up, off the loop, what the store knows of tasks memory does not hold.
        unknown_ids = [r.task_id for r in msg.tasks if r.task_id not in self.state.tasks]
        finished = await asyncio.to_thread(self._finished_in_store, unknown_ids) if unknown_ids else set()
        now = self.clock()
        session = AgentSession(msg.agent_id, channel, now, now, token_id=credential.token_id)
        event = Registered(msg.agent_id, str(session.id), credential, msg.tasks, frozenset(finished))
        decision = self._decide(event, now)
        if decision.refused is not None:
            self._report(decision)
            raise RegistrationRefused(decision.refused)
        previous = self.state.hosts.get(msg.agent_id)
        minted = self._undelivered.get(msg.agent_id)
        if minted is not None and minted[0] == credential.token_id:
            del self._undelivered[msg.agent_id]  # presented: it reached its agent
        self.sessions[msg.agent_id] = session
        self._open[str(session.id)] = session
        self.ledger.set_host(self._host(msg, previous, now))
        for job_id, error in self.state.take_faults():
            self.on_set_aside(job_id, "agent", error, now)
        self.state.set_images(msg.agent_id, msg.images)
        # Messages to the new session (kills now, launches after commit) wait behind its `registered`.
        self._apply(decision, now)
        secret = ""
        if decision.mint_credential_for is not None and self.config.auth_enabled:
            try:
                secret = await self._mint(msg.agent_id, credential, decision.replace_credential)
            except Exception as e:  # the store refused: the agent comes back later and tries again
                log.error("cannot mint a credential for host %s: %s", msg.agent_id, e)
                session.channel.close(f"cannot mint a credential: {e}")
                self.disconnect(session, "no credential could be minted")
                raise
        session.start(wire.encode(wire.Registered(self.config.heartbeat_interval_s, credential=secret)))
        return session

    async def _mint(self, host_id: str, join: Credential, replaces: str | None = None) -> str:
        """A credential bound to ``host_id`` for an agent that joined with a join token (in place of
        ``replaces``, one that never reached its agent: revoked once the new one is stored)."""
        secret, token = await self.auth.create_token(
            _credential_name(host_id),
            AGENTS_TEAM,
            Role.AGENT,
            created_by=f"join {join.token_id}",
            host=host_id,
        )
        log.info("minted credential %s for host %s (joined with %s)", token.id, host_id, join.token_id)
        self._undelivered[host_id] = (token.id, join.token_id)
        if replaces is not None:
            await self.auth.revoke(replaces, close_sessions=False)
            log.warning("revoked credential %s of host %s: it never reached its agent", replaces, host_id)
        return secret

    def _host(self, msg: wire.Register, previous: Host | None, now: float) -> Host:
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
            cordoned=msg.agent_id in self.state.cordoned,
            quarantined_until=previous.quarantined_until if previous else None,
            quarantine_detail=previous.quarantine_detail if previous else "",
            registered_at=now,
            last_heartbeat=now,
            runtime=msg.runtime,
            agent_version=msg.version,
        )
        if msg.health is not None:
            host = replace(host, healthy=msg.health.healthy, health_detail=msg.health.detail)
        return host

    def close_all(self, reason: str) -> None:
        for session in list(self._open.values()):
            session.open = False
            session.channel.close(reason)
        self.sessions.clear()
        self._open.clear()

    def drop_credential(self, token_id: str, host: str = "") -> int:
        """Close every session that connected with a credential that was just revoked, and, for a host's own
        credential, that host's session (it may still run on the join token it registered with)."""
        dropped = 0
        for session in list(self.sessions.values()):
            if (token_id and session.token_id == token_id) or (host and session.host_id == host):
                log.warning(
                    "agent %s: its credential %s was revoked; closing its session", session.host_id, token_id
                )
                session.channel.close("the agent's credential was revoked")
                dropped += 1
        return dropped

    def disconnect(self, session: AgentSession, why: str) -> None:
        if not session.open:
            return
        now = self.clock()
        self._apply(self._decide(Disconnected(session.host_id, str(session.id), why), now), now)
        session.open = False
        self._open.pop(str(session.id), None)

    def check_heartbeats(self, now: float) -> None:
        """Heartbeat deadlines, awaited hosts, held unknown tasks: one Tick of the fleet rules — when one is
        due (a Tick looks at every session: not on every turn of a busy loop)."""
        if now < self._next_tick:
            due = next_deadline(self.book, _View(self, sessions=False), self.policy)
            if due is None or now < due:
                return
        late = now - self._next_tick if self._next_tick else 0.0  # past due: the loop was busy or starved
        self._next_tick = now + self._tick_every
        self.quarantine.expire(now)
        self._apply(self._decide(Tick(late_s=max(0.0, late)), now), now)

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
                self.logs.on_chunk(msg)
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

    def _on_status(self, session: AgentSession, updates: Sequence[wire.TaskReport], now: float) -> None:
        unknown = [r.task_id for r in updates if r.task_id not in self.state.tasks]
        if unknown:  # the store is asked off the loop what it knows of them; then the rules decide
            asyncio.get_running_loop().create_task(self._on_strangers(session, updates, unknown))
            return
        event = StatusReported(session.host_id, str(session.id), tuple(updates))
        self._apply(self._decide(event, now), now)

    async def _on_strangers(
        self, session: AgentSession, updates: Sequence[wire.TaskReport], unknown: list[str]
    ) -> None:
        finished = await asyncio.to_thread(self._finished_in_store, unknown)
        if session.open:
            now = self.clock()
            event = StatusReported(session.host_id, str(session.id), tuple(updates), frozenset(finished))
            self._apply(self._decide(event, now), now)

    # -- operators --------------------------------------------------------------------------------

    def resolve_alert(self, alert_id: str, kill: bool) -> Alert:
        """An operator's answer to an alert: kill or keep its unknown tasks (or dismiss an impostor)."""
        now = self.clock()
        decision = self._decide(ResolveAlert(alert_id, kill), now)
        refused = decision.refused
        if refused is not None:
            if refused.status == 404:
                raise NotFoundError("alert", alert_id)
            raise ConflictError(refused.code, refused.message)
        self._apply(decision, now)
        return decision.alerts_resolved[0]

    # -- applying decisions ------------------------------------------------------------------------

    def _decide(self, event: FleetEvent, now: float) -> Decision:
        decision = handle(_View(self), event, now, self.policy)
        self.book = decision.book  # first: applying the rest may make the transport report new events
        return decision

    def _close(self, decision: Decision) -> None:
        for host_id, session_id, why in decision.close_sessions:
            session = self._open.pop(session_id, None)
            if session is None:
                continue
            session.open = False
            session.channel.close(why)
            if self.sessions.get(host_id) is session:
                del self.sessions[host_id]

    def _apply(self, decision: Decision, now: float) -> None:
        if decision.refused is not None:
            self._report(decision)
            return
        self._close(decision)
        for host_id, _why in decision.unreachable:
            host = self.state.hosts.get(host_id)
            if host is not None:
                self.ledger.set_host(replace(host, state=HostState.UNREACHABLE))
        for task_id, stimulus in decision.stimuli:
            self._stimulate(task_id, stimulus, now)
        for host_id, specs in decision.kills_by_host().items():
            session = self.sessions.get(host_id)
            if session is not None:
                session.send(wire.encode(wire.Kill(specs)))
        if decision.launch_after_commit:
            self.launch_after_commit(decision.launch_after_commit)
        for host_id, ids in decision.forgets_by_host().items():
            self._outbox.forgets.setdefault(host_id, []).extend(ids)
            self._outbox.ready.set()
        self._report(decision)

    def _stimulate(self, task_id: str, stimulus: TaskStimulus, now: float) -> None:
        task = self.state.tasks.get(task_id)
        if task is None:
            return
        try:
            changed = self.ledger.apply(task, stimulus)
        except Exception as e:  # that task's job is at fault, not the agent or the leader
            self.on_set_aside(task.job_id, "agent", e, now)
            return
        if changed is None:
            return
        if changed.is_finished:
            self.quarantine.task_ended(changed, now)
        elif changed.state is TaskState.KILL_INITIATED and task.state is not TaskState.KILL_INITIATED:
            self.send_kills([changed])

    def _report(self, decision: Decision) -> None:
        for line in decision.logs:
            log.log(_LEVELS[line.level], "%s", line.message)
        metrics = self.ledger.metrics
        for alert in decision.alerts_raised:
            metrics.fleet_alerts.labels(type(alert).__name__).inc()
        killed = sum(1 for _ in decision.kills)
        if killed:
            metrics.agent_kills.inc(killed)

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

    def send_kills(self, tasks: Iterable[Task]) -> None:
        """Kill tasks in KillInitiated on their hosts. Kills asked for in one turn of the loop leave as one
        frame per host; a host that is not connected gets them when it registers again."""
        for task in tasks:
            if task.host_id is None or task.state is not TaskState.KILL_INITIATED or task.kill_reason is None:
                continue
            spec = wire.KillSpec(task.id, task.kill_reason, self.kill_grace_s(task))
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
                session.send(wire.encode(wire.Kill(tuple(specs))))

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
                    session.send(wire.encode(wire.Forget(tuple(ids))))

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
                container=job.container_of(task.version),
                ports=task.ports,
                interface=task.interface,
                address=task.address,
                runtime_limit_s=batch.runtime_limit_s if batch else None,
                attempt=task.attempt,
                version=task.version,
            )
            by_host.setdefault(task.host_id, []).append(spec)
        for host_id, specs in by_host.items():
            session = self.sessions.get(host_id)
            if session is not None:
                session.send(wire.encode(wire.Launch(tuple(specs))))
        self.send_kills(kills)


_NO_SESSIONS: Mapping[str, SessionInfo] = {}


class _View:
    """The FleetView over the hub (its ``sessions`` is the rules' read-only table; ``sessions=False``: a
    view for the book's own deadlines, which need no session)."""

    __slots__ = ("_hub", "_sessions")

    def __init__(self, hub: AgentHub, sessions: bool = True) -> None:
        self._hub = hub
        self._sessions = sessions

    @property
    def book(self) -> FleetBook:
        return self._hub.book

    @property
    def sessions(self) -> Mapping[str, SessionInfo]:
        return self._hub.sessions_view if self._sessions else _NO_SESSIONS

    def task(self, task_id: str) -> Task | None:
        return self._hub.task(task_id)

    def tasks_on_host(self, host_id: str) -> Sequence[Task]:
        return self._hub.tasks_on_host(host_id)

    def running_tasks(self) -> int:
        return self._hub.running_tasks()

    def kill_grace_s(self, task: Task) -> float:
        return self._hub.kill_grace_s(task)

    def host_credential(self, host_id: str) -> str | None:
        return self._hub.host_credential(host_id)

    def undelivered_credential(self, host_id: str) -> tuple[str, str] | None:
        return self._hub.undelivered_credential(host_id)


def _credential_name(host_id: str) -> str:
    """A token name for a host's credential (token names are lower case and at most 63 characters)."""
    name = "host-" + "".join(c if c.isalnum() or c in "_.-" else "-" for c in host_id.lower())
    return name[:63]


def _reraise(_job_id: str, _stage: str, error: BaseException, _now: float) -> object:
    raise error
