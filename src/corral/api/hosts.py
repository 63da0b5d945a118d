"""``/api/v1/hosts``: the fleet as the master sees it, and draining and quarantine."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter

from corral.api.auth import AdminDep
from corral.api.deps import ServiceDep
from corral.api.models import DrainModel, GroupDrainModel
from corral.api.responses import errors

router = APIRouter(prefix="/api/v1/hosts", tags=["hosts"])


@router.get("", summary="List hosts", responses=errors())
async def list_hosts(service: ServiceDep) -> dict[str, Any]:
    return {"items": service.hosts()}


@router.post(
    "/groups/{group}/drain",
    summary="Drain a host group a partition at a time, each partition empty before the next starts",
    responses=errors(400, 404, 409),
)
async def drain_group(group: str, body: GroupDrainModel, service: ServiceDep, _: AdminDep) -> dict[str, Any]:
    return await service.drain_group(group, body.partition_percent, body.deadline_s)


@router.get("/groups/{group}/drain", summary="A host group's partitioned drain", responses=errors(404))
async def group_drain(group: str, service: ServiceDep) -> dict[str, Any]:
    return service.group_drain(group)


@router.post(
    "/groups/{group}/drain/{action}",
    summary="Cancel (the current partition stops draining) or resume a host group's drain",
    responses=errors(400, 404, 409),
)
async def change_group_drain(
    group: str, action: Literal["cancel", "resume"], service: ServiceDep, _: AdminDep
) -> dict[str, Any]:
    return await service.change_group_drain(group, action)


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
