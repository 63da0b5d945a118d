"""Job spreading: keep a job's tasks apart, across hosts and across zones."""

from __future__ import annotations

import numpy as np

from corral.scheduler.cluster import Bools, Floats, Ints
from corral.scheduler.rows import Rows


def job_spread_host(rows: Rows) -> Floats:
    """1 on a host without the job's tasks, falling as it gets more."""
    out: Floats = np.float32(1.0) / (rows.job_on_host() + 1).astype(np.float32)
    return out


def zone_spread(counts: Ints, live: Bools) -> Floats:
    """Per zone: 1 where the job has fewest tasks (among zones with hosts), falling with each task more."""
    present = counts[live]
    least = int(present.min()) if present.size else 0
    out: Floats = 1.0 / (1.0 + np.maximum(counts - least, 0))
    return out


def job_spread_zone(rows: Rows) -> Floats:
    """Per host: its zone's ``zone_spread`` (placement keeps this per zone; see ``zones.py``)."""
    ctx = rows.ctx
    per_zone = zone_spread(ctx.zone_count, ctx.zone_live)
    zone = ctx.zone[rows.sel]
    out: Floats = np.where(zone >= 0, per_zone[np.maximum(zone, 0)], 1.0).astype(np.float32)
    return out
