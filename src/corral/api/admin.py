"""Health, readiness, the master's status, and operator actions."""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from corral import __version__
from corral.api.auth import AdminDep
from corral.api.deps import master_of
from corral.api.models import PruneModel, ResolveModel
from corral.control.master import Master
from corral.control.overview import overview as cluster_overview
from corral.domain.codec import to_builtins

router = APIRouter(tags=["admin"])
MasterDep = Annotated[Master, Depends(master_of)]


@router.get("/healthz", summary="The process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="This master leads (load balancers send traffic here)")
async def readyz(request: Request) -> JSONResponse:
    master: Master | None = getattr(request.app.state, "master", None)
    if master is None or not master.ready:
        body: dict[str, Any] = {"status": master.role.value if master is not None else "starting"}
        if master is not None and master.failure is not None:
            body["reason"] = str(master.failure)
        if master is not None and master.leader is not None and master.leader.live:
            body["leader"] = master.leader.url
        return JSONResponse(body, status_code=503)
    return JSONResponse({"status": "ready", "role": "leader"})


@router.get("/api/v1/status", summary="This master's role and, when it leads, what it is doing")
async def status(request: Request) -> dict[str, Any]:
    master: Master = request.app.state.master
    out: dict[str, Any] = {
        "version": __version__,
        "master_id": master.id,
        "role": master.role.value,
        "leader": master.ready,
        "store": master.config.resolved_store_url.split("?")[0],
        "loaded": to_builtins(master.load_report),
    }
    if master.failure is not None:
        out["failure"] = str(master.failure)
    if not master.ready:
        lease = master.leader
        out["leader_url"] = lease.url if lease is not None and lease.live else None
        return out
    tasks = Counter(t.state.value for t in master.state.tasks.values())
    jobs = Counter(j.state.value for j in master.state.jobs.values())
    hosts = Counter(h.state.value for h in master.state.hosts.values())
    out.update(
        {
            "epoch": master.term.epoch if master.term is not None else None,
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
    )
    return out


@router.get("/api/v1/overview", summary="The cluster at a glance: fleet, allocation, queue, busiest jobs")
async def overview(master: MasterDep, top: Annotated[int, Query(ge=0, le=100)] = 10) -> dict[str, Any]:
    out: dict[str, Any] = to_builtins(cluster_overview(master.state, master.clock(), top))
    out["leader"] = master.id
    out["scheduler"] = to_builtins(master.scheduler.stats)
    out["alerts"] = len(master.hub.alerts)
    return out


@router.post("/api/v1/admin/prune", summary="Delete finished jobs older than older_than_s")
async def prune(body: PruneModel, master: MasterDep, _: AdminDep) -> dict[str, int]:
    return {"pruned_jobs": await master.prune(body.older_than_s)}


@router.get("/api/v1/admin/alerts", summary="Reconciliation alerts waiting for an operator")
async def alerts(master: MasterDep) -> dict[str, Any]:
    return {"items": [to_builtins(a) for a in master.hub.alerts]}


@router.post(
    "/api/v1/admin/alerts/{alert_id}/resolve", summary="Kill the alert's unknown tasks, or keep them"
)
async def resolve(alert_id: str, body: ResolveModel, master: MasterDep, _: AdminDep) -> dict[str, Any]:
    alert = master.hub.resolve_alert(alert_id, kill=body.action == "kill")
    return {"resolved": to_builtins(alert), "action": body.action}
