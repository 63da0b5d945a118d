"""``/api/v1/events``: Server-Sent Events — a snapshot, a ``snapshot_end`` marker, then live updates
(``snapshot=false``: the marker at once, then updates; the web console fetches what it shows itself).

The subscription is taken before the snapshot is read, so no change falls between the two; a client
may see a record twice (once in the snapshot, once as an update) but never miss one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from sse_starlette.sse import EventSourceResponse

from corral.api.deps import master_of
from corral.control.bus import BusEvent
from corral.control.master import Master
from corral.domain.codec import to_builtins, to_json

router = APIRouter(prefix="/api/v1", tags=["events"])
MasterDep = Annotated[Master, Depends(master_of)]


def _sse(kind: str, data: Any) -> dict[str, str]:
    return {"event": kind, "data": to_json(data).decode()}


@router.get("/events", summary="Stream job, task and host changes (SSE)")
async def events(
    request: Request,
    master: MasterDep,
    job: str | None = None,
    snapshot: Annotated[bool, Query(description="begin with every active job and task")] = True,
) -> EventSourceResponse:
    def wanted(event: BusEvent) -> bool:
        if job is None:
            return True
        if event.kind == "job":
            return bool(event.data.get("id") == job)
        if event.kind == "task":
            return bool(event.data.get("job_id") == job)
        return event.kind == "overflow"

    subscription = master.bus.subscribe(wanted)
    jobs = [j for j in master.state.jobs.values() if job is None or j.id == job] if snapshot else []
    tasks = [t for j in jobs for t in master.state.tasks_of(j.id)]

    async def stream() -> AsyncIterator[dict[str, str]]:
        try:
            for j in jobs:
                yield _sse("job", to_builtins(j))
            for t in tasks:
                yield _sse("task", to_builtins(t))
            yield _sse("snapshot_end", {"jobs": len(jobs), "tasks": len(tasks)})
            while not await request.is_disconnected():
                event = await subscription.get()
                yield _sse(event.kind, event.data)
                if event.kind == "overflow":
                    break
        finally:
            subscription.close()

    return EventSourceResponse(stream(), ping=15)
