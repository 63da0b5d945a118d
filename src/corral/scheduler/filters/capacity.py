"""Filters on room: resources (cpu, memory, disk, network, gpu), dynamic ports, and the two-level
network resource (an interface bound to the task's security groups with a free address, or a free
interface)."""

from __future__ import annotations

from typing import cast

import numpy as np

from corral.scheduler.cluster import RESOURCE_NAMES, Bools
from corral.scheduler.context import EPS
from corral.scheduler.rows import Rows


def fits_resources(rows: Rows) -> Bools:
    """Every resource the class asks for fits what the row has free (all resources in one comparison)."""
    ctx = rows.ctx
    if not ctx.dims:
        return np.ones(rows.size(), dtype=bool)
    sel = rows.sel
    # ``take`` gathers columns for a handful of rows at a fraction of the cost of fancy indexing.
    free = ctx.cluster.free[:, sel] if isinstance(sel, slice) else ctx.cluster.free.take(sel, axis=1)
    if not (isinstance(rows.extra, int) and rows.extra == 0):
        free = free - ctx.req[:, None] * rows.extra
    return cast(Bools, (free >= ctx.need[:, None]).all(axis=0))


def short_of(rows: Rows) -> dict[str, int]:
    """Per resource the class asks for, how many rows lack it: ``<r>`` too full, ``<r>_none`` none at all."""
    ctx = rows.ctx
    out = {}
    for d in ctx.dims:
        short = rows.free(d) < ctx.req[d] - EPS
        none = int(np.count_nonzero(short & (rows.has(d) == 0)))
        full = int(np.count_nonzero(short)) - none
        if full:
            out[RESOURCE_NAMES[d]] = full
        if none:
            out[f"{RESOURCE_NAMES[d]}_none"] = none
    return out


def fits_ports(rows: Rows) -> Bools:
    return rows.ports_free() >= rows.ctx.cls.ports


def fits_network(rows: Rows) -> Bools:
    ctx = rows.ctx
    room = ctx.cluster.sg_room.get(ctx.cls.sg_code) if ctx.cls.sg_code is not None else None
    if room is not None and isinstance(rows.extra, int) and rows.extra == 0:
        # The full-scan case, without summing two integer columns: a free interface, or room on a bound one.
        out: Bools = ctx.cluster.iface_addrs[rows.sel] > 0
        out |= room[rows.sel] > 0
        return out
    fits: Bools = rows.net_capacity() >= 1
    return fits
