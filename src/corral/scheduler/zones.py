"""The zone-level part of a class's score and feasibility: terms that depend only on the host's zone.

``job_spread_zone``, the soft ``zone_balance`` and the hard ``zone_balance`` rule change whenever one of
the job's tasks lands — but only per zone. Kept as one value per zone and broadcast to hosts, a placement
costs one small vector instead of rescoring every host.

Balance is counted over the zones that can hold the class — those with a host it may take now by every
other rule — as Fenzo balances over the values a host attribute can take: a task goes to a zone with the
fewest of the job's tasks among them, so the job's tasks stay within one of each other there, and a zone
with no room left drops out of the balance instead of holding the others' tasks back. The hard rule also
keeps its cap, ``ceil(size / zones that can hold the class)``, which binds only on a job that has more
tasks than its size.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from corral.scheduler.cluster import Bools, Floats, Ints
from corral.scheduler.context import ClassContext
from corral.scheduler.scorers.spreading import zone_spread

NEG = -np.inf
NOWHERE = 1 << 62  # the fewest tasks among no zone at all: no zone is held back
_NO_SCORES: Floats = np.zeros(0, dtype=np.float32)


class ZoneTerms:
    def __init__(self, ctx: ClassContext, spread_share: float, soft_share: float) -> None:
        self.ctx = ctx
        self.spread_share = spread_share
        self.soft_share = soft_share
        self.zones = len(ctx.zone_count)
        self.flat_terms: Floats | None = None  # ``flat``'s answer, once worked out
        # Per slot: hosts the class may take now by every rule but zone balance. Counted from the class's
        # local scores once the job has tasks to balance (before that every zone is alike), then kept
        # current by ``moved``.
        self.room: Ints | None = None

    @functools.cached_property
    def slot(self) -> Ints:
        """Each host's slot: its zone, or a neutral slot for hosts without one (worked out when first
        needed: a placement whose zone terms stay flat never asks)."""
        slot: Ints = np.where(self.ctx.zone >= 0, self.ctx.zone, self.zones)
        return slot

    @staticmethod
    def needed(ctx: ClassContext, spread_share: float) -> bool:
        return bool(ctx.zone.size) and (spread_share > 0 or ctx.zone_balance or ctx.soft_zone_balance)

    def flat(self) -> Floats | None:
        """Each slot's term now, when it does not depend on where the class may go: no spreading to score
        and none of the job's tasks placed yet, so every zone has the fewest (the soft rule's share where
        it counts) and none is over the cap (of at least one, for a job of at least one task). None
        otherwise. A placement may then add the slot's term to a host's local score without scoring the
        others (``shapes.py``)."""
        ctx = self.ctx
        if self.spread_share or self.room is not None or ctx.cls.size < 1 or ctx.zone_count.any():
            return None
        if self.flat_terms is None:  # the same whenever asked while nothing of the job is placed
            self.flat_terms = self.per_zone(_NO_SCORES)
        return self.flat_terms

    def moved(self, idx: Ints | int, before: Floats | float, after: Floats | float) -> None:
        """Hosts ``idx`` got new local scores (``before`` -> ``after``; -inf: the class may not go there)."""
        if self.room is None:
            return
        change = (np.asarray(after) > NEG).astype(np.int64) - (np.asarray(before) > NEG)
        np.add.at(self.room, self.slot[idx], change)

    def open_zones(self, local: Floats) -> Bools:
        """The zones that can hold the class now (``local``: its host-local scores, -inf where it may not
        go)."""
        if self.room is None:
            self.room = np.bincount(self.slot[local > NEG], minlength=self.zones + 1)
        live: Bools = self.room[: self.zones] > 0
        return live

    def per_zone(self, local: Floats) -> Floats:
        """Score to add for a host in each zone (-inf: the hard rule closes it), plus the neutral slot.
        Also records the balance on the context (``zone_live``, ``zone_least``, ``zone_limit``), where the
        ``zone_balance`` filter reads it to explain a task left pending."""
        ctx = self.ctx
        counts = ctx.zone_count
        terms = np.zeros(len(counts) + 1, dtype=np.float32)
        if self.room is None and not counts.any():
            # Nothing of the job placed yet: every zone that can hold it is equally good, whichever they are.
            live = ctx.zone_live
            least = 0
        else:
            live = self.open_zones(local)
            least = int(counts[live].min()) if live.any() else NOWHERE
        ctx.zone_live = live
        ctx.zone_least = least
        ctx.zone_limit = math.ceil(ctx.cls.size / max(int(live.sum()), 1))
        if self.spread_share:
            terms[:-1] += self.spread_share * zone_spread(counts, live)
        if not (self.soft_share or ctx.zone_balance):
            return terms
        fewest = (counts <= least) & (counts < ctx.zone_limit)
        if self.soft_share:
            terms[:-1] += self.soft_share * fewest
        if ctx.zone_balance:
            terms[:-1][~fewest] = NEG
        return terms

    def broadcast(self, local: Floats) -> Floats:
        out: Floats = self.per_zone(local)[self.slot]
        return out
