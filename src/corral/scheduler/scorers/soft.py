"""Soft constraints: the hard filters' rules as preferences — the share of them a host satisfies."""

from __future__ import annotations

import numpy as np

from corral.scheduler.cluster import Floats
from corral.scheduler.rows import Rows


def soft_constraints(rows: Rows) -> Floats:
    ctx = rows.ctx
    n = len(rows.total())
    parts: list[Floats] = [mask[rows.sel].astype(np.float64) for mask in ctx.soft_static]
    if ctx.soft_unique:
        parts.append((rows.job_on_host() == 0).astype(np.float64))
    if ctx.soft_exclusive:
        parts.append((rows.task_count() == 0).astype(np.float64))
    if ctx.soft_zone_balance:
        parts.append((rows.zone_count() < ctx.zone_limit).astype(np.float64))
    if not parts:
        return np.zeros(n)
    out: Floats = np.mean(parts, axis=0)
    return out
