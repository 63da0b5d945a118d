"""The master's ASGI application: the API routers around one ``Master``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from corral import __version__
from corral.api import (
    admin,
    agent_stream,
    auth,
    console,
    errors,
    events,
    groups,
    hostgroups,
    hosts,
    jobs,
    limits,
    metrics,
    plans,
    security,
    tasks,
)
from corral.api.gate import Gate
from corral.control.config import MasterConfig
from corral.control.master import Master


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

    app.add_middleware(Gate)  # a standby redirects to the leader; the leader authenticates
    # Added last, so it runs first: an oversized or slow request is refused before anything reads it.
    limits.install_limits(app, config.max_body_bytes, config.request_timeout_s)
    if config.read_scope not in ("all", "team"):
        raise ValueError(f"read_scope must be 'all' or 'team', not {config.read_scope!r}")
    for module in (
        jobs,
        plans,
        tasks,
        hosts,
        groups,
        hostgroups,
        events,
        admin,
        security,
        metrics,
        agent_stream,
        console,
    ):
        app.include_router(module.router)
    app.mount("/ui", console.static_files(), name="ui")
    auth.check_routes(app)
    return app
