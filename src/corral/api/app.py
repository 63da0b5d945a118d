"""The master's ASGI application: the API routers around one ``Master``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse

from corral import __version__
from corral.api import (
    admin,
    agent_stream,
    auth,
    console,
    deps,
    errors,
    events,
    groups,
    hosts,
    jobs,
    limits,
    metrics,
    security,
    tasks,
)
from corral.control.config import MasterConfig
from corral.control.master import Master
from corral.domain.errors import CorralError


def create_app(config: MasterConfig, on_fatal: Callable[[BaseException], None] | None = None) -> FastAPI:
    """An app whose lifespan starts the master (loading state; failing start-up on a bad store)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        master = Master(config, on_fatal=on_fatal)
        await master.start()  # opens the store (StoreError: refuse to start); leadership comes after
        app.state.master = master
        try:
            yield
        finally:
            await master.stop()

    app = FastAPI(
        title="Corral",
        version=__version__,
        description="Submit batch and service jobs; Corral places them on hosts and runs them.",
        lifespan=lifespan,
    )
    errors.install(app)

    @app.middleware("http")
    async def authenticate(request: Request, call_next: Any) -> Any:
        try:
            auth.authenticate(request)
        except CorralError as e:
            errors.count_refusal(request, e)
            return JSONResponse(e.to_dict(), status_code=e.status, headers=e.headers() or None)
        return await call_next(request)

    @app.middleware("http")
    async def follow_the_leader(request: Request, call_next: Any) -> Any:
        """A standby sends API calls to the leader (307 keeps the method and the body)."""
        master = deps.master_of(request)
        path = request.url.path
        if (
            master is not None
            and not master.ready
            and path.startswith("/api/v1/")
            and path != "/api/v1/status"
            and master.leader is not None
            and master.leader.live
        ):
            target = (
                master.leader.url.rstrip("/") + path + (f"?{request.url.query}" if request.url.query else "")
            )
            return RedirectResponse(target, status_code=307)
        return await call_next(request)

    # Added last, so it runs first: an oversized or slow request is refused before anything reads it.
    limits.install_limits(app, config.max_body_bytes, config.request_timeout_s)
    if config.read_scope not in ("all", "team"):
        raise ValueError(f"read_scope must be 'all' or 'team', not {config.read_scope!r}")
    for module in (jobs, tasks, hosts, groups, events, admin, security, metrics, agent_stream, console):
        app.include_router(module.router)
    app.mount("/ui", console.static_files(), name="ui")
    auth.check_routes(app)
    return app
