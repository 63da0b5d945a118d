"""Why a task's host and not another: every host scored for the task's class as the placement scores it,
split by scorer, with the task's own footprint released from its host first."""

from __future__ import annotations

import numpy as np
import pytest

from corral.domain.capacity import Tier
from corral.scheduler import Cluster, JobClass, Mode, Profile, Weights
from corral.scheduler.context import build_context
from corral.scheduler.placement import ClassPlacer
from corral.scheduler.profile import PACK, SPREAD
from corral.scheduler.ranking import rank
from tests.scheduler.builders import assert_same, cluster_of, cluster_state, host, job, placed, run, snapshot

ALL = Weights(
    binpack_cpu=0.3,
    binpack_memory=0.2,
    binpack_network=0.1,
    spread=0.2,
    job_spread_host=0.4,
    job_spread_zone=0.3,
    image_locality=0.1,
    soft_constraints=0.5,
)


def busy_cluster() -> Cluster:
    """Hosts in three zones, each used a different amount (no two hosts score alike)."""
    cluster = cluster_of(
        [
            host(f"h{i}", cpu=16.0, memory=32768, zone=f"z{i % 3}", tier="gold" if i % 2 else "")
            for i in range(9)
        ]
    )
    other = job("other", cpu=1.0, memory=1024)
    for i in range(9):
        for _ in range(i):
            cluster.assign(i, other.footprint())
    return cluster


def with_tasks(cluster: Cluster, cls: JobClass, hosts: list[int]) -> None:
    for h in hosts:
        cluster.assign(h, cls.footprint())


def placement_scores(cluster: Cluster, cls: JobClass, weights: Weights) -> np.ndarray:
    """The placement's own score of each host (no jitter), -inf where it may not go."""
    ctx = build_context(
        cluster.fork(), cls, need_zones=weights.job_spread_zone > 0, job_spread=weights.job_spread_host > 0
    )
    placer = ClassPlacer(ctx, weights, np.zeros(cluster.size, dtype=np.float32))
    return np.asarray(placer.scores, dtype=np.float64)


CLASSES = {
    "plain": job("j", cpu=2.0, memory=2048),
    "image": job("j", cpu=2.0, memory=2048, image="web:1"),
    "soft": job("j", cpu=2.0, soft={"attribute.tier": "gold", "unique_host": "true"}),
    "soft_zone_balance": job("j", cpu=2.0, size=6, soft={"zone_balance": "true", "instance_type": "m5"}),
    "zone_balance": job("j", cpu=2.0, size=6, hard={"zone_balance": "true"}),
}


@pytest.mark.parametrize("weights", [PACK, SPREAD, ALL], ids=["pack", "spread", "all"])
@pytest.mark.parametrize("name", sorted(CLASSES))
def test_the_scores_are_the_placements_own(weights: Weights, name: str) -> None:
    cluster = busy_cluster()
    cls = CLASSES[name]
    with_tasks(cluster, cls, [0, 0, 3, 4])  # the job's own tasks: spreading and balance terms see them
    cluster.set_images(2, frozenset({"web:1"}))
    expected = placement_scores(cluster, cls, weights)
    ranking = rank(cluster, cls, weights, "h0", None, top=cluster.size)
    scored = [*([ranking.chosen] if ranking.chosen else []), *ranking.others]
    for s in scored:
        h = cluster.index[s.host_id]
        if s.feasible:
            assert s.score == pytest.approx(expected[h], abs=1e-5), s.host_id
        else:
            assert expected[h] == -np.inf
    assert ranking.feasible == int(np.isfinite(expected).sum())


def test_contributions_add_up_to_the_score_and_are_named_as_the_weights() -> None:
    cluster = busy_cluster()
    ranking = rank(cluster, CLASSES["soft"], ALL, "h4", None)
    assert set(ranking.weights) == set(ranking.shares) == {name for name, _ in ALL.items()}
    assert sum(ranking.shares.values()) == pytest.approx(1.0)
    for s in [ranking.chosen, *ranking.others]:
        assert s is not None
        assert set(s.contributions) == set(ranking.weights)
        assert sum(s.contributions.values()) == pytest.approx(s.score, abs=1e-5)
        for name, value in s.values.items():
            assert 0.0 <= value <= 1.0
            assert s.contributions[name] == pytest.approx(ranking.shares[name] * value, abs=1e-5)


