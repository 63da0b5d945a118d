"""The placement's score, summed in fewer steps (``Scoring``), is the weighted mean of the scorers one by
one — on every host, on some hosts, and on a host with more tasks of the class; and a placer that let go
of its scores (its class done) scores anew if it is asked again."""

from __future__ import annotations

import numpy as np
import pytest

from corral.scheduler import Cluster, Weights
from corral.scheduler.context import build_context
from corral.scheduler.placement import ClassPlacer
from corral.scheduler.profile import PACK, SPREAD
from corral.scheduler.rows import Rows
from corral.scheduler.scorers import Scoring, applicable
from tests.scheduler.builders import cluster_of, host, job

ALL = Weights(
    binpack_cpu=0.3,
    binpack_memory=0.2,
    binpack_network=0.1,
    spread=0.2,
    job_spread_host=0.4,
    image_locality=0.1,
    soft_constraints=0.5,
)


def busy(seed: int) -> Cluster:
    """Hosts of a few sizes, each with a different share in use, some that ran ``img:a``."""
    rng = np.random.default_rng(seed)
    specs = [
        host(
            f"h{i}", cpu=float(rng.choice([4.0, 8.0, 16.0])), memory=int(rng.choice([8192, 32768])), rack="r1"
        )
        for i in range(12)
    ]
    cluster = cluster_of(specs)
    other = job("other", cpu=0.5, memory=512, image="img:a")
    for i in range(12):
        for _ in range(int(rng.integers(0, 5))):
            cluster.assign(i, other.footprint())
    return cluster


CLASSES = [
    job("plain", cpu=1.0, memory=1024),
    job("image", cpu=2.0, memory=4096, image="img:a"),
    job("soft", cpu=0.5, memory=512, soft={"attribute.rack": "r1", "unique_host": "true"}),
    job("net", cpu=0.25, memory=256, sg_code=0),
]


@pytest.mark.parametrize("weights", [PACK, SPREAD, ALL], ids=["pack", "spread", "all"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scoring_is_the_weighted_mean_of_the_scorers(weights: Weights, seed: int) -> None:
    cluster = busy(seed)
    cluster.sg_code(("web",))
    for cls in CLASSES:
        ctx = build_context(cluster, cls, need_zones=False, job_spread=weights.job_spread_host > 0)
        scorers, _, _ = applicable(weights, Rows.all(ctx))
        scoring = Scoring.of(ctx, scorers)
        some = np.array([1, 4, 7, 11])
        views = [Rows.all(ctx), Rows(ctx, some), Rows.ahead(ctx, 3, 4), Rows(ctx, some, 2)]
        for rows in views:
            expected = np.zeros(rows.size())
            for share, scorer in scorers:
                expected += share * scorer(rows).astype(np.float64)
            got = scoring(rows)
            assert got.dtype == np.float32
            assert got == pytest.approx(expected, abs=1e-5), (cls.job_id, rows.sel, rows.extra)


def test_a_closed_placer_scores_anew_when_asked_again() -> None:
    cluster = cluster_of([host("h0", cpu=4.0), host("h1", cpu=8.0)])
    cls = job("j", cpu=1.0, size=3)
    ctx = build_context(cluster.fork(), cls, need_zones=False)
    placer = ClassPlacer(ctx, PACK, np.zeros(2, dtype=np.float32))
    first = placer.place(1)
    placer.close()
    assert placer.local.size == 0
    placer.catch_up([])
    again = placer.place(2)
    assert [spot.host for spot in first + again] == [0, 0, 0]  # pack: the small host fills first
    assert placer.local.size == 2
