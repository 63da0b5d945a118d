"""Request limits at the door: how big a request body may be, and how long it may take to arrive.

A pure ASGI middleware (not Starlette's BaseHTTPMiddleware: streamed responses pass untouched, WebSockets
and the lifespan are not looked at). It decides:

- a request whose Content-Length is over ``max_body_bytes`` gets 413 ``body_too_large`` at once: the
  application never runs and not one byte of the body is read;
- a body without a length (chunked) is counted as the application reads it and cut off past the limit
  with the same 413;
- a body not fully received ``request_timeout_s`` after its headers gets 408 ``request_timeout``;
- a response that starts before the body it answers has arrived (an endpoint that does not read bodies,
  a refusal before reading, such as a 401) closes the connection afterwards, so a client trickling the
  rest of a body cannot hold the connection open (uvicorn re-arms no timer while bytes keep coming).

Each refusal closes the connection (``Connection: close``): the unread rest of the body is not drained.
After a refusal the application sees the client as gone (``http.disconnect``) and what it sends is
dropped. The deadline for the request *headers* is the server's (``corral.api.server``): uvicorn reads
those before any middleware runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
DEFAULT_REQUEST_TIMEOUT_S = 10.0


class RequestLimits:
    """The ASGI middleware; ``install_limits`` puts it around an application."""

    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S,
    ) -> None:
        if max_body_bytes < 0:
            raise ValueError(f"max_body_bytes must be 0 or more, not {max_body_bytes}")
        if not request_timeout_s > 0:
            raise ValueError(f"request_timeout_s must be more than 0, not {request_timeout_s}")
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.request_timeout_s = request_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        exchange = _Exchange(self, scope, receive, send)
        length = exchange.content_length
        if length is not None and length > self.max_body_bytes:
            await exchange.refuse(413, "body_too_large", self._too_large_message())
            return
        await self.app(scope, exchange.receive, exchange.send)

    def _too_large_message(self) -> str:
        return f"the request body is over {self.max_body_bytes} bytes, the most this server accepts"


class _Exchange:
    """One request and its response, as the middleware watches them."""

    def __init__(self, limits: RequestLimits, scope: Scope, receive: Receive, send: Send) -> None:
        self.limits = limits
        self._receive = receive
        self._send = send
        self.content_length: int | None = None
        chunked = False
        for name, value in scope["headers"]:
            if name == b"content-length" and self.content_length is None:
                with contextlib.suppress(ValueError):  # the parser refuses these; the body is counted anyway
                    self.content_length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        # Nothing announced: the body is empty, and complete already.
        self.body_complete = not chunked and not self.content_length
        self.received = 0
        self.deadline = asyncio.get_running_loop().time() + limits.request_timeout_s
        self.response_started = False
        self.refused = False

    async def receive(self) -> Message:
        if self.refused:
            return {"type": "http.disconnect"}
        if self.body_complete:  # e.g. waiting for a disconnect while streaming a response: no deadline
            return await self._receive()
        try:
            async with asyncio.timeout_at(self.deadline):
                message = await self._receive()
        except TimeoutError:
            timeout = self.limits.request_timeout_s
            await self.refuse(408, "request_timeout", f"the request body did not arrive within {timeout:g} s")
            return {"type": "http.disconnect"}
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limits.max_body_bytes:
                await self.refuse(413, "body_too_large", self.limits._too_large_message())
                return {"type": "http.disconnect"}
            if not message.get("more_body", False):
                self.body_complete = True
        return message

    async def send(self, message: Message) -> None:
        if self.refused:
            return  # we answered already; the application is only finding out
        if message["type"] == "http.response.start":
            self.response_started = True
            if not self.body_complete:
                message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
        await self._send(message)

    async def refuse(self, status: int, code: str, message: str) -> None:
        """Answer ``status`` and close the connection, unless a response is under way already (then the
        application is only told that the client is gone)."""
        if self.refused or self.response_started:
            self.refused = True
            return
        self.refused = True
        body = json.dumps({"code": code, "message": message}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        await self._send({"type": "http.response.start", "status": status, "headers": headers})
        await self._send({"type": "http.response.body", "body": body})


def install_limits(
    app: Starlette,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S,
) -> None:
    """Put RequestLimits around ``app`` (a FastAPI or Starlette application, before it serves).

    Call it after every other ``add_middleware`` / ``@app.middleware``: the last added runs first, and
    the limits must run before anything reads the body (authentication included).
    """
    app.add_middleware(RequestLimits, max_body_bytes=max_body_bytes, request_timeout_s=request_timeout_s)
