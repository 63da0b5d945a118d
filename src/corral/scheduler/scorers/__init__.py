"""Scorers: each a number in [0, 1] per row (higher = better host for the task). A profile's weights
combine them into one score, the weighted mean, so the combination stays in [0, 1] too."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from corral.scheduler.cluster import Floats
from corral.scheduler.profile import Weights
from corral.scheduler.rows import Rows
from corral.scheduler.scorers.binpack import binpack_cpu, binpack_memory, binpack_network, spread
from corral.scheduler.scorers.locality import image_locality
from corral.scheduler.scorers.soft import soft_constraints, soft_count
from corral.scheduler.scorers.spreading import job_spread_host, job_spread_zone

Scorer = Callable[[Rows], Floats]

SCORERS: dict[str, Scorer] = {
    "binpack_cpu": binpack_cpu,
    "binpack_memory": binpack_memory,
    "binpack_network": binpack_network,
    "spread": spread,
    "job_spread_host": job_spread_host,
    "job_spread_zone": job_spread_zone,
    "image_locality": image_locality,
    "soft_constraints": soft_constraints,
}


def applicable(weights: Weights, rows: Rows) -> tuple[list[tuple[float, Scorer]], float, float]:
    """The host-local scorers that can tell hosts apart for this class, each with its share of the total
    weight; and the shares of the zone-level terms (``job_spread_zone``, soft ``zone_balance``).

    Scorers that would add the same constant to every host are left out: they cannot change the choice.
    """
    ctx = rows.ctx
    pairs = weights.items()
    total = sum(w for _, w in pairs)
    local: list[tuple[float, Scorer]] = []
    spread_share = soft_zone_share = 0.0
    for name, weight in pairs:
        share = weight / total
        if name == "image_locality" and ctx.image is None:
            continue
        if name == "soft_constraints":
            count = soft_count(rows)
            if count == 0:
                continue
            if ctx.soft_zone_balance:
                soft_zone_share = share / count
            if count > ctx.soft_zone_balance:
                local.append((share, SCORERS[name]))
            continue
        if name == "job_spread_zone":
            if ctx.zone.size:
                spread_share = share
            continue
        local.append((share, SCORERS[name]))
    return local, spread_share, soft_zone_share


def score(rows: Rows, scorers: list[tuple[float, Scorer]]) -> Floats:
    """The weighted mean of the scorers over the rows (each scorer returns a fresh array)."""
    out: Floats | None = None
    for share, scorer in scorers:
        part = scorer(rows)
        part *= share
        if out is None:
            out = part
        else:
            out += part
    return np.zeros(rows.size(), dtype=np.float32) if out is None else out
