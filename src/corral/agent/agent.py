"""One agent: dial the master, register, heartbeat, run what it is told, report what happens.

The agent keeps a table of its tasks' latest reports, running and recently finished. On every
(re)connection it registers with the whole table; finished entries leave the table only when the
master says it has recorded them (``forget``), so no outcome is lost to a dropped connection or a
master restart. Reconnects back off exponentially with full jitter.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import ssl
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from corral import __version__
from corral.agent.metrics import AgentMetrics
from corral.agent.runtimes.base import LogsUnavailable, Runtime
from corral.domain import wire
from corral.domain.host import HostAttributes
from corral.domain.resources import Resources
from corral.domain.states import TaskState

log = logging.getLogger(__name__)
_json = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class AgentConfig:
    agent_id: str
    master_url: str  # http(s)://host:port
    resources: Resources
    attributes: HostAttributes = field(default_factory=HostAttributes)
    port_range: tuple[int, int] = (30000, 32767)
    network_interfaces: int = 8
    addresses_per_interface: int = 30
    backoff_initial_s: float = 0.2
    backoff_max_s: float = 15.0
    status_batch_s: float = 0.005  # gather status changes this long into one frame
    host_status_s: float = 10.0  # how often health and images are checked (sent when they change)
    host_status_every_s: float = 60.0  # ... and sent regardless this often
    housekeeping_s: float = 60.0
    ping_interval_s: float = 10.0  # WebSocket pings: a master silent this long (twice) is given up
    token: str = ""  # the agent's credential (an agent-role token), sent as a bearer token
    # Where the credential bound to this host is kept once the master mints it (a join token registers a
    # host only until it has its own). Empty: kept in memory only, for the life of this Agent.
    credential_file: str = ""
    ca_file: str = ""  # trust this CA for wss:// masters (default: the system's CAs)

    @property
    def masters(self) -> list[str]:
        """The masters to try, in order (``master_url`` may list several, comma-separated)."""
        return [u.strip() for u in self.master_url.split(",") if u.strip()]

    @property
    def stream_url(self) -> str:
        return stream_url(self.masters[0])


def stream_url(master: str) -> str:
    base = master.rstrip("/")
    if base.startswith("https://"):
        base = "wss://" + base[len("https://") :]
    elif base.startswith("http://"):
        base = "ws://" + base[len("http://") :]
    return base + "/api/v1/agents/stream"


NOT_LEADER_CLOSE = 4001
REFUSED_CLOSES = (4403, 4409)  # a registration refused for host identity (4000 + the HTTP status)


class Rejected(Exception):
    """The master did not accept the registration."""


def backoff_delay(attempt: int, initial: float, cap: float, rng: random.Random) -> float:
    """Full jitter: uniform in [0, min(cap, initial * 2^attempt)], so a fleet does not reconnect in step."""
    return rng.uniform(0, min(cap, initial * 2 ** min(attempt, 30)))


class Agent:
    def __init__(
        self,
        config: AgentConfig,
        runtime: Runtime,
        rng: random.Random | None = None,
        metrics: AgentMetrics | None = None,
    ) -> None:
        self.config = config
        self.runtime = runtime
        self.rng = rng or random.Random()
        self.table: dict[str, wire.TaskReport] = {}
        self.connected = asyncio.Event()
        self.registrations = 0
        self.paused = False  # tests: stop heartbeating without closing the connection
        self._outgoing: list[wire.TaskReport] = []
        self._flush_wake = asyncio.Event()
        self._ws: ClientConnection | None = None
        self._stopping = False
        self._pending: set[asyncio.Task[None]] = set()
        self._streams: dict[str, asyncio.Task[None]] = {}  # log streams by request id
        self._last_status: tuple[wire.Health | None, tuple[str, ...]] = (None, ())
        self._last_status_at = 0.0
        self.on_launch: Callable[[wire.LaunchSpec], None] | None = None  # benchmarks time launches here
        self.token = _read_credential(config.credential_file) or config.token  # the host's own, if it has one
        self.metrics = metrics
        self._ordered_at: dict[str, float] = {}  # launch orders not yet Started (measured with metrics)
        if metrics is not None:
            metrics.watch(self)
        runtime.bind(self._on_report)

    # -- reports from the runtime ---------------------------------------------------------------

    def _on_report(self, report: wire.TaskReport) -> None:
        self.table[report.task_id] = report
        if self.metrics is not None and report.state in (TaskState.STARTED, TaskState.FINISHED):
            ordered = self._ordered_at.pop(report.task_id, None)
            if ordered is not None and report.state is TaskState.STARTED:
                self.metrics.launch.labels(self.config.agent_id).observe(time.monotonic() - ordered)
        if self._ws is not None:
            self._outgoing.append(report)
            self._flush_wake.set()

    # -- connection -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Stay connected to the master until stopped."""
        for report in await self.runtime.recover():
            self.table[report.task_id] = report
        self._background(self._housekeeping())
        attempt = 0
        masters = self.config.masters
        target = masters[0]
        while not self.stopping():
            try:
                async with connect(
                    stream_url(target),
                    additional_headers=self._headers(),
                    ssl=self._tls(target),
                    max_size=64 * 2**20,
                    open_timeout=10,
                    ping_interval=self.config.ping_interval_s,  # notices a master that froze
                    ping_timeout=self.config.ping_interval_s,
                ) as ws:
                    await self._session(ws)
                    attempt = 0  # a session that registered resets the backoff
            except ConnectionClosed as e:
                refused = _refusal(e)
                if refused:  # host identity: this id belongs to another credential, or ours to another id
                    log.error(
                        "agent %s: the master refused the registration: %s", self.config.agent_id, refused
                    )
                    attempt = max(attempt, 5)  # do not hammer it: an operator has to look
                leader = _leader_hint(e)
                if leader and leader != target:  # a standby said who leads: go there at once
                    log.info("agent %s: following the leader to %s", self.config.agent_id, leader)
                    target = leader
                    continue
                target = _next_master(masters, target)
            except InvalidStatus as e:
                denied = e.response.status_code in (401, 403)
                if denied and self.token != self.config.token and self.config.token:
                    # The host's own credential was revoked (an operator re-bootstrapping it): join again.
                    log.warning(
                        "agent %s: its host credential was refused; joining again with the join token",
                        self.config.agent_id,
                    )
                    self.token = self.config.token
                    continue
                # 401/403: our credential is wrong or revoked. Keep trying (an operator may fix it).
                log.warning(
                    "agent %s: %s refused the connection (HTTP %d): check the agent token",
                    self.config.agent_id,
                    target,
                    e.response.status_code,
                )
                target = _next_master(masters, target)
            except (OSError, InvalidHandshake, InvalidURI, TimeoutError, Rejected) as e:
                log.debug("agent %s: connection to %s failed: %s", self.config.agent_id, target, e)
                target = _next_master(masters, target)
            finally:
                self._ws = None
                self.connected.clear()
            if self.stopping():
                return
            delay = backoff_delay(attempt, self.config.backoff_initial_s, self.config.backoff_max_s, self.rng)
            attempt += 1
            await asyncio.sleep(delay)

    def stopping(self) -> bool:
        return self._stopping

    def _keep_credential(self, secret: str) -> None:
        """The master minted a credential bound to this host: use it from now on, and keep it."""
        self.token = secret
        path = self.config.credential_file
        if path:
            _write_credential(path, secret)
        log.info(
            "agent %s: received its own host credential%s",
            self.config.agent_id,
            f" (kept in {path})" if path else "",
        )

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def _tls(self, target: str) -> ssl.SSLContext | None:
        if not target.startswith("https://"):
            return None
        return ssl.create_default_context(cafile=self.config.ca_file or None)

    async def _session(self, ws: ClientConnection) -> None:
        register = wire.Register(
            agent_id=self.config.agent_id,
            resources=self.config.resources,
            attributes=self.config.attributes,
            port_range=self.config.port_range,
            network_interfaces=self.config.network_interfaces,
            addresses_per_interface=self.config.addresses_per_interface,
            runtime=self.runtime.name,
            version=__version__,
            tasks=tuple(self.table.values()),
            health=await self.runtime.health(),
            images=await self.runtime.images(),
        )
        self._last_status = (register.health, register.images)
        self._last_status_at = time.monotonic()
        await ws.send(_json.encode(wire.encode(register)))
        reply = wire.decode(msgspec.json.decode(await asyncio.wait_for(ws.recv(), 10)))
        if not isinstance(reply, wire.Registered):
            raise Rejected(f"expected registered, got {type(reply).__name__}")
        if reply.credential:
            self._keep_credential(reply.credential)
        self._ws = ws
        self._outgoing.clear()  # the registration carried the whole table
        self.registrations += 1
        self.connected.set()
        log.info("agent %s registered", self.config.agent_id)
        loop = asyncio.get_running_loop()
        helpers = [
            loop.create_task(self._heartbeat(ws, reply.heartbeat_interval_s)),
            loop.create_task(self._flush(ws)),
            loop.create_task(self._host_status(ws)),
        ]
        try:
            async for raw in ws:
                await self._handle(ws, wire.decode(msgspec.json.decode(raw)))
        finally:
            for helper in [*helpers, *self._streams.values()]:
                helper.cancel()
            await asyncio.gather(*helpers, *self._streams.values(), return_exceptions=True)
            self._streams.clear()

    async def _send(self, ws: ClientConnection, message: wire.Message) -> None:
        with contextlib.suppress(ConnectionClosed):
            await ws.send(_json.encode(wire.encode(message)))

    async def _host_status(self, ws: ClientConnection) -> None:
        """Check health and images now and then; tell the master when they change (or have not for long)."""
        while True:
            await asyncio.sleep(self.config.host_status_s)
            status = (await self.runtime.health(), await self.runtime.images())
            stale = time.monotonic() - self._last_status_at > self.config.host_status_every_s
            if _changed(status, self._last_status) or stale:
                self._last_status, self._last_status_at = status, time.monotonic()
                await self._send(ws, wire.HostStatus(*status))

    async def _stream_logs(self, ws: ClientConnection, request: wire.LogsRequest) -> None:
        try:
            lines = await self.runtime.logs(request.task_id, request.tail, request.follow)
            await self._send(ws, wire.LogsChunk(request.request_id))  # opened: the master waits for this
            async for data in lines:
                await self._send(ws, wire.LogsChunk(request.request_id, data))
            await self._send(ws, wire.LogsChunk(request.request_id, eof=True))
        except LogsUnavailable as e:
            await self._send(ws, wire.LogsChunk(request.request_id, eof=True, error=str(e)))
        finally:
            if self._streams.get(request.request_id) is asyncio.current_task():
                del self._streams[request.request_id]

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(self.config.housekeeping_s)
            try:
                await self.runtime.housekeeping()
            except Exception:
                log.exception("agent %s: housekeeping failed", self.config.agent_id)

    async def _heartbeat(self, ws: ClientConnection, interval: float) -> None:
        seq = 0
        while True:
            await asyncio.sleep(interval)
            if not self.paused:
                seq += 1
                with contextlib.suppress(ConnectionClosed):
                    await ws.send(_json.encode(wire.encode(wire.Heartbeat(seq))))

    async def _flush(self, ws: ClientConnection) -> None:
        while True:
            await self._flush_wake.wait()
            self._flush_wake.clear()
            if self.config.status_batch_s:
                await asyncio.sleep(self.config.status_batch_s)
            batch, self._outgoing = self._outgoing, []
            if batch and not self.paused:
                with contextlib.suppress(ConnectionClosed):
                    await ws.send(_json.encode(wire.encode(wire.Status(tuple(batch)))))

    async def _handle(self, ws: ClientConnection, message: wire.Message) -> None:
        match message:
            case wire.LogsRequest():
                stream = asyncio.get_running_loop().create_task(self._stream_logs(ws, message))
                self._streams[message.request_id] = stream
            case wire.LogsCancel():
                cancelled = self._streams.pop(message.request_id, None)
                if cancelled is not None:
                    cancelled.cancel()
            case wire.Launch():
                for spec in message.tasks:
                    if self.on_launch is not None:
                        self.on_launch(spec)
                    if spec.task_id in self.table and self.table[spec.task_id].state is TaskState.FINISHED:
                        continue  # already ran here; the master will hear the outcome
                    if self.metrics is not None and spec.task_id not in self.table:
                        self._ordered_at[spec.task_id] = time.monotonic()
                    await self.runtime.launch(spec)
            case wire.Kill():
                for kill in message.tasks:
                    self._background(self.runtime.kill(kill.task_id, kill.grace_period_s))
            case wire.Forget():
                for task_id in message.task_ids:
                    report = self.table.get(task_id)
                    if report is not None and report.state is TaskState.FINISHED:
                        del self.table[task_id]
            case _:
                log.warning("agent %s: unexpected %s", self.config.agent_id, type(message).__name__)

    def _background(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def stop(self, *, kill_tasks: bool = True) -> None:
        """Disconnect and stop. With ``kill_tasks`` the runtime's tasks die unreported (as when a host
        dies); without, they keep running where the runtime allows it (Docker containers do)."""
        self._stopping = True
        ws, self._ws = self._ws, None
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close()
        for task in list(self._pending):
            task.cancel()
        await asyncio.gather(*self._pending, return_exceptions=True)
        if kill_tasks:
            await self.runtime.kill_all()
        await self.runtime.close()


def _changed(
    new: tuple[wire.Health, tuple[str, ...]], old: tuple[wire.Health | None, tuple[str, ...]]
) -> bool:
    """Health or images changed in a way the master cares about (not a check's passing detail)."""
    health, images = new
    before, before_images = old
    if before is None:
        return True
    return (health.healthy, health.detail, images) != (before.healthy, before.detail, before_images)


def _leader_hint(error: ConnectionClosed) -> str:
    """The leader's URL when a standby turned us away with "not leader: <url>", else ""."""
    close = error.rcvd
    if close is None or close.code != NOT_LEADER_CLOSE:
        return ""
    return close.reason.partition("not leader:")[2].strip()


def _refusal(error: ConnectionClosed) -> str:
    """Why the master refused the registration (host identity), or "" for any other close."""
    close = error.rcvd
    if close is None or close.code not in REFUSED_CLOSES:
        return ""
    return close.reason or f"close code {close.code}"


def _read_credential(path: str) -> str:
    if not path:
        return ""
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def _write_credential(path: str, secret: str) -> None:
    """Keep a credential readable by its owner only (written whole, then renamed into place)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(target.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")
    os.replace(temporary, target)


def _next_master(masters: list[str], current: str) -> str:
    """The master after ``current`` in the list (the first, if ``current`` came from a leader hint)."""
    if current not in masters:
        return masters[0]
    return masters[(masters.index(current) + 1) % len(masters)]
