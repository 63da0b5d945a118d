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
from corral.scheduler.scorers.soft import soft_constraints
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


def applicable(weights: Weights, rows: Rows) -> list[tuple[float, Scorer]]:
    """The weighted scorers that can tell hosts apart for this class (others add a constant)."""
    ctx = rows.ctx
    out = []
    for name, weight in weights.items():
        if name == "image_locality" and ctx.image is None:
            continue
        if name == "soft_constraints" and not (
            ctx.soft_static or ctx.soft_unique or ctx.soft_exclusive or ctx.soft_zone_balance
        ):
            continue
        if name == "job_spread_zone" and not ctx.zone.size:
            continue
        out.append((weight, SCORERS[name]))
    return out


def score(weights: Weights, rows: Rows, scorers: list[tuple[float, Scorer]] | None = None) -> Floats:
    total = sum(w for _, w in weights.items())
    active = applicable(weights, rows) if scorers is None else scorers
    out: Floats | None = None
    for weight, scorer in active:
        part = scorer(rows) * (weight / total)
        out = part if out is None else out + part
    if out is None:
        return np.zeros(len(rows.total()))
    return out
