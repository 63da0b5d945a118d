"""``/api/v1/hosts``: the fleet as the master sees it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

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
