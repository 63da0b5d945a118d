"""Job spreading: keep a job's tasks apart, across hosts and across zones."""

from __future__ import annotations

import numpy as np

from corral.scheduler.cluster import Floats
from corral.scheduler.rows import Rows


def job_spread_host(rows: Rows) -> Floats:
    """1 on a host without the job's tasks, falling as it gets more."""
    return 1.0 / (1.0 + rows.job_on_host())


def job_spread_zone(rows: Rows) -> Floats:
    """1 in the zones that hold the fewest of the job's tasks, falling with each task above that."""
    ctx = rows.ctx
    live = ctx.zone_count[ctx.zone_live]
    least = int(live.min()) if live.size else 0
    excess = np.maximum(rows.zone_count() - least, 0)
    out: Floats = 1.0 / (1.0 + excess)
    return out
