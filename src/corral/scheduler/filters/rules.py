"""Filters on the job's placement rules: ``unique_host``, ``exclusive_host``, ``zone_balance``."""

from __future__ import annotations

from corral.scheduler.cluster import Bools
from corral.scheduler.rows import Rows


def unique_host(rows: Rows) -> Bools:
    """At most one task of the job per host."""
    out: Bools = rows.job_on_host() == 0
    return out


def exclusive_host(rows: Rows) -> Bools:
    """No task joins a host that holds an exclusive task; an exclusive task needs an empty host."""
    ctx = rows.ctx
    clear: Bools = ctx.cluster.exclusive[rows.sel] == 0
    if ctx.exclusive:
        clear = clear & (rows.task_count() == 0)
    return clear


def zone_balance(rows: Rows) -> Bools:
    """A task goes to a zone with the fewest of the job's tasks among the zones that can hold it, and no
    zone takes more than ceil(size / those zones) (``zones.py`` keeps both numbers current)."""
    ctx = rows.ctx
    count = rows.zone_count()
    out: Bools = (count <= ctx.zone_least) & (count < ctx.zone_limit)
    return out
