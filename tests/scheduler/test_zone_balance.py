"""Zone balance as tight as Fenzo's: each task of a job goes to a zone holding the fewest of the job's
tasks among the zones that can hold it, so a job's tasks end within one of each other across those zones.
A zone with no room for the job is left out of the balance: the others share its tasks, none waits.

Checked for the hard ``zone_balance``, the soft one (a preference strong enough to decide among hosts
that fit equally well) and spread mode's ``job_spread_zone``, in both modes, with and without tasks the
job already runs."""

from __future__ import annotations

from collections import Counter

import pytest

from corral.domain.capacity import Tier
from corral.domain.resources import Resources
from corral.scheduler import Cluster, HostSpec, JobClass, Mode, Placement, Plan, Profile
from tests.scheduler.builders import cluster_of, host, job, pending, run, snapshot, tasks_of

PACK = Profile().with_mode(Tier.FLEX, Mode.PACK)
SPREAD = Profile().with_mode(Tier.FLEX, Mode.SPREAD)
PROFILES = {"pack": PACK, "spread": SPREAD}
HARD = {"zone_balance": "true"}
SEEDS = (0, 1, 2)


def fleet(
    zones: int, per_zone: int = 3, cpu: float = 16.0, small: frozenset[int] = frozenset()
) -> list[HostSpec]:
    """``per_zone`` hosts in each of ``zones`` zones; zones in ``small`` have hosts too small for a task."""
    return [
        host(f"z{z}-h{i}", cpu=0.5 if z in small else cpu, zone=f"z{z}")
        for z in range(zones)
        for i in range(per_zone)
    ]


def zone_counts(cluster: Cluster, plan: Plan, job_id: str, zones: int) -> list[int]:
    """The job's tasks per zone after the plan: the ones it ran before plus the ones placed."""
    counts: Counter[str] = Counter()
    for h, n in cluster.job_hosts.get(job_id, {}).items():
        counts[cluster_zone(cluster, cluster.ids[h])] += n
    counts.update(
        cluster_zone(cluster, a.host_id) for a in plan.assignments if a.task_id.startswith(f"{job_id}-")
    )
    return [counts[f"z{z}"] for z in range(zones)]


def each_task_went_to_a_fewest_zone(
    cluster: Cluster, plan: Plan, j: JobClass, open_zones: set[str], before: dict[str, int] | None = None
) -> None:
    """Replaying the plan: every task of ``j`` landed in a zone with the fewest tasks among ``open_zones``."""
    counts = Counter({z: 0 for z in open_zones}) + Counter(before or {})
    for a in plan.assignments:
        if not a.task_id.startswith(f"{j.job_id}-"):
            continue
        zone = cluster_zone(cluster, a.host_id)
        least = min(counts[z] for z in open_zones)
        assert counts[zone] == least, f"{a.task_id} to {zone} with {dict(counts)}"
        counts[zone] += 1


def cluster_zone(cluster: Cluster, host_id: str) -> str:
    code = int(cluster.attribute("zone")[cluster.index[host_id]])
    return next(value for value, c in cluster.codebook["zone"].items() if c == code)


def spread_of(counts: list[int]) -> int:
    return max(counts) - min(counts)


@pytest.mark.parametrize("mode", ["pack", "spread"])
@pytest.mark.parametrize("zones", [2, 3, 4])
@pytest.mark.parametrize("size", [2, 4, 5, 7, 10, 13])
def test_hard_zone_balance_keeps_every_zone_within_one(mode: str, zones: int, size: int) -> None:
    for seed in SEEDS:
        cluster = cluster_of(fleet(zones))
        j = job("j", size=size, hard=HARD)
        plan = run(snapshot(cluster, [j]), PROFILES[mode], seed)
        assert not plan.pending
        counts = zone_counts(cluster, plan, "j", zones)
        assert sum(counts) == size
        assert spread_of(counts) <= 1, counts
        each_task_went_to_a_fewest_zone(cluster, plan, j, {f"z{z}" for z in range(zones)})


@pytest.mark.parametrize("zones", [2, 3, 4])
@pytest.mark.parametrize("size", [4, 7, 10])
def test_soft_zone_balance_keeps_every_zone_within_one_in_pack_mode(zones: int, size: int) -> None:
    for seed in SEEDS:
        cluster = cluster_of(fleet(zones))
        plan = run(snapshot(cluster, [job("j", size=size, soft=HARD)]), PACK, seed)
        counts = zone_counts(cluster, plan, "j", zones)
        assert sum(counts) == size and spread_of(counts) <= 1, counts


