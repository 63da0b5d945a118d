"""The master's HTTP server: uvicorn as ``corral master`` runs it, plus the header deadline uvicorn lacks.

uvicorn (httptools and h11 alike) runs no timer on a connection until a request's headers are complete:
``timeout_keep_alive`` starts only once a response is sent, and any byte received cancels it. So a client
that connects and sends nothing, or half a request line, or one header byte now and then (slowloris),
holds its connection for as long as it likes; 250 of them hold 250 sockets and their buffers. httptools
also takes headers of any size (h11 stops at 16 KiB).

``HeaderDeadlineProtocol`` (uvicorn's httptools protocol, plus a clock) closes a connection whose request
headers are not complete ``request_timeout_s`` after the connection opened or the request's first byte
arrived, and answers 400 to headers over ``max_header_bytes``. It says nothing when it closes: after a
response on a keep-alive connection, bytes written now could be read as the answer to a later request.
The body's size and deadline are ``corral.api.limits``' (it sees the body as the application reads it);
``build_server`` puts both in place.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import uvicorn
from starlette.applications import Starlette
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from corral.api.limits import DEFAULT_REQUEST_TIMEOUT_S, RequestLimits, install_limits
from corral.control.config import MasterConfig

log = logging.getLogger(__name__)

MAX_HEADER_BYTES = 64 * 1024  # request line and headers together (nginx: 4 buffers of 8 KiB; h11: 16 KiB)
WS_MAX_SIZE = 64 * 2**20  # an agent's report of many tasks is one message
GRACEFUL_SHUTDOWN_S = 5


class ServerConfig(uvicorn.Config):
    """uvicorn's Config, carrying what HeaderDeadlineProtocol reads: uvicorn hands each protocol instance
    the config, and nothing else of ours."""

    def __init__(
        self,
        app: Any,
        *,
        header_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S,
        max_header_bytes: int = MAX_HEADER_BYTES,
        **kwargs: Any,
    ) -> None:
        if not header_timeout_s > 0:
            raise ValueError(f"header_timeout_s must be more than 0, not {header_timeout_s}")
        self.header_timeout_s = header_timeout_s
        self.max_header_bytes = max_header_bytes
        super().__init__(app, **kwargs)


class HeadersTooLarge(Exception):
    """Raised inside the parser: httptools turns it into a parse error, and uvicorn answers 400 and closes."""


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """httptools' protocol with a deadline for the request line and headers, and a bound on their size.

    The clock starts when the connection opens (a client that says nothing is dropped too) and at the
    first byte of each later request (the idle time between requests is uvicorn's keep-alive timeout);
    it stops when the headers are complete, a WebSocket upgrade included."""

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.header_timeout_s: float = getattr(config, "header_timeout_s", DEFAULT_REQUEST_TIMEOUT_S)
        self.max_header_bytes: int = getattr(config, "max_header_bytes", MAX_HEADER_BYTES)
        self._header_clock: asyncio.TimerHandle | None = None
        self._header_bytes = 0

    # -- the clock ------------------------------------------------------------------------------------

    def _start_header_clock(self) -> None:
        if self._header_clock is None:
            self._header_clock = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _stop_header_clock(self) -> None:
        if self._header_clock is not None:
            self._header_clock.cancel()
            self._header_clock = None

    def _headers_too_slow(self) -> None:
        self._header_clock = None
        transport = self.transport
        if transport.is_closing() or transport.get_protocol() is not self:
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # The late headers are a pipelined request's, behind one still being answered: that one
            # finishes first. Look again a deadline later.
            self._start_header_clock()
            return
        log.debug(
            "closing a connection from %s: no complete request headers in %gs",
            self.client,
            self.header_timeout_s,
        )
        transport.close()

    # -- uvicorn's and httptools' callbacks -----------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_header_clock()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_clock()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = 0
        self._start_header_clock()  # running already for a connection's first request: not reset

    def on_url(self, url: bytes) -> None:
        self._count_header_bytes(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_header_bytes(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._stop_header_clock()
        super().on_headers_complete()

    def _count_header_bytes(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > self.max_header_bytes:
            raise HeadersTooLarge(f"request headers over {self.max_header_bytes} bytes")


def build_server(app: Starlette, config: MasterConfig, log_level: str) -> uvicorn.Server:
    """The uvicorn server ``corral master`` runs: ``config``'s address and TLS files, the header deadline
    (HeaderDeadlineProtocol) and, unless ``app`` has them already, the body limits (RequestLimits), both
    from ``config.max_body_bytes`` and ``config.request_timeout_s``."""
    if not any(getattr(m, "cls", None) is RequestLimits for m in app.user_middleware):
        install_limits(app, config.max_body_bytes, config.request_timeout_s)
    server_config = ServerConfig(
        app,
        header_timeout_s=config.request_timeout_s,
        host=config.listen_host,
        port=config.listen_port,
        log_level=log_level.lower(),
        access_log=False,
        lifespan="on",
        http=HeaderDeadlineProtocol,
        ws_max_size=WS_MAX_SIZE,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        ssl_certfile=config.tls_cert_file or None,
        ssl_keyfile=config.tls_key_file or None,
    )
    return uvicorn.Server(server_config)
