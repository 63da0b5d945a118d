"""Filters on the host itself: it is up, enabled, healthy and not draining; it matches the attributes
the job pins it to (zone, instance type, host group, host, ``attribute.<key>``)."""

from __future__ import annotations

from collections.abc import Callable

from corral.scheduler.cluster import Bools
from corral.scheduler.rows import Rows


def available(rows: Rows) -> Bools:
    return rows.ctx.cluster.schedulable[rows.sel]


def static_constraint(mask: Bools) -> Callable[[Rows], Bools]:
    def check(rows: Rows) -> Bools:
        return mask[rows.sel]

    return check
