"""Request-scoped access to the master, refusing work while it does not lead."""

from __future__ import annotations

from fastapi import Request

from corral.control.master import Master, NotLeader


def master_of(request: Request) -> Master:
    master: Master | None = getattr(request.app.state, "master", None)
    if master is None or not master.ready:
        leader = master.leader if master is not None else None
        raise NotLeader(leader.url if leader is not None and leader.live else "")
    return master
