"""``/api/v1/hosts``: the fleet as the master sees it, and draining and quarantine."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from corral.api.auth import AdminDep
from corral.api.deps import ServiceDep
from corral.api.models import DrainModel
from corral.api.responses import errors

router = APIRouter(prefix="/api/v1/hosts", tags=["hosts"])


@router.get("", summary="List hosts", responses=errors())
async def list_hosts(service: ServiceDep) -> dict[str, Any]:
    return {"items": service.hosts()}


@router.get("/{host_id}", summary="Get a host", responses=errors(404))
async def get_host(host_id: str, service: ServiceDep) -> dict[str, Any]:
    return service.host(host_id)


@router.post(
    "/{host_id}/drain",
    summary="Drain the host: no new tasks, services moved make-before-break within their disruption budgets, "
    "batch tasks finish until the deadline then rerun elsewhere",
    responses=errors(400, 404),
)
async def drain(
    host_id: str, service: ServiceDep, _: AdminDep, body: DrainModel | None = None
) -> dict[str, Any]:
    return await service.set_draining(host_id, True, body.deadline_s if body is not None else None)


@router.get("/{host_id}/drain", summary="What each task still on the host waits for", responses=errors(404))
async def drain_status(host_id: str, service: ServiceDep) -> dict[str, Any]:
    return service.drain_status(host_id)


@router.post("/{host_id}/undrain", summary="Let the host take new tasks again", responses=errors(404))
async def undrain(host_id: str, service: ServiceDep, _: AdminDep) -> dict[str, Any]:
    return await service.set_draining(host_id, False)


@router.post(
    "/{host_id}/unquarantine", summary="Lift a host's quarantine before its time is up", responses=errors(404)
)
async def unquarantine(host_id: str, service: ServiceDep, _: AdminDep) -> dict[str, Any]:
    return service.unquarantine(host_id)
