"""Request-scoped access to the leader's front door (``control/service.py``), refusing work while this
master does not lead (``NotLeader`` says where the leader is)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.requests import HTTPConnection

from corral.control.master import Master, NotLeader
from corral.control.service import Service


def master_of(conn: HTTPConnection) -> Master | None:
    master: Master | None = getattr(conn.app.state, "master", None)
    return master


async def service_of(request: Request) -> Service:
    # async on purpose: FastAPI runs a plain ``def`` dependency in a worker thread, for every request.
    return leader_service(request)


def leader_service(conn: HTTPConnection) -> Service:
    master = master_of(conn)
    if master is None:
        raise NotLeader("")
    return master.service


ServiceDep = Annotated[Service, Depends(service_of)]
