"""``/api/v1/agents/stream``: the WebSocket agents dial into. The first message must be ``register``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import msgspec
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from corral.api.auth import ANONYMOUS, identify
from corral.api.deps import master_of
from corral.control.service import RegistrationRefused
from corral.control.sessions import AgentSession
from corral.domain import wire
from corral.domain.auth import Role
from corral.domain.errors import CorralError, ValidationError

log = logging.getLogger(__name__)
router = APIRouter()

REGISTER_TIMEOUT_S = 10.0
NOT_LEADER_CLOSE = 4001
_json = msgspec.json.Encoder()
_CLOSE = object()


class WebSocketChannel:
    """Queues outgoing messages so the leader never waits on a slow agent; a pump drains the queue."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.close_reason = ""

    def send(self, message: dict[str, Any]) -> None:
        self.queue.put_nowait(message)

    def close(self, reason: str) -> None:
        self.close_reason = reason
        self.queue.put_nowait(_CLOSE)

    async def pump(self) -> None:
        while True:
            message = await self.queue.get()
            if message is _CLOSE:
                with contextlib.suppress(Exception):
                    await self.ws.close(code=4000, reason=self.close_reason[:120])
                return
            await self.ws.send_bytes(_json.encode(message))


async def _receive(ws: WebSocket) -> Any:
    message = await ws.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    raw = message.get("bytes") or message.get("text") or b""
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError as e:
        raise ValidationError("bad_message", f"not JSON: {e}") from e


@router.websocket("/api/v1/agents/stream")
async def agent_stream(ws: WebSocket) -> None:
    master = master_of(ws)
    agent = ANONYMOUS  # when authentication is off
    if master is not None and master.ready and master.config.auth_enabled:
        # Refused before the handshake completes: the client sees HTTP 403, and nothing else happens.
        try:
            principal = identify(ws)
        except CorralError as e:
            log.warning("refused an agent connection from %s: %s", ws.client, e.message)
            await ws.close(code=1008, reason=e.message[:120])
            return
        if principal.role is not Role.AGENT:
            log.warning("refused an agent connection with a %s token (%s)", principal.role, principal.name)
            await ws.close(code=1008, reason="only agent credentials may open the agent stream")
            return
        agent = principal
    await ws.accept()
    if master is None or not master.ready:
        # Agents follow the leader: say where it is (or that there is none yet: try again).
        leader = master.leader if master is not None else None
        where = leader.url if leader is not None and leader.live else ""
        await ws.close(code=NOT_LEADER_CLOSE, reason=f"not leader: {where}"[:120])
        return
    try:
        first = wire.decode(await asyncio.wait_for(_receive(ws), REGISTER_TIMEOUT_S))
    except (TimeoutError, ValidationError, WebSocketDisconnect) as e:
        with contextlib.suppress(Exception):
            await ws.close(code=1008, reason=f"expected a register message: {e}"[:120])
        return
    if not isinstance(first, wire.Register):
        await ws.close(code=1008, reason="the first message must be register")
        return
    try:
        wire.validate_register(first)
    except ValidationError as e:
        log.warning("refused a registration: %s (%s)", e.message, e.field)
        await ws.close(code=1008, reason=f"{e.code}: {e.message}"[:120])
        return
    channel = WebSocketChannel(ws)
    service = master.service
    try:
        session: AgentSession = await service.agent_register(channel, first, agent)
    except RegistrationRefused as e:
        # Host identity: 4403 (a credential bound to another host), 4409 (the host is another's).
        await ws.close(code=4000 + e.status, reason=f"{e.code}: {e.message}"[:120])
        return
    pump = asyncio.get_running_loop().create_task(channel.pump())
    why = "connection closed"
    try:
        while session.open:
            try:
                message = wire.decode(await _receive(ws))
            except ValidationError as e:
                log.warning("agent %s: dropped a bad message: %s", session.host_id, e.message)
                continue
            service.agent_message(session, message)
    except WebSocketDisconnect:
        pass
    except Exception as e:  # the connection broke in some other way
        why = f"connection error: {e}"
    finally:
        service.agent_gone(session, why)
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await pump
