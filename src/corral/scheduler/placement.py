"""Placing the tasks of one class: full-scan argmax over every host's score, several tasks at a time.

The class's score vector is computed once: a host-local part (its room, rules and scorers) plus, where
the class has zone terms, one value per zone broadcast to the hosts (``zones.py``). Each step takes the
best host and asks how many tasks it could take in a row (room, ports, addresses, the job's rules);
scores of "this host with j more tasks" come from one vectorized call, and the host keeps taking tasks
while it stays the best choice — in pack mode that fills it, in spread mode it usually takes one. Only
what changed is scored again, so a class of a thousand identical tasks costs one full scan plus a small
step per host.
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
from corral.scheduler.scorers import Scorer, applicable, score
from corral.scheduler.zones import ZoneTerms

NEG = -np.inf


@dataclass(frozen=True, slots=True)
class Landed:
    host: int
    ports: tuple[int, ...]
    interface: int | None
    address: int | None
    footprint: Placement  # what the task holds there, as charged to the cluster


class ClassPlacer:
    def __init__(self, ctx: ClassContext, weights: Weights, tiebreak: Floats) -> None:
        self.ctx = ctx
        self.tiebreak = tiebreak
        rows = Rows.all(ctx)
        self.scorers: list[tuple[float, Scorer]]
        self.scorers, spread_share, soft_share = applicable(weights, rows)
        self.zones = ZoneTerms(ctx, spread_share, soft_share) if ZoneTerms.needed(ctx, spread_share) else None
        self.local = self._evaluate(rows, tiebreak[: ctx.cluster.size])
        self.scores = self._combine()
        self.stale: list[int] = []  # hosts this class changed but did not score again (it was done)

    def _evaluate(self, rows: Rows, jitter: Floats | float) -> Floats:
        """Host-local score of the rows, -inf where a host-local filter says no."""
        ok = feasible(rows, zones=self.zones is None)
        s = score(rows, self.scorers)
        s += jitter
        out: Floats = np.where(ok, s, NEG)
        return out

    def _combine(self) -> Floats:
        if self.zones is None:
            return self.local
        out: Floats = self.local + self.zones.broadcast()
        return out

    def catch_up(self, hosts: list[int]) -> None:
        """Score again the hosts other classes changed since this one last placed."""
        hosts = hosts + self.stale
        self.stale = []
        if not hosts:
            return
        idx: Ints = np.unique(np.asarray(hosts, dtype=np.int64))
        self.local[idx] = self._evaluate(Rows(self.ctx, idx), self.tiebreak[idx])
        self.scores = self._combine()

    def place(self, count: int) -> list[Landed]:
        """Place up to ``count`` tasks; fewer means no host can take the next one."""
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
                self.local[h] = scores[h] = NEG
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
            self.local[h] = after
            if self.zones is not None:
                self.scores = self._combine()
        return landed

    def _room(self, h: int) -> int:
        """How many more tasks of the class host ``h`` can take, by every limit that counts tasks."""
        ctx, c = self.ctx, self.ctx.cluster
        n = 1 << 30
        for d in ctx.dims:
            n = min(n, math.floor((c.free[d, h] + EPS) / ctx.req[d]))
        if ctx.cls.ports:
            n = min(n, int(c.ports_free[h]) // ctx.cls.ports)
        if ctx.cls.sg_code is not None:
            n = min(n, int(ctx.net_capacity(np.array([h]))[0]))
        if ctx.unique:
            n = min(n, 1 if ctx.job_on_host[h] == 0 else 0)
        if ctx.exclusive:
            n = min(n, 1)
        if ctx.zone_balance and ctx.zone[h] >= 0:
            n = min(n, ctx.zone_limit - int(ctx.zone_count[ctx.zone[h]]))
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