@pytest.mark.parametrize("mode", [Mode.PACK, Mode.SPREAD])
def test_the_host_the_scheduler_chose_ranks_first_once_its_task_is_released(mode: Mode) -> None:
    cluster = busy_cluster()
    cls = job("j", cpu=2.0, memory=2048)
    profile = Profile().with_mode(Tier.FLEX, mode)
    plan = run(snapshot(cluster, [cls]), profile)
    ((_, host_id),) = placed(plan).items()
    (a,) = plan.assignments
    assert a.footprint is not None
    cluster.assign(cluster.index[host_id], a.footprint)  # the master holds it from now on
    ranking = rank(cluster, cls, profile.for_tier(Tier.FLEX), host_id, a.footprint)
    assert ranking.chosen is not None and ranking.chosen.host_id == host_id
    assert ranking.chosen.rank == 1 and ranking.chosen.feasible
    assert all(o.score <= ranking.chosen.score for o in ranking.others)


def test_the_best_others_come_best_first_and_only_hosts_that_could_take_it() -> None:
    cluster = busy_cluster()
    cluster.set_schedulable("h1", False)
    with_tasks(cluster, job("full", cpu=8.0), [2])  # h2: 10 of its 16 cpu used
    ranking = rank(cluster, job("j", cpu=7.0), PACK, "h0", None, top=3)
    assert len(ranking.others) == 3
    assert [o.rank for o in ranking.others] == sorted(o.rank for o in ranking.others)
    assert [o.score for o in ranking.others] == sorted((o.score for o in ranking.others), reverse=True)
    ids = {o.host_id for o in ranking.others}
    assert "h0" not in ids and "h1" not in ids and all(o.feasible for o in ranking.others)
    assert ranking.feasible == 7  # of 9: h1 is drained, h2 too full
    assert rank(cluster, job("j", cpu=7.0), PACK, "h0", None, top=0).others == ()


def test_the_tasks_own_footprint_is_released_before_scoring() -> None:
    cluster = cluster_of([host("h0", cpu=4.0), host("h1", cpu=4.0)])
    cls = job("j", cpu=4.0, hard={"unique_host": "true"})
    footprint = cls.footprint()
    cluster.assign(0, footprint)
    ranking = rank(cluster, cls, PACK, "h0", footprint)
    assert ranking.chosen is not None and ranking.chosen.feasible and ranking.chosen.rank in (1, 2)
    unreleased = rank(cluster, cls, PACK, "h0", None)
    assert unreleased.chosen is not None and not unreleased.chosen.feasible and unreleased.chosen.rank == 0


def test_a_host_that_no_longer_takes_the_task_is_shown_as_such() -> None:
    cluster = cluster_of([host("h0"), host("h1"), host("h2")])
    cls = job("j")
    footprint = cls.footprint()
    cluster.assign(0, footprint)
    cluster.set_schedulable("h0", False)  # drained since
    ranking = rank(cluster, cls, SPREAD, "h0", footprint)
    assert ranking.chosen is not None and (ranking.chosen.feasible, ranking.chosen.rank) == (False, 0)
    assert {o.host_id for o in ranking.others} == {"h1", "h2"} and ranking.feasible == 2


def test_a_host_gone_from_the_cluster_has_no_row() -> None:
    ranking = rank(cluster_of([host("h1")]), job("j"), PACK, "gone", job("j").footprint())
    assert ranking.chosen is None and [o.host_id for o in ranking.others] == ["h1"]


def test_ranking_changes_nothing() -> None:
    cluster = busy_cluster()
    cls = job("j", cpu=2.0, soft={"zone_balance": "true"}, size=4)
    footprint = cls.footprint()
    cluster.assign(5, footprint)
    before = cluster_state(cluster)
    rank(cluster, cls, ALL, "h5", footprint, top=4)
    assert_same(before, cluster_state(cluster))


def test_an_empty_cluster_ranks_nothing() -> None:
    ranking = rank(Cluster(), job("j", memory=512), PACK, "h0", None)
    assert (ranking.chosen, ranking.others, ranking.feasible) == (None, (), 0)


def test_a_scorers_value_is_what_it_measures() -> None:
    cluster = cluster_of([host("h0", cpu=16.0, memory=32768), host("h1", cpu=16.0, memory=32768)])
    with_tasks(cluster, job("other", cpu=4.0, memory=8192), [0])
    ranking = rank(cluster, job("j", cpu=4.0, memory=8192), PACK, "h0", None)
    assert ranking.chosen is not None and ranking.chosen.rank == 1  # pack: the fuller host
    assert ranking.chosen.values["binpack_cpu"] == pytest.approx(8 / 16)
    assert ranking.chosen.values["binpack_memory"] == pytest.approx(16384 / 32768)
    assert ranking.others[0].values["binpack_cpu"] == pytest.approx(4 / 16)
    assert ranking.chosen.values["image_locality"] == 0.0  # the job names no image: no host differs
    weights = dict(PACK.items())
    share = weights["binpack_cpu"] / sum(weights.values())
    assert ranking.shares["binpack_cpu"] == pytest.approx(share, abs=1e-6)
