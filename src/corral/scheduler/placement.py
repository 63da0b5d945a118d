"""Placing the tasks of one class: full-scan argmax over every host's score, several tasks at a time.

The class's score vector is computed once. Each step takes the best host and asks how many tasks it
could take in a row (its room, ports, addresses and the job's rules); scores for "this host with j more
tasks" are computed in one vectorized call, and the host keeps taking tasks while it stays the best
choice — in pack mode that fills it, in spread mode it usually takes one. Only the rows that changed
are scored again, so a class of a thousand identical tasks costs one full scan plus a step per host.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from corral.scheduler.cluster import Floats, Placement
from corral.scheduler.context import EPS, ClassContext
from corral.scheduler.filters import feasible
from corral.scheduler.profile import Weights
from corral.scheduler.rows import Rows
from corral.scheduler.scorers import Scorer, applicable, score

NEG = -np.inf


@dataclass(frozen=True, slots=True)
class Landed:
    host: int
    ports: tuple[int, ...]
    interface: int | None
    address: int | None


class ClassPlacer:
    def __init__(self, ctx: ClassContext, weights: Weights, tiebreak: Floats) -> None:
        self.ctx = ctx
        self.weights = weights
        self.tiebreak = tiebreak
        rows = Rows.all(ctx)
        self.scorers: list[tuple[float, Scorer]] = applicable(weights, rows)
        self.zone_terms = ctx.zone_dependent or any(s.__name__ == "job_spread_zone" for _, s in self.scorers)
        self.scores = self._evaluate(rows, self.tiebreak[: ctx.cluster.size])

    def _evaluate(self, rows: Rows, jitter: Floats | float) -> Floats:
        ok = feasible(rows)
        s = score(self.weights, rows, self.scorers) + jitter
        return np.where(ok, s, NEG)

    def catch_up(self, hosts: list[int]) -> None:
        """Score again the hosts other classes changed since this one last placed."""
        if not hosts:
            return
        if self.zone_terms:
            self.scores = self._evaluate(Rows.all(self.ctx), self.tiebreak[: self.ctx.cluster.size])
            return
        idx = np.unique(np.asarray(hosts, dtype=np.int64))
        self.scores[idx] = self._evaluate(Rows(self.ctx, idx), self.tiebreak[idx])

    def place(self, count: int) -> list[Landed]:
        """Place up to ``count`` tasks; fewer means no host can take the next one."""
        landed: list[Landed] = []
        scores = self.scores
        while len(landed) < count and scores.size:
            h = int(np.argmax(scores))
            best = scores[h]
            if best == NEG:
                break
            scores[h] = NEG
            other = int(np.argmax(scores))
            rival = scores[other]
            scores[h] = best
            room = min(count - len(landed), self._room(h))
            if room <= 0:  # scored feasible but cannot take one: never expected, never loop on it
                scores[h] = NEG
                continue
            take, after = self._run_length(h, room, rival, other)
            for _ in range(take):
                landed.append(self._land(h))
            if self.zone_terms:
                self.scores = scores = self._evaluate(
                    Rows.all(self.ctx), self.tiebreak[: self.ctx.cluster.size]
                )
            else:
                scores[h] = after
        return landed

    def _room(self, h: int) -> int:
        """How many more tasks of the class host ``h`` can take, by every limit that counts tasks."""
        ctx, c = self.ctx, self.ctx.cluster
        n = 1 << 30
        free = c.free[h]
        for d in ctx.dims:
            n = min(n, math.floor((free[d] + EPS) / ctx.req[d]))
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

    def _run_length(self, h: int, room: int, rival: float, other: int) -> tuple[int, float]:
        """How many tasks in a row host ``h`` takes, and its score after them."""
        if self.zone_terms:
            room = 1  # a zone term moves other hosts' scores too: one at a time
        rows = Rows.ahead(self.ctx, h, room + 1)
        after = self._evaluate(rows, float(self.tiebreak[h]))
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
        c.assign(
            h,
            Placement(
                ctx.cls.job_id,
                ctx.cls.request,
                ports,
                ctx.cls.sg_code,
                interface,
                address,
                ctx.exclusive,
                ctx.cls.image,
            ),
        )
        ctx.place_one(h)
        return Landed(h, ports, interface, address)
