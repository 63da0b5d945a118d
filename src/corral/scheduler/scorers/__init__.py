"""Scorers: each a number in [0, 1] per row (higher = better host for the task). A profile's weights
combine them into one score, the weighted mean, so the combination stays in [0, 1] too (``Scoring``)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from corral.scheduler.cluster import Floats, Ints, R
from corral.scheduler.context import ClassContext
from corral.scheduler.profile import Weights
from corral.scheduler.rows import Rows
from corral.scheduler.scorers.binpack import AFFINE, binpack_cpu, binpack_memory, binpack_network, spread
from corral.scheduler.scorers.locality import image_locality
from corral.scheduler.scorers.soft import soft_constraints, soft_count
from corral.scheduler.scorers.spreading import job_spread_host, job_spread_zone

Scorer = Callable[[Rows], Floats]

SCORERS: dict[str, Scorer] = {
    "binpack_cpu": binpack_cpu,
    "binpack_memory": binpack_memory,
    "binpack_network": binpack_network,
    "spread": spread,
    "job_spread_host": job_spread_host,
    "job_spread_zone": job_spread_zone,
    "image_locality": image_locality,
    "soft_constraints": soft_constraints,
}


def applicable(weights: Weights, rows: Rows) -> tuple[tuple[tuple[float, Scorer], ...], float, float]:
    """The host-local scorers that can tell hosts apart for this class, each with its share of the total
    weight; and the shares of the zone-level terms (``job_spread_zone``, soft ``zone_balance``).

    Scorers that would add the same constant to every host are left out: they cannot change the choice.
    """
    ctx = rows.ctx
    return _applicable(
        weights, ctx.image is not None, soft_count(rows), ctx.soft_zone_balance, bool(ctx.zone.size)
    )


@functools.lru_cache(maxsize=1024)
def _applicable(
    weights: Weights, image: bool, soft: int, soft_zone: bool, zones: bool
) -> tuple[tuple[tuple[float, Scorer], ...], float, float]:
    """``applicable`` for a class with (or without) the image on some host, ``soft`` soft constraints
    (``soft_zone``: one of them zone balance) and zones: the same for many classes, worked out once."""
    pairs = weights.items()
    total = sum(w for _, w in pairs)
    local: list[tuple[float, Scorer]] = []
    spread_share = soft_zone_share = 0.0
    for name, weight in pairs:
        share = weight / total
        if name == "image_locality" and not image:
            continue
        if name == "soft_constraints":
            if soft == 0:
                continue
            if soft_zone:
                soft_zone_share = share / soft
            if soft > soft_zone:
                local.append((share, SCORERS[name]))
            continue
        if name == "job_spread_zone":
            if zones:
                spread_share = share
            continue
        local.append((share, SCORERS[name]))
    return tuple(local), spread_share, soft_zone_share


_AFFINE = {SCORERS[name]: form for name, form in AFFINE.items()}


@dataclass(frozen=True, slots=True)
class Scoring:
    """A class's host-local score, the weighted mean of its scorers in fewer steps: the affine scorers
    (``AFFINE``) folded into one weight per resource and summed over the rows in two vector products,
    then the others one by one. The same numbers as calling each scorer, up to float32 rounding.

    The affine part is a *host part*, sum of weight x utilization now, which does not depend on the
    class's request, plus a *task part*, sum of weight x request / total (times the tasks ahead, plus the
    constant), which depends on the host only through its totals. An iteration's index (``shapes.py``)
    keeps every host's host part (``host_part``) and sums a task part per shape (``task_table``): its
    placements score each host the same whichever hosts are scored with it.
    """

    constant: float
    weight: Floats  # float32 per resource: share x weight, summed over the affine scorers
    per_task: Floats  # float32 per resource: ``weight`` x the request (one task's utilization per 1 / total)
    others: tuple[tuple[float, Scorer], ...]
    affine: bool  # any affine scorer at all
    host_dims: tuple[tuple[int, float], ...]  # (resource, float32 weight) with a weight, in summing order
    # Whether, besides the affine part, only image locality (a 0/1 mask) and soft constraints (a count of
    # 0/1 terms) tell hosts apart: then among hosts of one shape with the same image and soft terms the
    # score is monotone in the host part, and bounded by the most those terms can add (``shapes.py``).
    separable: bool

    @classmethod
    def of(cls, ctx: ClassContext, scorers: tuple[tuple[float, Scorer], ...]) -> Scoring:
        constant, weight, weight32, others, host_dims, separable = _fold(scorers)
        per_task = (weight * ctx.req).astype(np.float32)
        return cls(constant, weight32, per_task, others, bool(host_dims), host_dims, separable)

    def __call__(self, rows: Rows) -> Floats:
        """The weighted score of the rows (a fresh float32 array)."""
        cluster = rows.ctx.cluster
        if self.affine:
            # utilization after = utilization + (1 + extra tasks) x request / total, per resource
            out: Floats = self.weight @ cluster.util[:, rows.sel]
            ahead: Floats = self.per_task @ cluster.inv_total[:, rows.sel]
            if isinstance(rows.extra, np.ndarray):
                ahead *= (1 + rows.extra).astype(np.float32)
            elif rows.extra:
                ahead *= np.float32(1 + rows.extra)
            out += ahead
            if self.constant:
                out += np.float32(self.constant)
        else:
            out = np.zeros(rows.size(), dtype=np.float32)
        return self.finish(out, rows)

    def finish(self, out: Floats, rows: Rows) -> Floats:
        """Add the other scorers' shares to the rows' affine score ``out`` (in place; returned)."""
        for share, scorer in self.others:
            if scorer is image_locality:  # a 0/1 mask: add its share where it is 1 (the same sums)
                image = rows.ctx.image
                if image is not None:
                    np.add(out, np.float32(share), out=out, where=image[rows.sel])
                continue
            part = scorer(rows)
            part *= share
            out += part
        return out

    def soft_part(self, satisfied: Floats, count: int) -> Floats | None:
        """What the soft-constraint scorer adds to a host that satisfies ``satisfied`` (one number per
        entry) of the class's ``count`` soft constraints — the same float32 steps as ``soft_constraints``
        and ``finish``; None without that scorer."""
        for share, scorer in self.others:
            if scorer is soft_constraints:
                part: Floats = satisfied.astype(np.float32)
                part *= np.float32(1.0 / count)
                part *= share
                return part
        return None

    def host_part(self, util: Floats, sel: slice | Ints | int, size: int) -> Floats:
        """Sum of weight x utilization of the hosts ``sel``, resource by resource in a fixed order and
        element by element, so a host sums the same alone or with others (a fresh float32 array of
        ``size``; a float32 scalar for one host ``sel``)."""
        if not self.host_dims:
            return np.zeros(() if isinstance(sel, int) else size, dtype=np.float32)
        (d, w), *rest = self.host_dims
        out: Floats = util[d, sel] * w
        for d, w in rest:
            out += util[d, sel] * w
        return out

    def task_table(self, inv_total: Floats) -> Floats:
        """Sum of weight x request / total for each column of ``inv_total`` (float32 per column; the
        constant not added)."""
        # Row by row down the resources, in order (a reduction over the outer axis adds the rows one
        # after another): the same sums as adding each resource's products in turn.
        out: Floats = np.add.reduce(inv_total * self.per_task[:, None], axis=0)
        return out


@functools.lru_cache(maxsize=256)
def _fold(
    scorers: tuple[tuple[float, Scorer], ...],
) -> tuple[float, Floats, Floats, tuple[tuple[float, Scorer], ...], tuple[tuple[int, float], ...], bool]:
    """The affine scorers' constant and weight per resource (float64 and float32), the other scorers, the
    resources with a weight (each with its float32 weight), and whether the score is ``separable``:
    worked out once per set of scorers."""
    constant = 0.0
    weight = np.zeros(R)
    others = []
    for share, scorer in scorers:
        form = _AFFINE.get(scorer)
        if form is None:
            others.append((share, scorer))
            continue
        constant += share * form[0]
        for d, w in form[1]:
            weight[d] += share * w
    weight32 = weight.astype(np.float32)
    weight.flags.writeable = weight32.flags.writeable = False
    host_dims = tuple((d, w) for d, w in enumerate(weight32.tolist()) if w)
    separable = all(scorer is image_locality or scorer is soft_constraints for _, scorer in others)
    return constant, weight, weight32, tuple(others), host_dims, separable
