"""A view of some hosts as one class would find them: all hosts (a full scan), one host (after a
placement), or one host ``j`` tasks later (to place several tasks on it in one step). Filters and
scorers are written once, against this view, and vectorized over its rows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from corral.scheduler.cluster import Floats, Ints
from corral.scheduler.context import ClassContext


@dataclass(slots=True)
class Rows:
    ctx: ClassContext
    sel: slice | Ints  # which hosts
    extra: Ints | int = 0  # tasks of this class (hypothetically) added to each row beyond the cluster's state

    @classmethod
    def all(cls, ctx: ClassContext) -> Rows:
        return cls(ctx, slice(0, ctx.cluster.size))

    @classmethod
    def ahead(cls, ctx: ClassContext, h: int, count: int) -> Rows:
        """``count`` rows of host ``h``: row ``j`` is the host with ``j`` more tasks of this class."""
        return cls(ctx, np.full(count, h, dtype=np.int64), np.arange(count, dtype=np.int64))

    def size(self) -> int:
        if isinstance(self.sel, slice):
            return self.ctx.cluster.size
        return len(self.sel)

    def free(self, d: int) -> Floats:
        """Free amount of resource ``d`` in each row."""
        free: Floats = self.ctx.cluster.free[d, self.sel]
        if isinstance(self.extra, int) and self.extra == 0:
            return free
        return free - self.extra * self.ctx.req[d]  # type: ignore[no-any-return]

    def inv_total(self, d: int) -> Floats:
        return self.ctx.cluster.inv_total[d, self.sel]

    def has(self, d: int) -> Floats:
        return self.ctx.cluster.has[d, self.sel]

    def utilization(self, d: int) -> Floats:
        """Share of resource ``d`` in use in each row now (with this class's extra tasks)."""
        util: Floats = self.ctx.cluster.util[d, self.sel]
        if isinstance(self.extra, int) and self.extra == 0:
            return util
        return util + self.extra * (self.ctx.amount[d] * self.inv_total(d))

    def plus(self, values: Ints) -> Ints:
        """``values`` with this view's extra tasks added (the values themselves, read-only, when none)."""
        if isinstance(self.extra, int) and self.extra == 0:
            return values
        return values + self.extra

    def job_on_host(self) -> Ints:
        return self.plus(self.ctx.job_on_host[self.sel])

    def task_count(self) -> Ints:
        return self.plus(self.ctx.cluster.task_count[self.sel])

    def zone_count(self) -> Ints:
        """The class's tasks in each row's zone (rows without a zone count as a zone of their own: 0)."""
        zone = self.ctx.zone[self.sel]
        counts = np.where(zone >= 0, self.ctx.zone_count[np.maximum(zone, 0)], 0)
        return self.plus(counts)

    def ports_free(self) -> Ints:
        free: Ints = self.ctx.cluster.ports_free[self.sel]
        if isinstance(self.extra, int) and self.extra == 0:
            return free
        return free - self.extra * self.ctx.cls.ports

    def net_capacity(self) -> Ints:
        capacity = self.ctx.net_capacity(self.sel)
        if isinstance(self.extra, int) and self.extra == 0:
            return capacity
        return capacity - self.extra
