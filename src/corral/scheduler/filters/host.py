"""Filters on the host itself: it is up, enabled, healthy, not draining and not quarantined; it matches the
attributes the job pins it to (zone, instance type, host group, host, ``attribute.<key>``)."""

from __future__ import annotations

from collections.abc import Callable

from corral.scheduler.cluster import Bools
from corral.scheduler.rows import Rows


def available(rows: Rows) -> Bools:
    """Up, enabled, healthy and not draining; quarantined hosts pass here and are charged below."""
    cluster = rows.ctx.cluster
    return (cluster.schedulable | cluster.quarantined)[rows.sel]


def not_quarantined(rows: Rows) -> Bools:
    return ~rows.ctx.cluster.quarantined[rows.sel]


def static_constraint(mask: Bools) -> Callable[[Rows], Bools]:
    def check(rows: Rows) -> Bools:
        return mask[rows.sel]

    return check
