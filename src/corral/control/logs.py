"""Task logs through the master: a request goes to the agent that runs (or ran) the task, and the
chunks it sends back are streamed to the caller until the end of the log or until the caller leaves."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable

from corral.control.sessions import AgentSession
from corral.domain import wire
from corral.domain.errors import CorralError
from corral.domain.task import Task


class LogsError(CorralError):
    def __init__(self, code: str, message: str, status: int = 404) -> None:
        super().__init__(code, message)
        self.status = status


class LogStreams:
    """Open log requests by id; ``on_chunk`` routes what agents send to the request that asked."""

    def __init__(self, session_of: Callable[[str], AgentSession | None]) -> None:
        self._session_of = session_of
        self._streams: dict[str, asyncio.Queue[wire.LogsChunk]] = {}
        self._ids = itertools.count(1)

    def on_chunk(self, chunk: wire.LogsChunk) -> None:
        stream = self._streams.get(chunk.request_id)
        if stream is not None:
            stream.put_nowait(chunk)

    async def open(self, task: Task, tail: int | None, follow: bool) -> AsyncIterator[str]:
        """A task's log from its host. Raises LogsError before anything is streamed if it cannot be had;
        the returned iterator then yields the text as it comes."""
        if task.host_id is None:
            raise LogsError("task_never_placed", f"task {task.id} never ran on a host", 409)
        session = self._session_of(task.host_id)
        if session is None or not session.open:
            raise LogsError("host_unreachable", f"host {task.host_id} is not connected", 503)
        request_id = f"{task.id}/{next(self._ids)}"
        queue: asyncio.Queue[wire.LogsChunk] = asyncio.Queue()
        self._streams[request_id] = queue
        session.channel.send(wire.encode(wire.LogsRequest(request_id, task.id, tail, follow)))
        first = await queue.get()  # the agent answers at once: the start of the log, or why not
        if first.eof and first.error:
            del self._streams[request_id]
            raise LogsError("logs_unavailable", first.error)
        return self._follow(session, request_id, queue, first)

    async def _follow(
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
            del self._streams[request_id]
            if not chunk.eof and session.open:
                session.channel.send(wire.encode(wire.LogsCancel(request_id)))
