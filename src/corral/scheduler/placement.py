"""Placing the tasks of one class: full-scan argmax over every host's score, several tasks at a time.

The class's score vector is computed once: a host-local part (its room, rules and scorers) plus, where
the class has zone terms, one value per zone broadcast to the hosts (``zones.py``). Each step takes the
best host and asks how many tasks it could take in a row (room, ports, addresses, the job's rules);
scores of "this host with j more tasks" come from one vectorized call, and the host keeps taking tasks
while it stays the best choice — in pack mode that fills it, in spread mode it usually takes one. Only
what changed is scored again, so a class of a thousand identical tasks costs one full scan plus a small
step per host.

One task of a class whose score is ``separable`` (besides the affine part, only image locality and soft
constraints; no job spreading; zone terms, if any, that do not depend on where the class may go — a
zone-balanced job with no task placed yet) is placed without a full scan: the iteration's index
(``shapes.py``) scores a few candidates and names the host the scan would pick. Every row, scanned or
not, is scored from the index's sums, so the two agree bitwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from corral.scheduler.cluster import Floats, Ints, Placement
from corral.scheduler.context import EPS, ClassContext
from corral.scheduler.filters import feasible
from corral.scheduler.profile import Weights
from corral.scheduler.rows import Rows
from corral.scheduler.scorers import Scorer, Scoring, applicable
from corral.scheduler.shapes import ShapeIndex
from corral.scheduler.zones import ZoneTerms

NEG = -np.inf
_NO_SCORES: Floats = np.zeros(0, dtype=np.float32)


@dataclass(frozen=True, slots=True)
class Landed:
    host: int
    ports: tuple[int, ...]
    interface: int | None
    address: int | None
    footprint: Placement  # what the task holds there, as charged to the cluster


class ClassPlacer:
    def __init__(
        self, ctx: ClassContext, weights: Weights, tiebreak: Floats, shapes: ShapeIndex | None = None
    ) -> None:
        self.ctx = ctx
        self.tiebreak = tiebreak
        rows = Rows.all(ctx)
        self.scorers: tuple[tuple[float, Scorer], ...]
        self.scorers, spread_share, soft_share = applicable(weights, rows)
        self.scoring = Scoring.of(ctx, self.scorers)
        self.zones = ZoneTerms(ctx, spread_share, soft_share) if ZoneTerms.needed(ctx, spread_share) else None
        self.stale: list[int] = []  # hosts this class changed but did not score again (it was done)
        self.closed = False
        # The iteration's index keeps every host's host part current, and scores rows from it. With a
        # separable score it may also answer one task at a time without scoring every host; the scores
        # are then computed when first needed (``lazy`` until then).
        self.index = shapes
        self.shapes = shapes if self.scoring.separable and self._indexable() else None
        self.lazy = self.shapes is not None
        if self.lazy:
            self.local = self.scores = _NO_SCORES
        else:
            self.local = self._evaluate(rows, tiebreak[: ctx.cluster.size])
            self.scores = self._combine()

    def _indexable(self) -> bool:
        """Whether the index can answer for one task now: no zone terms, or terms that do not depend on
        where the class may go (``ZoneTerms.flat``)."""
        return self.zones is None or self.zones.flat() is not None

    def _zone_terms(self) -> tuple[Ints, Floats] | None:
        """The flat zone terms as the index adds them, (each host's slot, each slot's term); None when
        there are none or all are 0."""
        terms = None if self.zones is None else self.zones.flat()
        if self.zones is None or terms is None or not terms.any():
            return None
        return self.zones.slot, terms

    def close(self) -> None:
        """The class is placed or explained: let go of its scores. An iteration of many classes would
        otherwise hold a vector per class, and fresh memory for each costs more than scoring into it."""
        if self.lazy:
            return  # nothing held: asked again, it is still free to use the index or score then
        self.local = self.scores = _NO_SCORES
        self.closed = True

    def _evaluate(self, rows: Rows, jitter: Floats | float) -> Floats:
        """Host-local score of the rows, -inf where a host-local filter says no."""
        ok = feasible(rows, zones=self.zones is None)
        if self.index is not None:  # the iteration's sums: the same for a host whichever rows are scored
            s = self.scoring.finish(self.index.affine(self.scoring, rows), rows)
        else:
            s = self.scoring(rows)
            s += jitter
        out: Floats = np.where(ok, s, NEG)
        return out

    def _combine(self) -> Floats:
        if self.zones is None:
            return self.local
        out: Floats = self.local + self.zones.broadcast(self.local)
        return out

    def _rescore(self, idx: Ints | int, after: Floats | float) -> None:
        """Set hosts' local scores (the zone terms count, per zone, the hosts the class may take)."""
        if self.zones is not None:
            self.zones.moved(idx, self.local[idx], after)
        self.local[idx] = after

    def catch_up(self, hosts: list[int]) -> None:
        """Score again the hosts other classes changed since this one last placed."""
        if self.lazy:
            return  # no scores yet: they are computed from the cluster as it is when first needed
        if self.closed:  # asked again after all: score every host anew
            self.stale, self.closed = [], False
            if self.zones is not None:
                self.zones.room = None  # counted again from the new scores
            self.local = self._evaluate(Rows.all(self.ctx), self.tiebreak[: self.ctx.cluster.size])
            self.scores = self._combine()
            return
        hosts = hosts + self.stale
        self.stale = []
        if not hosts:
            return
        idx: Ints = np.unique(np.asarray(hosts, dtype=np.int64))
        self._rescore(idx, self._evaluate(Rows(self.ctx, idx), self.tiebreak[idx]))
        self.scores = self._combine()

    def place(self, count: int) -> list[Landed]:
        """Place up to ``count`` tasks; fewer means no host can take the next one."""
        if self.lazy:
            if count == 1 and self.shapes is not None and self._indexable():
                h = self.shapes.best(self.ctx, self.scoring, self._zone_terms())
                if h is not None and self._room(h) >= 1:
                    return [self._land(h)]
            self.lazy = False  # more than one task, or the index could not tell: score every host now
            self.local = self._evaluate(Rows.all(self.ctx), self.tiebreak[: self.ctx.cluster.size])
            self.scores = self._combine()
        landed: list[Landed] = []
        self.catch_up([])
        while len(landed) < count and self.scores.size:
            scores = self.scores
            h = int(np.argmax(scores))
            best = scores[h]
            if best == NEG:
                break
            room = min(count - len(landed), self._room(h))
            if room <= 0:  # scored feasible but cannot take one: never expected, never loop on it
                self._rescore(h, NEG)
                self.scores = self._combine()
                continue
            if self.zones is not None:
                room = 1  # a zone term moves other hosts' scores too: one task at a time
            last = room == count - len(landed)  # this step ends the call: skip scoring h again for now
            take, after = self._run_length(h, room, last)
            for _ in range(take):
                landed.append(self._land(h))
            if after is None:
                self.stale.append(h)
                continue
            self._rescore(h, after)
            if self.zones is not None:
                self.scores = self._combine()
        return landed

    def _room(self, h: int) -> int:
        """How many more tasks of the class host ``h`` can take, by every limit that counts tasks."""
        ctx, c = self.ctx, self.ctx.cluster
        n = 1 << 30
        free = c.free[:, h].tolist()  # plain floats: a handful of numpy scalars cost more than the list
        for d in ctx.dims:
            n = min(n, math.floor((free[d] + EPS) / ctx.amount[d]))
        if ctx.cls.ports:
            n = min(n, int(c.ports_free[h]) // ctx.cls.ports)
        if ctx.cls.sg_code is not None:
            room = c.sg_room.get(ctx.cls.sg_code)
            n = min(n, int(c.iface_addrs[h]) + (0 if room is None else int(room[h])))
        if ctx.unique:
            n = min(n, 1 if ctx.job_on_host[h] == 0 else 0)
        if ctx.exclusive:
            n = min(n, 1)
        if ctx.zone_balance and ctx.zone[h] >= 0:
            count = int(ctx.zone_count[ctx.zone[h]])
            n = min(n, ctx.zone_limit - count, ctx.zone_least + 1 - count)
        return n

    def _run_length(self, h: int, room: int, last: bool) -> tuple[int, float | None]:
        """How many tasks in a row host ``h`` takes (while it stays the best), and its local score after
        (None when ``last`` and one task: nobody needs it until the class is placed again)."""
        if room == 1 and last:
            return 1, None
        if room == 1:
            after = self._evaluate(Rows(self.ctx, np.array([h]), np.array([1])), float(self.tiebreak[h]))
            return 1, float(after[0])
        scores = self.scores
        best = scores[h]
        scores[h] = NEG
        other = int(np.argmax(scores))
        rival = scores[other]
        scores[h] = best
        after = self._evaluate(Rows.ahead(self.ctx, h, room + 1), float(self.tiebreak[h]))
        take = 1
        while take < room and (after[take] > rival or (after[take] == rival and h < other)):
            take += 1
        return take, float(after[take])

    def _land(self, h: int) -> Landed:
        ctx, c = self.ctx, self.ctx.cluster
        ports = c.pick_ports(h, ctx.cls.ports) if ctx.cls.ports else ()
        interface = address = None
        if ctx.cls.sg_code is not None:
            picked = c.pick_address(h, ctx.cls.sg_code)
            if picked is not None:
                interface, address = picked
        footprint = ctx.cls.footprint(ports, interface, address)
        c.assign(h, footprint, ctx.req)
        ctx.place_one(h)
        return Landed(h, ports, interface, address, footprint)