@pytest.mark.parametrize("zones", [2, 3, 4])
@pytest.mark.parametrize("size", [4, 7, 10])
def test_job_spread_zone_keeps_every_zone_within_one_in_spread_mode(zones: int, size: int) -> None:
    for seed in SEEDS:
        cluster = cluster_of(fleet(zones))
        plan = run(snapshot(cluster, [job("j", size=size)]), SPREAD, seed)
        counts = zone_counts(cluster, plan, "j", zones)
        assert sum(counts) == size and spread_of(counts) <= 1, counts


def running(cluster: Cluster, j: JobClass, host_id: str, count: int) -> None:
    """``count`` tasks of ``j`` already on the host before the iteration."""
    for _ in range(count):
        cluster.assign(cluster.index[host_id], Placement(j.job_id, j.request))


@pytest.mark.parametrize("mode", ["pack", "spread"])
@pytest.mark.parametrize(
    ("size", "before", "expected"),
    [
        (7, {"z0": 2}, [3, 2, 2]),  # the new tasks fill the emptier zones first
        (8, {"z0": 2, "z1": 1}, [3, 3, 2]),
        (6, {"z0": 4}, [4, 1, 1]),  # more than its share already: the rest still goes where fewest
        (9, {"z1": 1, "z2": 1}, [3, 3, 3]),
    ],
)
def test_tasks_already_running_count(
    mode: str, size: int, before: dict[str, int], expected: list[int]
) -> None:
    for seed in SEEDS:
        cluster = cluster_of(fleet(3))
        j = job("j", size=size, hard=HARD)
        for zone, count in before.items():
            running(cluster, j, f"{zone}-h0", count)
        todo = size - sum(before.values())
        plan = run(snapshot(cluster, [j], tasks=tasks_of(j, todo)), PROFILES[mode], seed)
        assert not plan.pending
        counts = zone_counts(cluster, plan, "j", 3)
        assert sorted(counts, reverse=True) == sorted(expected, reverse=True), counts
        each_task_went_to_a_fewest_zone(cluster, plan, j, {"z0", "z1", "z2"}, before)


@pytest.mark.parametrize("mode", ["pack", "spread"])
@pytest.mark.parametrize(("zones", "size"), [(2, 3), (3, 7), (3, 5), (4, 10)])
def test_a_zone_without_room_is_left_out_and_nothing_waits(mode: str, zones: int, size: int) -> None:
    """The last zone's hosts are too small for the task: the others share all of the job's tasks."""
    for seed in SEEDS:
        cluster = cluster_of(fleet(zones, small=frozenset({zones - 1})))
        j = job("j", size=size, hard=HARD)
        plan = run(snapshot(cluster, [j]), PROFILES[mode], seed)
        assert pending(plan) == {}
        counts = zone_counts(cluster, plan, "j", zones)
        assert counts[-1] == 0 and sum(counts) == size
        assert spread_of(counts[:-1]) <= 1, counts
        each_task_went_to_a_fewest_zone(cluster, plan, j, {f"z{z}" for z in range(zones - 1)})


@pytest.mark.parametrize("mode", ["pack", "spread"])
def test_a_zone_that_fills_up_drops_out_of_the_balance(mode: str) -> None:
    """z2 has room for one task only: it takes one, and the other zones share the rest within one."""
    specs = [host(f"z{z}-h{i}", cpu=16.0, zone=f"z{z}") for z in range(2) for i in range(2)]
    specs.append(host("z2-h0", cpu=1.0, zone="z2"))
    for seed in SEEDS:
        cluster = cluster_of(specs)
        plan = run(snapshot(cluster, [job("j", size=9, hard=HARD)]), PROFILES[mode], seed)
        assert pending(plan) == {}
        counts = zone_counts(cluster, plan, "j", 3)
        assert counts[2] == 1 and sorted(counts[:2]) == [4, 4], counts


def test_a_zone_the_job_may_not_use_is_not_balanced_over() -> None:
    """Hosts of the wrong instance type do not make their zone one the job must fill."""
    specs = [*fleet(2), host("z2-h0", zone="z2", instance_type="c5")]
    specs[-1] = HostSpec(
        "z2-h0", Resources(16.0, 65536, 100_000, 10_000, 0), {"zone": "z2", "instance_type": "c5"}
    )
    cluster = cluster_of(specs)
    j = job("j", size=6, hard={**HARD, "instance_type": "m5"})
    plan = run(snapshot(cluster, [j]), PACK)
    assert not plan.pending
    assert zone_counts(cluster, plan, "j", 3) == [3, 3, 0]


def test_more_tasks_than_the_job_size_wait_for_zone_balance() -> None:
    """The cap stays: no zone takes more than its share of the job's size, ceil(size / zones that can hold it)."""
    cluster = cluster_of(fleet(2, per_zone=1))
    j = job("j", size=2, hard=HARD)
    plan = run(snapshot(cluster, [j], tasks=tasks_of(j, 3)))
    assert len(plan.assignments) == 2
    assert pending(plan)["j-2"].rejections == {"constraint:zone_balance": 2}
