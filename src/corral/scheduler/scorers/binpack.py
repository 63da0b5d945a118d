"""Bin packing and spreading: how full the host would be with the task on it."""

from __future__ import annotations

import numpy as np

from corral.scheduler.cluster import Floats
from corral.scheduler.rows import Rows

CPU, MEMORY, NETWORK = 0, 1, 3


def utilization_after(rows: Rows, d: int) -> Floats:
    """Share of resource ``d`` in use once the task is placed (0 where the host has none of it)."""
    total = rows.total()[:, d]
    used = total - rows.free()[:, d] + rows.ctx.req[d]
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(total > 0, used / total, 0.0)
    return np.clip(share, 0.0, 1.0)


def binpack_cpu(rows: Rows) -> Floats:
    return utilization_after(rows, CPU)


def binpack_memory(rows: Rows) -> Floats:
    return utilization_after(rows, MEMORY)


def binpack_network(rows: Rows) -> Floats:
    return utilization_after(rows, NETWORK)


def spread(rows: Rows) -> Floats:
    """The opposite of packing: prefer the emptiest host (cpu and memory alike)."""
    return 1.0 - (utilization_after(rows, CPU) + utilization_after(rows, MEMORY)) / 2.0
