"""Who is calling, and may they: authentication for every ``/api/v1`` call, authorization per route.

Every HTTP request under ``/api/v1`` is authenticated by a middleware before routing, so a new route
cannot forget it and a caller without a credential learns nothing, not even a validation error. The
credential is ``Authorization: Bearer <token>``, or for reads only the console's ``corral_token``
cookie (a cookie never authorizes a change, so a forged cross-site form cannot act). Agent credentials
are refused here; they only open the agent stream. Each route that changes anything declares
``WriterDep`` or ``AdminDep``; ``check_routes`` refuses to build an app with one that does not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.requests import HTTPConnection

from corral.api.deps import leader_service, master_of
from corral.domain.auth import ADMINS_TEAM, Principal, Role
from corral.domain.errors import Forbidden, Unauthenticated

COOKIE = "corral_token"
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/", "/openapi.json", "/docs", "/redoc"})
OPEN_PREFIXES = ("/ui/", "/docs/")
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ANONYMOUS = Principal("", "anonymous", ADMINS_TEAM, Role.ADMIN)  # when authentication is turned off
AGENT_STREAM = "/api/v1/agents/stream"


def _secret(conn: HTTPConnection, method: str) -> str:
    header = conn.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if conn.scope["type"] == "http" and method in READ_METHODS:  # never for a WebSocket
        return conn.cookies.get(COOKIE, "")
    return ""


def identify(conn: HTTPConnection) -> Principal:
    """The principal behind a connection's credential (Unauthenticated if there is none that works)."""
    service = leader_service(conn)
    if not service.config.auth_enabled:
        return ANONYMOUS
    method = conn.scope.get("method", "GET")
    return service.authenticate(_secret(conn, method))


def authenticate(conn: HTTPConnection) -> None:
    """Run by the middleware for every request: each ``/api/v1`` call needs a principal, not an agent."""
    path = conn.url.path
    if conn.scope["type"] != "http" or path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
        return
    master = master_of(conn)
    if path == "/api/v1/status" and (master is None or not master.ready):
        return  # a standby only says who leads; it holds no credentials to check against
    principal = identify(conn)
    if principal.role is Role.AGENT:
        raise Forbidden("agent credentials only open the agent stream; they cannot call the user API")
    conn.state.principal = principal


# The dependencies are ``async def``: FastAPI would run a plain ``def`` in a worker thread, every request.
async def principal_of(conn: HTTPConnection) -> Principal:
    principal: Principal | None = getattr(conn.state, "principal", None)
    if principal is None:  # only for a route outside /api/v1 that asks anyway
        raise Unauthenticated("a bearer token is required")
    return principal


PrincipalDep = Annotated[Principal, Depends(principal_of)]


async def require_writer(principal: PrincipalDep) -> Principal:
    if not principal.may_write:
        raise Forbidden(f"{principal.name} has the {principal.role.value} role: it may only read")
    return principal


async def require_admin(principal: PrincipalDep) -> Principal:
    if not principal.is_admin:
        raise Forbidden(f"{principal.name} is not an admin: only admins may do this")
    return principal


WriterDep = Annotated[Principal, Depends(require_writer)]
AdminDep = Annotated[Principal, Depends(require_admin)]


_GUARDS: frozenset[Callable[..., Any]] = frozenset({require_writer, require_admin})


def _guarded(dependant: Dependant) -> bool:
    return any(d.call in _GUARDS or _guarded(d) for d in dependant.dependencies)


def check_routes(app: FastAPI) -> None:
    """Every route that changes something declares who may call it; refuse to start otherwise."""
    for route in app.routes:
        if not isinstance(route, APIRoute) or not route.path.startswith("/api/v1/"):
            continue
        methods = set(route.methods or ())
        if methods - READ_METHODS and not _guarded(route.dependant):
            raise RuntimeError(f"{sorted(methods)} {route.path} has no authorization dependency")
