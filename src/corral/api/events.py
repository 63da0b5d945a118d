"""``/api/v1/events``: Server-Sent Events — a snapshot, a ``snapshot_end`` marker, then live updates
(``snapshot=false``: the marker at once, then updates; the web console fetches what it shows itself).

The subscription is taken before the snapshot is read, so no change falls between the two; a client
may see a record twice (once in the snapshot, once as an update) but never miss one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from sse_starlette.sse import EventSourceResponse

from corral.api.auth import PrincipalDep, may_read
from corral.api.deps import master_of
from corral.control.bus import BusEvent
from corral.control.master import Master
from corral.domain.codec import to_builtins, to_json

router = APIRouter(prefix="/api/v1", tags=["events"])
MasterDep = Annotated[Master, Depends(master_of)]


RECHECK_S = 2.0  # a quiet stream still notices a revoked token this soon


def _sse(kind: str, data: Any) -> dict[str, str]:
    return {"event": kind, "data": to_json(data).decode()}


@router.get("/events", summary="Stream job, task and host changes (SSE)")
async def events(
    request: Request,
    master: MasterDep,
    principal: PrincipalDep,
    job: str | None = None,
    snapshot: Annotated[bool, Query(description="begin with every active job and task")] = True,
) -> EventSourceResponse:
    state = master.state
    scoped = master.config.read_scope == "team" and not principal.is_admin

    def visible(job_id: Any) -> bool:
        if not scoped:
            return True
        j = state.jobs.get(job_id) if isinstance(job_id, str) else None
        return j is not None and may_read(master, principal, j.team)

    def wanted(event: BusEvent) -> bool:
        if event.kind == "job":
            return (job is None or event.data.get("id") == job) and visible(event.data.get("id"))
        if event.kind == "task":
            return (job is None or event.data.get("job_id") == job) and visible(event.data.get("job_id"))
        return job is None or event.kind == "overflow"

    subscription = master.bus.subscribe(wanted)
    jobs = (
        [
            j
            for j in master.state.jobs.values()
            if (job is None or j.id == job) and may_read(master, principal, j.team)
        ]
        if snapshot
        else []
    )
    tasks = [t for j in jobs for t in master.state.tasks_of(j.id)]

    async def stream() -> AsyncIterator[dict[str, str]]:
        try:
            for j in jobs:
                yield _sse("job", to_builtins(j))
            for t in tasks:
                yield _sse("task", to_builtins(t))
            yield _sse("snapshot_end", {"jobs": len(jobs), "tasks": len(tasks)})
            while not await request.is_disconnected():
                try:
                    event = await asyncio.wait_for(subscription.get(), RECHECK_S)
                except TimeoutError:
                    event = None
                if not master.auth.still_valid(principal.token_id):
                    return  # the token was revoked (or expired): the stream ends with it
                if event is None:
                    continue
                yield _sse(event.kind, event.data)
                if event.kind == "overflow":
                    break
        finally:
            subscription.close()

    return EventSourceResponse(stream(), ping=15)
