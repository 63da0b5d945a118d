"""Hard filters: each named, each a boolean mask over the rows it is given (True = the host may take the
task). The pipeline runs them in order; for a task left pending, each host is charged to the first filter
that turned it away, so the counts add up to the hosts considered."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from corral.scheduler.cluster import Bools
from corral.scheduler.context import ClassContext
from corral.scheduler.filters.capacity import fits_network, fits_ports, fits_resources
from corral.scheduler.filters.host import available, not_quarantined, static_constraint
from corral.scheduler.filters.rules import exclusive_host, unique_host, zone_balance
from corral.scheduler.rows import Rows


@dataclass(frozen=True, slots=True)
class Filter:
    name: str
    check: Callable[[Rows], Bools]


def pipeline(ctx: ClassContext) -> list[Filter]:
    """The filters that apply to this class, in the order hosts are charged to them."""
    filters = [Filter("host_unavailable", available)]
    for name, mask in ctx.static_masks.items():
        filters.append(Filter(f"constraint:{name}", static_constraint(mask)))
    # After the job's own constraints, so "the hosts it may use are quarantined" is the reason given.
    if ctx.cluster.quarantined.any():
        filters.append(Filter("host_quarantined", not_quarantined))
    filters.append(Filter("constraint:exclusive_host", exclusive_host))
    if ctx.unique:
        filters.append(Filter("constraint:unique_host", unique_host))
    if ctx.zone_balance:
        filters.append(Filter("constraint:zone_balance", zone_balance))
    filters.append(Filter("resources", fits_resources))
    if ctx.cls.ports:
        filters.append(Filter("ports", fits_ports))
    if ctx.cls.sg_code is not None:
        filters.append(Filter("network", fits_network))
    return filters


def feasible(rows: Rows, *, zones: bool = True) -> Bools:
    """Every filter at once: the fast path, with the static ones precombined. ``zones=False`` leaves out
    ``zone_balance`` for callers that apply it per zone."""
    ctx = rows.ctx
    ok = fits_resources(rows)
    ok &= ctx.static[rows.sel]
    if ctx.exclusive or ctx.cluster.exclusive_tasks:
        ok &= exclusive_host(rows)
    if ctx.unique:
        ok &= unique_host(rows)
    if zones and ctx.zone_balance:
        ok &= zone_balance(rows)
    if ctx.cls.ports:
        ok &= fits_ports(rows)
    if ctx.cls.sg_code is not None:
        ok &= fits_network(rows)
    return ok
