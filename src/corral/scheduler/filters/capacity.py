"""Filters on room: resources (cpu, memory, disk, network, gpu), dynamic ports, and the two-level
network resource (an interface bound to the task's security groups with a free address, or a free
interface)."""

from __future__ import annotations

import numpy as np

from corral.scheduler.cluster import RESOURCE_NAMES, Bools
from corral.scheduler.context import EPS
from corral.scheduler.rows import Rows


def fits_resources(rows: Rows) -> Bools:
    ctx = rows.ctx
    dims = ctx.dims
    if dims.size == 0:
        return np.ones(np.shape(rows.free())[0], dtype=bool)
    free = rows.free()
    out: Bools = np.all(free[:, dims] >= ctx.req[dims] - EPS, axis=1)
    return out


def short_of(rows: Rows) -> dict[str, int]:
    """For each resource, how many of the rows are too full for the class."""
    ctx = rows.ctx
    free = rows.free()
    out = {}
    for d in ctx.dims:
        short = int(np.count_nonzero(free[:, d] < ctx.req[d] - EPS))
        if short:
            out[RESOURCE_NAMES[d]] = short
    return out


def fits_ports(rows: Rows) -> Bools:
    return rows.ports_free() >= rows.ctx.cls.ports


def fits_network(rows: Rows) -> Bools:
    return rows.net_capacity() >= 1
