"""Request-scoped access to the master, refusing work while it is not leading."""

from __future__ import annotations

from fastapi import Request

from corral.control.master import Master
from corral.domain.errors import CorralError


class NotReady(CorralError):
    status = 503


def master_of(request: Request) -> Master:
    master: Master | None = getattr(request.app.state, "master", None)
    if master is None or not master.ready:
        raise NotReady("not_ready", "the master is not leading (starting, stopping or failed)")
    return master
