"""The master's ASGI application: the API routers around one ``Master``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from corral import __version__
from corral.api import admin, agent_stream, errors, events, groups, hosts, jobs, tasks
from corral.control.config import MasterConfig
from corral.control.master import Master


def create_app(config: MasterConfig, on_fatal: Callable[[BaseException], None] | None = None) -> FastAPI:
    """An app whose lifespan starts the master (loading state; failing start-up on a bad store)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        master = Master(config, on_fatal=on_fatal)
        await master.start()
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
    for module in (jobs, tasks, hosts, groups, events, admin, agent_stream):
        app.include_router(module.router)
    return app
