"""Health, readiness, the master's status, the overview, and operator actions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from corral import __version__
from corral.api.auth import AdminDep, PrincipalDep
from corral.api.deps import ServiceDep, master_of
from corral.api.models import PruneModel, ResolveModel
from corral.api.responses import errors
from corral.domain.codec import to_builtins

router = APIRouter(tags=["admin"])


@router.get("/healthz", summary="The process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="This master leads (load balancers send traffic here)",
    responses={503: {"description": "Not the leader: standby, starting or failed (and who leads)"}},
)
async def readyz(request: Request) -> JSONResponse:
    master = master_of(request)
    if master is None or not master.ready:
        body: dict[str, Any] = {"status": master.role.value if master is not None else "starting"}
        if master is not None and master.failure is not None:
            body["reason"] = str(master.failure)
        if master is not None and master.leader is not None and master.leader.live:
            body["leader"] = master.leader.url
        return JSONResponse(body, status_code=503)
    return JSONResponse({"status": "ready", "role": "leader"})


@router.get(
    "/api/v1/status",
    summary="This master's role and, when it leads, what it is doing",
    responses=errors(),
)
async def status(request: Request) -> dict[str, Any]:
    master = master_of(request)
    if master is None:
        return {"version": __version__, "role": "starting", "leader": False}
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
    out.update(master.service.status())
    return out


@router.get(
    "/api/v1/overview",
    summary="The cluster at a glance: fleet, allocation, queue, busiest jobs",
    responses=errors(400),
)
async def overview(
    request: Request,
    service: ServiceDep,
    principal: PrincipalDep,
    top: Annotated[int, Query(ge=0, le=100)] = 10,
) -> dict[str, Any]:
    out: dict[str, Any] = to_builtins(service.overview(principal, top))
    master = master_of(request)
    out["leader"] = master.id if master is not None else ""
    out["scheduler"] = service.scheduler_stats()
    out["alerts"] = service.alert_count()
    return out


@router.post(
    "/api/v1/admin/prune",
    summary="Delete finished jobs older than older_than_s",
    responses=errors(400, 413),
)
async def prune(body: PruneModel, service: ServiceDep, _: AdminDep) -> dict[str, int]:
    return {"pruned_jobs": await service.prune(body.older_than_s)}


@router.get(
    "/api/v1/admin/alerts",
    summary="What waits for an operator: unknown tasks (nothing was killed) and jobs set aside",
    responses=errors(),
)
async def alerts(service: ServiceDep) -> dict[str, Any]:
    return {"items": service.alerts()}


@router.post(
    "/api/v1/admin/alerts/{alert_id}/resolve",
    summary="Kill or keep an alert's unknown tasks; retry a job set aside",
    responses=errors(400, 404, 409, 413),
)
async def resolve(alert_id: str, body: ResolveModel, service: ServiceDep, _: AdminDep) -> dict[str, Any]:
    return await service.resolve_alert(alert_id, body.action)
