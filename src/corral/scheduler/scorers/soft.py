"""Soft constraints: the hard filters' rules as preferences — the share of them a host satisfies."""

from __future__ import annotations

import numpy as np

from corral.scheduler.cluster import Floats
from corral.scheduler.rows import Rows


def soft_constraints(rows: Rows) -> Floats:
    """The share of the job's soft constraints a host satisfies. The soft ``zone_balance`` counts in the
    share but is added per zone by the placement (``zones.py``), so it is not scored here."""
    ctx = rows.ctx
    n = rows.size()
    out = np.zeros(n, dtype=np.float32)
    for mask in ctx.soft_static:
        out += mask[rows.sel]
    if ctx.soft_unique:
        out += rows.job_on_host() == 0
    if ctx.soft_exclusive:
        out += rows.task_count() == 0
    out *= np.float32(1.0 / soft_count(rows))
    return out


def soft_count(rows: Rows) -> int:
    ctx = rows.ctx
    return len(ctx.soft_static) + ctx.soft_unique + ctx.soft_exclusive + ctx.soft_zone_balance
