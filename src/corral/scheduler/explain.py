"""Why a class's tasks stay pending: each host is charged to the first filter that turns it away; the
filter that turned away the last hosts still in reach is the reason given."""

from __future__ import annotations

import numpy as np

from corral.scheduler.context import ClassContext
from corral.scheduler.filters import pipeline
from corral.scheduler.filters.capacity import short_of
from corral.scheduler.plan import PendingReason
from corral.scheduler.rows import Rows


def explain(ctx: ClassContext) -> tuple[PendingReason, str, dict[str, int]]:
    n = ctx.cluster.size
    if n == 0:
        return PendingReason.NO_HOSTS, "no hosts have registered", {}
    rows = Rows.all(ctx)
    alive = np.ones(n, dtype=bool)
    charged: list[tuple[str, int]] = []
    rejections: dict[str, int] = {}
    shortages: dict[str, int] = {}
    for f in pipeline(ctx):
        passed = f.check(rows)
        turned = alive & ~passed
        count = int(np.count_nonzero(turned))
        if count:
            charged.append((f.name, count))
            if f.name == "resources":
                shortages = short_of(Rows(ctx, np.flatnonzero(turned)))
                rejections.update({f"resources:{k}": v for k, v in shortages.items()})
            else:
                rejections[f.name] = count
        alive &= passed
    if not charged:
        # Every filter passes somewhere, yet the class did not fit: its hosts were taken this iteration.
        return PendingReason.NO_CAPACITY, "no capacity left after this iteration's placements", rejections
    last, count = charged[-1]
    others = "; ".join(f"{c:,} ruled out by {name}" for name, c in charged[:-1])
    tail = f" ({others})" if others else ""
    if last == "host_unavailable":
        return (
            PendingReason.NO_HOSTS,
            f"no schedulable host: {_hosts(count)} down, disabled, unhealthy or draining",
            rejections,
        )
    if last == "host_quarantined":
        verb = "is" if count == 1 else "are"
        message = f"host quarantined: {_hosts(count)} {verb} quarantined after repeated system errors"
        return PendingReason.QUARANTINED, message + tail, rejections
    if last == "resources":
        worst = max(shortages.items(), key=lambda kv: kv[1])[0] if shortages else "resources"
        if worst.endswith("_none"):
            resource = worst.removesuffix("_none")
            none = shortages[worst]
            message = f"no capacity: {resource} — {_hosts(none)} {'has' if none == 1 else 'have'} none"
            full = shortages.get(resource, 0)
            message += f", {full:,} too full" if full else ""
            return PendingReason.NO_CAPACITY, message + tail, rejections
        return PendingReason.NO_CAPACITY, f"no capacity: {worst} — {_hosts(count)} too full{tail}", rejections
    if last == "ports":
        return (
            PendingReason.NO_PORTS,
            f"no ports: {_hosts(count)} {'lacks' if count == 1 else 'lack'} {ctx.cls.ports} free ports{tail}",
            rejections,
        )
    if last == "network":
        message = (
            f"no network: {_hosts(count)} {'has' if count == 1 else 'have'} no interface or address left "
            "for the task's security groups"
        )
        return PendingReason.NO_NETWORK, message + tail, rejections
    name = last.split(":", 1)[1]
    return PendingReason.CONSTRAINT, f"{name}: {_hosts(count)} rejected{tail}", rejections


def _hosts(count: int) -> str:
    return f"{count:,} host" if count == 1 else f"{count:,} hosts"
