"""``/api/v1/capacity-groups`` and ``/api/v1/scheduler``: how the cluster is shared and packed."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from corral.api.auth import AdminDep
from corral.api.deps import ServiceDep
from corral.api.models import CapacityGroupBody, CapacityGroupModel, ModeModel
from corral.api.responses import errors
from corral.domain.capacity import Tier
from corral.domain.codec import to_builtins

router = APIRouter(prefix="/api/v1", tags=["capacity"])


@router.get("/capacity-groups", summary="List capacity groups with what each uses now", responses=errors())
async def list_groups(service: ServiceDep) -> dict[str, Any]:
    return {"items": service.groups()}


@router.post(
    "/capacity-groups",
    status_code=201,
    summary="Create a capacity group",
    responses=errors(400, 409, 413),
)
async def create_group(body: CapacityGroupModel, service: ServiceDep, _: AdminDep) -> dict[str, Any]:
    return await service.create_group(body.to_domain(body.name))


@router.get("/capacity-groups/{name}", summary="Get a capacity group", responses=errors(404))
async def get_group(name: str, service: ServiceDep) -> dict[str, Any]:
    return service.group(name)


@router.put(
    "/capacity-groups/{name}", summary="Create or replace a capacity group", responses=errors(400, 413)
)
async def put_group(name: str, body: CapacityGroupBody, service: ServiceDep, _: AdminDep) -> dict[str, Any]:
    return await service.put_group(body.to_domain(name))


@router.delete(
    "/capacity-groups/{name}",
    status_code=204,
    summary="Delete a capacity group no active job uses",
    responses=errors(404, 409),
)
async def delete_group(name: str, service: ServiceDep, _: AdminDep) -> Response:
    await service.delete_group(name)
    return Response(status_code=204)


@router.get(
    "/scheduler",
    summary="Each tier's mode, the weights of each mode, and iteration statistics",
    responses=errors(),
)
async def scheduler(service: ServiceDep) -> dict[str, Any]:
    profile = service.profile
    return {
        "modes": {tier.value: mode.value for tier, mode in profile.modes.items()},
        "weights": {mode.value: to_builtins(w) for mode, w in profile.weights.items()},
        "stats": service.scheduler_stats(),
    }


@router.put(
    "/scheduler/modes/{tier}", summary="Switch a tier between pack and spread", responses=errors(400, 413)
)
async def set_mode(tier: Tier, body: ModeModel, service: ServiceDep, _: AdminDep) -> dict[str, Any]:
    profile = await service.set_mode(tier, body.mode)
    return {"modes": {t.value: m.value for t, m in profile.modes.items()}}
