"""``/api/v1/capacity-groups`` and ``/api/v1/scheduler``: how the cluster is shared and packed."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response

from corral.api.auth import AdminDep
from corral.api.deps import master_of
from corral.api.models import CapacityGroupBody, CapacityGroupModel, ModeModel
from corral.control.master import Master
from corral.domain.capacity import CapacityGroup, Tier
from corral.domain.codec import to_builtins
from corral.domain.resources import ZERO

router = APIRouter(prefix="/api/v1", tags=["capacity"])
MasterDep = Annotated[Master, Depends(master_of)]


def group_view(master: Master, group: CapacityGroup) -> dict[str, Any]:
    data: dict[str, Any] = to_builtins(group)
    data["usage"] = to_builtins(master.state.group_usage().get(group.name, ZERO))
    return data


@router.get("/capacity-groups", summary="List capacity groups with what each uses now")
async def list_groups(master: MasterDep) -> dict[str, Any]:
    groups = sorted(master.state.groups.values(), key=lambda g: g.name)
    return {"items": [group_view(master, g) for g in groups]}


@router.post("/capacity-groups", status_code=201, summary="Create a capacity group")
async def create_group(body: CapacityGroupModel, master: MasterDep, _: AdminDep) -> dict[str, Any]:
    group = await master.ops.create_group(body.to_domain(body.name))
    return group_view(master, group)


@router.get("/capacity-groups/{name}", summary="Get a capacity group")
async def get_group(name: str, master: MasterDep) -> dict[str, Any]:
    return group_view(master, master.ops.group(name))


@router.put("/capacity-groups/{name}", summary="Create or replace a capacity group")
async def put_group(name: str, body: CapacityGroupBody, master: MasterDep, _: AdminDep) -> dict[str, Any]:
    group = await master.ops.put_group(body.to_domain(name))
    return group_view(master, group)


@router.delete(
    "/capacity-groups/{name}", status_code=204, summary="Delete a capacity group no active job uses"
)
async def delete_group(name: str, master: MasterDep, _: AdminDep) -> Response:
    await master.ops.delete_group(name)
    return Response(status_code=204)


@router.get("/scheduler", summary="Each tier's mode, the weights of each mode, and iteration statistics")
async def scheduler(master: MasterDep) -> dict[str, Any]:
    profile = master.scheduler.profile
    return {
        "modes": {tier.value: mode.value for tier, mode in profile.modes.items()},
        "weights": {mode.value: to_builtins(w) for mode, w in profile.weights.items()},
        "stats": to_builtins(master.scheduler.stats),
    }


@router.put("/scheduler/modes/{tier}", summary="Switch a tier between pack and spread")
async def set_mode(tier: Tier, body: ModeModel, master: MasterDep, _: AdminDep) -> dict[str, Any]:
    profile = await master.ops.set_mode(tier, body.mode)
    return {"modes": {t.value: m.value for t, m in profile.modes.items()}}
