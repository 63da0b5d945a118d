"""``/api/v1/events``: Server-Sent Events — a snapshot, a ``snapshot_end`` marker, then live updates
(``snapshot=false``: the marker at once, then updates; the web console fetches what it shows itself).

The subscription is taken before the snapshot is read, so no change falls between the two; a client
may see a record twice (once in the snapshot, once as an update) but never miss one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from sse_starlette.sse import EventSourceResponse

from corral.api.auth import PrincipalDep
from corral.api.deps import ServiceDep
from corral.api.responses import errors
from corral.domain.codec import to_builtins, to_json

router = APIRouter(prefix="/api/v1", tags=["events"])


RECHECK_S = 2.0  # a quiet stream still notices a revoked token this soon


def _sse(kind: str, data: Any) -> dict[str, str]:
    return {"event": kind, "data": to_json(data).decode()}


@router.get("/events", summary="Stream job, task and host changes (SSE)", responses=errors(400))
async def events(
    request: Request,
    service: ServiceDep,
    principal: PrincipalDep,
    job: str | None = None,
    snapshot: Annotated[bool, Query(description="begin with every active job and task")] = True,
) -> EventSourceResponse:
    feed = service.subscribe(principal, job, snapshot)

    async def stream() -> AsyncIterator[dict[str, str]]:
        try:
            for j in feed.jobs:
                yield _sse("job", to_builtins(j))
            for t in feed.tasks:
                yield _sse("task", to_builtins(t))
            yield _sse("snapshot_end", {"jobs": len(feed.jobs), "tasks": len(feed.tasks)})
            while not await request.is_disconnected():
                try:
                    event = await asyncio.wait_for(feed.subscription.get(), RECHECK_S)
                except TimeoutError:
                    event = None
                if not service.still_valid(principal.token_id):
                    return  # the token was revoked (or expired): the stream ends with it
                if event is None:
                    continue
                yield _sse(event.kind, event.data)
                if event.kind == "overflow":
                    break
        finally:
            feed.close()

    return EventSourceResponse(stream(), ping=15)
