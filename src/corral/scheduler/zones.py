"""The zone-level part of a class's score and feasibility: terms that depend only on the host's zone.

``job_spread_zone``, the soft ``zone_balance`` and the hard ``zone_balance`` rule change whenever one of
the job's tasks lands — but only per zone. Kept as one value per zone and broadcast to hosts, a placement
costs one small vector instead of rescoring every host.
"""

from __future__ import annotations

import numpy as np

from corral.scheduler.cluster import Floats, Ints
from corral.scheduler.context import ClassContext
from corral.scheduler.scorers.spreading import zone_spread

NEG = -np.inf


class ZoneTerms:
    def __init__(self, ctx: ClassContext, spread_share: float, soft_share: float) -> None:
        self.ctx = ctx
        self.spread_share = spread_share
        self.soft_share = soft_share
        zones = len(ctx.zone_count)
        self.slot: Ints = np.where(ctx.zone >= 0, ctx.zone, zones)  # hosts without a zone: a neutral slot

    @staticmethod
    def needed(ctx: ClassContext, spread_share: float) -> bool:
        return bool(ctx.zone.size) and (spread_share > 0 or ctx.zone_balance or ctx.soft_zone_balance)

    def per_zone(self) -> Floats:
        """Score to add for a host in each zone (-inf: the hard rule closes it), plus the neutral slot."""
        ctx = self.ctx
        counts = ctx.zone_count
        terms = np.zeros(len(counts) + 1, dtype=np.float32)
        if self.spread_share:
            terms[:-1] += self.spread_share * zone_spread(counts, ctx.zone_live)
        under = counts < ctx.zone_limit
        if self.soft_share:
            terms[:-1] += self.soft_share * under
        if ctx.zone_balance:
            terms[:-1][~under] = NEG
        return terms

    def broadcast(self) -> Floats:
        out: Floats = self.per_zone()[self.slot]
        return out
