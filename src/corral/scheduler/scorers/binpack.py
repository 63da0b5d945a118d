"""Bin packing and spreading: how full the host would be with the task on it.

Each of these is affine in the hosts' utilization after the task — a constant plus a weight per
resource (``AFFINE``) — so a class's placement sums all of them in two vector products (``Scoring``)
instead of calling them one by one; the functions say the same thing host by host.
"""

from __future__ import annotations

from corral.scheduler.cluster import Floats
from corral.scheduler.rows import Rows

CPU, MEMORY, NETWORK = 0, 1, 3


def utilization_after(rows: Rows, d: int) -> Floats:
    """Share of resource ``d`` in use once the task is placed (0 where the host has none of it):
    the host's utilization now plus the request over the total (``1 / total`` precomputed)."""
    out: Floats = rows.inv_total(d) * rows.ctx.amount[d]
    out += rows.utilization(d)
    return out


def binpack_cpu(rows: Rows) -> Floats:
    return utilization_after(rows, CPU)


def binpack_memory(rows: Rows) -> Floats:
    return utilization_after(rows, MEMORY)


def binpack_network(rows: Rows) -> Floats:
    return utilization_after(rows, NETWORK)


def spread(rows: Rows) -> Floats:
    """The opposite of packing: prefer the emptiest host (cpu and memory alike)."""
    both = utilization_after(rows, CPU)
    both += utilization_after(rows, MEMORY)
    out: Floats = 1.0 - 0.5 * both
    return out


# Scorer name -> (constant, ((resource, weight), ...)): value = constant + sum of weight x utilization after.
AFFINE: dict[str, tuple[float, tuple[tuple[int, float], ...]]] = {
    "binpack_cpu": (0.0, ((CPU, 1.0),)),
    "binpack_memory": (0.0, ((MEMORY, 1.0),)),
    "binpack_network": (0.0, ((NETWORK, 1.0),)),
    "spread": (1.0, ((CPU, -0.5), (MEMORY, -0.5))),
}
