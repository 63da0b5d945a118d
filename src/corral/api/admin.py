"""Health, readiness, the master's status, and operator actions."""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from corral import __version__
from corral.api.deps import master_of
from corral.api.models import PruneModel
from corral.control.master import Master
from corral.domain.codec import to_builtins

router = APIRouter(tags=["admin"])
MasterDep = Annotated[Master, Depends(master_of)]


@router.get("/healthz", summary="The process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The master has loaded its state and leads")
async def readyz(request: Request) -> JSONResponse:
    master: Master | None = getattr(request.app.state, "master", None)
    if master is None or not master.ready:
        failure = str(master.failure) if master is not None and master.failure else "starting"
        return JSONResponse({"status": "not_ready", "reason": failure}, status_code=503)
    return JSONResponse({"status": "ready"})


@router.get("/api/v1/status", summary="What the master is doing: state sizes, scheduler, store, alerts")
async def status(master: MasterDep) -> dict[str, Any]:
    tasks = Counter(t.state.value for t in master.state.tasks.values())
    jobs = Counter(j.state.value for j in master.state.jobs.values())
    hosts = Counter(h.state.value for h in master.state.hosts.values())
    return {
        "version": __version__,
        "leader": True,
        "store": master.config.resolved_store_url.split("?")[0],
        "loaded": to_builtins(master.load_report),
        "jobs": dict(jobs),
        "tasks": dict(tasks),
        "hosts": dict(hosts),
        "pending": master.state.pending_count,
        "scheduler": to_builtins(master.scheduler.stats),
        "writer": {
            "batches": master.writer.batches,
            "records": master.writer.records,
            "backlog": master.writer.backlog,
        },
        "alerts": [to_builtins(a) for a in master.hub.alerts],
    }


@router.post("/api/v1/admin/prune", summary="Delete finished jobs older than older_than_s")
async def prune(body: PruneModel, master: MasterDep) -> dict[str, int]:
    return {"pruned_jobs": await master.prune(body.older_than_s)}
