"""``/api/v1/hostgroups``: the host groups the autoscaler sizes (shape, sizes, cooldowns, cost, provider),
and why each of a group's hosts is kept or what its removal waits for. Admins change them; anyone reads."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from corral.api.auth import AdminDep
from corral.api.deps import ServiceDep
from corral.api.models import HostGroupBody
from corral.api.responses import errors

router = APIRouter(prefix="/api/v1/hostgroups", tags=["hostgroups"])


@router.get("", summary="List host groups with their hosts and the autoscaler's notes", responses=errors())
async def list_host_groups(service: ServiceDep) -> dict[str, Any]:
    return {"items": service.host_groups()}


@router.get("/{name}", summary="Get a host group", responses=errors(404))
async def get_host_group(name: str, service: ServiceDep) -> dict[str, Any]:
    return service.host_group(name)


@router.put(
    "/{name}",
    summary="Create or replace a host group (kept across restarts)",
    responses=errors(400, 413),
)
async def put_host_group(name: str, body: HostGroupBody, service: ServiceDep, _: AdminDep) -> dict[str, Any]:
    return await service.put_host_group(body.to_domain(name))


@router.delete(
    "/{name}",
    status_code=204,
    summary="Forget a host group's configuration (its hosts stay; the autoscaler leaves them alone)",
    responses=errors(404),
)
async def delete_host_group(name: str, service: ServiceDep, _: AdminDep) -> Response:
    await service.delete_host_group(name)
    return Response(status_code=204)


@router.get(
    "/{name}/explain",
    summary="Per host why it is kept or what its removal waits for; the group's notes, last shortfall "
    "and recent actions",
    responses=errors(404),
)
async def explain_host_group(name: str, service: ServiceDep) -> dict[str, Any]:
    return service.explain_host_group(name)
