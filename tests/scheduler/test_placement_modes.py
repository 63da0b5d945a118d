"""Where tasks go among hosts that all fit: pack versus spread (switchable per tier at run time), zone
spreading, equivalence-class batching, image locality and soft constraints."""

from __future__ import annotations

from itertools import groupby

import pytest

from corral.domain.capacity import CapacityGroup, Tier
from corral.domain.resources import Resources
from corral.scheduler import Cluster, HostSpec, Mode, PendingReason, Placement, Profile, Weights
from tests.scheduler.builders import cluster_of, host, job, pending, per_host, placed, run, snapshot

SEEDS = range(12)
PACK = Profile().with_mode(Tier.FLEX, Mode.PACK)
SPREAD = Profile().with_mode(Tier.FLEX, Mode.SPREAD)


def spread_with(weights: Weights) -> Profile:
    """Both tiers in spread mode, spread meaning ``weights`` (a profile must give every tier's mode weights)."""
    return Profile({Tier.CRITICAL: Mode.SPREAD, Tier.FLEX: Mode.SPREAD}, {Mode.SPREAD: weights})


def eight_cpu_hosts(count: int = 4) -> list[HostSpec]:
    return [host(f"h{i}", cpu=8.0, memory=16384) for i in range(count)]


@pytest.mark.parametrize("seed", SEEDS)
def test_pack_puts_identical_tasks_on_as_few_hosts_as_possible(seed: int) -> None:
    plan = run(snapshot(cluster_of(eight_cpu_hosts()), [job("j", size=4)]), PACK, seed)
    assert list(per_host(plan).values()) == [4]


@pytest.mark.parametrize("seed", SEEDS)
def test_spread_puts_identical_tasks_on_as_many_hosts_as_possible(seed: int) -> None:
    plan = run(snapshot(cluster_of(eight_cpu_hosts()), [job("j", size=4)]), SPREAD, seed)
    assert sorted(per_host(plan).values()) == [1, 1, 1, 1]


def test_pack_fills_hosts_before_opening_new_ones() -> None:
    plan = run(snapshot(cluster_of(eight_cpu_hosts()), [job("j", cpu=3.0, size=5)]), PACK)
    assert sorted(per_host(plan).values()) == [1, 2, 2]


def test_each_tier_uses_its_own_mode() -> None:
    """Default profile: critical spreads, flex packs — in one iteration."""
    groups = [CapacityGroup("prod", Tier.CRITICAL), CapacityGroup("batch", Tier.FLEX)]
    jobs = [job("c", group="prod", size=4), job("f", group="batch", size=4)]
    plan = run(snapshot(cluster_of(eight_cpu_hosts(6)), jobs, groups=groups))
    where = placed(plan)
    assert len({where[f"c-{i}"] for i in range(4)}) == 4
    assert len({where[f"f-{i}"] for i in range(4)}) == 1


def zoned_hosts() -> list[HostSpec]:
    zones = ["z0", "z0", "z0", "z0", "z1", "z2"]
    return [host(f"h{i}", zone=zone) for i, zone in enumerate(zones)]


def zones_used(plan_hosts: list[str]) -> list[str]:
    zone_of = {spec.host_id: spec.attributes["zone"] for spec in zoned_hosts()}
    return sorted(zone_of[h] for h in plan_hosts)


@pytest.mark.parametrize("seed", SEEDS)
def test_job_spread_zone_spreads_across_zones(seed: int) -> None:
    plan = run(snapshot(cluster_of(zoned_hosts()), [job("j", size=3)]), SPREAD, seed)
    assert zones_used(list(placed(plan).values())) == ["z0", "z1", "z2"]


def test_without_job_spread_zone_zones_are_left_to_chance() -> None:
    """The control for the test above: the spread weights minus the zone term."""
    profile = spread_with(Weights(spread=1.0, job_spread_host=0.6))
    outcomes = {
        tuple(
            zones_used(
                list(
                    placed(
                        run(snapshot(cluster_of(zoned_hosts()), [job("j", size=3)]), profile, seed)
                    ).values()
                )
            )
        )
        for seed in SEEDS
    }
    assert any(zones != ("z0", "z1", "z2") for zones in outcomes)


def test_a_class_of_a_thousand_identical_tasks_fills_hosts_one_after_another() -> None:
    hosts = [host(f"h{i:03d}", cpu=10.0, memory=10240) for i in range(100)]
    plan = run(snapshot(cluster_of(hosts), [job("j", cpu=1.0, memory=1024, size=1000)]), PACK)
    assert len(plan.assignments) == 1000 and not plan.pending
    runs = [(h, len(list(group))) for h, group in groupby(a.host_id for a in plan.assignments)]
    assert len(runs) == 100, "each host is filled before the next one is opened"
    assert {length for _, length in runs} == {10}
    assert len({h for h, _ in runs}) == 100


def image_cluster() -> Cluster:
    """Two identical, empty hosts; only h1 has run ``img:x`` (the task has finished)."""
    cluster = cluster_of([host("h0"), host("h1")])
    footprint = Placement("old", Resources(1.0, 1024), image="img:x")
    cluster.assign(1, footprint)
    cluster.release(1, footprint)
    return cluster


def locality_profile(image_locality: float) -> Profile:
    return spread_with(Weights(spread=1.0, image_locality=image_locality))


def test_a_host_that_ran_the_image_wins() -> None:
    for seed in SEEDS:
        plan = run(snapshot(image_cluster(), [job("j", image="img:x")]), locality_profile(0.5), seed)
        assert placed(plan) == {"j-0": "h1"}


def test_without_image_locality_either_host_may_win() -> None:
    chosen = {
        placed(run(snapshot(image_cluster(), [job("j", image="img:x")]), locality_profile(0.0), seed))["j-0"]
        for seed in SEEDS
    }
    assert chosen == {"h0", "h1"}


@pytest.mark.parametrize("profile", [PACK, SPREAD])
def test_a_soft_zone_is_preferred(profile: Profile) -> None:
    hosts = [host("h0", zone="z0"), host("h1", zone="z1"), host("h2", zone="z0")]
    for seed in SEEDS:
        plan = run(snapshot(cluster_of(hosts), [job("j", soft={"availability_zone": "z1"})]), profile, seed)
        assert placed(plan) == {"j-0": "h1"}


def test_a_soft_zone_is_not_required() -> None:
    hosts = [host("h0", zone="z0"), host("h1", cpu=0.5, zone="z1")]
    soft = run(snapshot(cluster_of(hosts), [job("j", soft={"availability_zone": "z1"})]), PACK)
    assert placed(soft) == {"j-0": "h0"}
    hard = run(snapshot(cluster_of(hosts), [job("j", hard={"availability_zone": "z1"})]), PACK)
    assert pending(hard)["j-0"].reason is PendingReason.NO_CAPACITY


def test_soft_unique_host_spreads_in_pack_mode_but_still_doubles_up() -> None:
    hosts = [host("h0"), host("h1")]
    plain = run(snapshot(cluster_of(hosts), [job("j", size=2)]), PACK)
    assert list(per_host(plain).values()) == [2]
    soft = run(snapshot(cluster_of(hosts), [job("j", size=3, soft={"unique_host": "true"})]), PACK)
    assert sorted(per_host(soft).values()) == [1, 2]
    assert not soft.pending
