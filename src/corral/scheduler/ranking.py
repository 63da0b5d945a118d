"""Why a task's host and not another: each host's score for the task's class, split by scorer.

``rank(cluster, cls, weights, host_id, footprint)`` takes the cluster as it is now, releases the task's own
footprint from its host (so the host is judged as if the task were placed again) and scores every host
with the placement's own scoring (``placement.ClassPlacer``: the host-local scorers ``applicable`` keeps
plus the zone-level terms, -inf where a filter says no), once with the profile's weights and once per
weighted scorer alone. The placement's score is linear in the scorers' shares of the weights (zone terms
included), so a scorer's contribution is its share times its score alone, and the contributions add up to
the host's score — the placement only adds a tie-breaking jitter of 1e-6. Columns are named as in
``profile.Weights``; a scorer that would add the same to every host is left out by the placement and
shows 0, as does every scorer on a host the task could not go to now. Pure: the cluster is forked, never
changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import islice

import numpy as np

from corral.scheduler.cluster import Cluster, Floats, Placement
from corral.scheduler.context import build_context
from corral.scheduler.placement import ClassPlacer
from corral.scheduler.profile import Weights
from corral.scheduler.snapshot import JobClass

DIGITS = 6  # scores are float32: more digits would only show noise


@dataclass(frozen=True, slots=True)
class HostScore:
    host_id: str
    score: float  # the placement's score (the sum of the contributions)
    feasible: bool  # every hard filter lets the task onto the host now
    rank: int  # 1 = the best host that could take the task now; 0 when it could not
    contributions: dict[str, float] = field(default_factory=dict)  # scorer -> share x value
    values: dict[str, float] = field(default_factory=dict)  # scorer -> its value alone, in [0, 1]


@dataclass(frozen=True, slots=True)
class Ranking:
    chosen: HostScore | None  # the task's host (None: the host is no longer registered)
    others: tuple[HostScore, ...] = ()  # the best other hosts that could take the task now, best first
    feasible: int = 0  # hosts that could take the task now (its own host included if it could)
    weights: dict[str, float] = field(default_factory=dict)  # the profile's weight of each scorer
    shares: dict[str, float] = field(default_factory=dict)  # weight / sum of weights


def scores(cluster: Cluster, cls: JobClass, weights: Weights, profile: Weights | None = None) -> Floats:
    """The placement's score of every host for the class under ``weights`` (no jitter; -inf where a filter
    says no). ``profile``: the weights the context is built for (default ``weights``)."""
    need = profile or weights
    ctx = build_context(
        cluster.fork(), cls, need_zones=need.job_spread_zone > 0, job_spread=need.job_spread_host > 0
    )
    placer = ClassPlacer(ctx, weights, np.zeros(cluster.size, dtype=np.float32))
    return np.asarray(placer.scores, dtype=np.float64)


def columns(cluster: Cluster, cls: JobClass, weights: Weights) -> dict[str, tuple[float, Floats]]:
    """Per weighted scorer: its share of the weights and its value on every host (its score alone)."""
    pairs = weights.items()
    total = sum(w for _, w in pairs)
    out: dict[str, tuple[float, Floats]] = {}
    for name, weight in pairs:
        alone = scores(cluster, cls, Weights(**{name: 1.0}), weights)
        out[name] = (weight / total, np.where(np.isfinite(alone), alone, 0.0))
    return out


def rank(
    cluster: Cluster,
    cls: JobClass,
    weights: Weights,
    host_id: str,
    footprint: Placement | None = None,
    top: int = 5,
) -> Ranking:
    """The task's host and the ``top`` best other hosts for its class now, each with its score by scorer;
    ``footprint`` (what the task holds on ``host_id``) is released first."""
    c = cluster.fork()
    own = c.index.get(host_id)
    if own is not None and footprint is not None:
        c.release(own, footprint)
    pairs = weights.items()
    if c.size == 0:
        return Ranking(None, (), 0, dict(pairs), {})
    combined = scores(c, cls, weights)
    ok = np.isfinite(combined)
    cols = columns(c, cls, weights)
    # Best first; equal scores by host id (the placement breaks such ties at random).
    order = sorted(np.flatnonzero(ok).tolist(), key=lambda h: (-round(float(combined[h]), DIGITS), c.ids[h]))
    ranks = {h: i + 1 for i, h in enumerate(order)}

    def scored(h: int) -> HostScore:
        return HostScore(
            c.ids[h],
            round(float(combined[h]), DIGITS) if ok[h] else 0.0,
            bool(ok[h]),
            ranks.get(h, 0),
            {name: round(share * float(v[h]), DIGITS) for name, (share, v) in cols.items()},
            {name: round(float(v[h]), DIGITS) for name, (_, v) in cols.items()},
        )

    others = tuple(islice((scored(h) for h in order if h != own), max(0, top)))
    return Ranking(
        scored(own) if own is not None else None,
        others,
        len(order),
        dict(pairs),
        {name: round(share, DIGITS) for name, (share, _) in cols.items()},
    )
