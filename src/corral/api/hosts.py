"""``/api/v1/hosts``: the fleet as the master sees it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from corral.api.auth import AdminDep
from corral.api.deps import master_of
from corral.api.views import host_view
from corral.control.master import Master
from corral.domain.errors import NotFoundError

router = APIRouter(prefix="/api/v1/hosts", tags=["hosts"])
MasterDep = Annotated[Master, Depends(master_of)]


@router.get("", summary="List hosts")
async def list_hosts(master: MasterDep) -> dict[str, Any]:
    hosts = sorted(master.state.hosts.values(), key=lambda h: h.id)
    return {"items": [host_view(master, h) for h in hosts]}


@router.get("/{host_id}", summary="Get a host")
async def get_host(host_id: str, master: MasterDep) -> dict[str, Any]:
    host = master.state.hosts.get(host_id)
    if host is None:
        raise NotFoundError("host", host_id)
    return host_view(master, host)


@router.post("/{host_id}/drain", summary="Give the host no new tasks (running ones stay)")
async def drain(host_id: str, master: MasterDep, _: AdminDep) -> dict[str, Any]:
    await master.ops.set_draining(host_id, True)
    return host_view(master, master.state.hosts[host_id])


@router.post("/{host_id}/undrain", summary="Let the host take new tasks again")
async def undrain(host_id: str, master: MasterDep, _: AdminDep) -> dict[str, Any]:
    await master.ops.set_draining(host_id, False)
    return host_view(master, master.state.hosts[host_id])


@router.post("/{host_id}/unquarantine", summary="Lift a host's quarantine before its time is up")
async def unquarantine(host_id: str, master: MasterDep, _: AdminDep) -> dict[str, Any]:
    return host_view(master, master.hub.quarantine.lift(host_id))
