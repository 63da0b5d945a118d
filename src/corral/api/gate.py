"""The gate every HTTP request passes before routing: a standby sends ``/api/v1`` calls to the leader
(307 keeps the method and the body), and the leader authenticates each one (``auth.authenticate``).

A pure ASGI middleware: Starlette's ``@app.middleware("http")`` runs each request through a task group
and memory streams, which cost more than the whole submission path it guards.
"""

from __future__ import annotations

from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, RedirectResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from corral.api import auth, errors
from corral.api.deps import master_of
from corral.domain.errors import CorralError


class Gate:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        conn = HTTPConnection(scope)
        master = master_of(conn)
        path = scope["path"]
        if (
            master is not None
            and not master.ready
            and path.startswith("/api/v1/")
            and path != "/api/v1/status"
            and master.leader is not None
            and master.leader.live
        ):
            query = scope.get("query_string", b"").decode("latin-1")
            target = master.leader.url.rstrip("/") + path + (f"?{query}" if query else "")
            await RedirectResponse(target, status_code=307)(scope, receive, send)
            return
        try:
            auth.authenticate(conn)
        except CorralError as e:
            errors.count_refusal(conn, e)
            response = JSONResponse(e.to_dict(), status_code=e.status, headers=e.headers() or None)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
