"""Who is served first: critical before flex, then the capacity group furthest below its guarantee
(dominant share), and never past a group's hard limit."""

from __future__ import annotations

from collections import deque

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.domain.capacity import CapacityGroup, Tier
from corral.domain.resources import Resources
from corral.scheduler import JobClass, PendingReason, PendingTask
from corral.scheduler.cluster import vector
from corral.scheduler.queue import Bucket, pack_order
from tests.scheduler.builders import cluster_of, host, job, pending, placed, run, snapshot

GUARANTEE = Resources(8.0, 8192)


def test_a_critical_task_submitted_later_still_takes_the_only_room() -> None:
    flex = job("flex", cpu=4.0, group="batch", created_at=0.0)
    critical = job("critical", cpu=4.0, group="prod", created_at=50.0)
    groups = [CapacityGroup("batch", Tier.FLEX), CapacityGroup("prod", Tier.CRITICAL)]
    plan = run(snapshot(cluster_of([host("h0", cpu=4.0)]), [flex, critical], groups=groups))
    assert placed(plan) == {"critical-0": "h0"}
    assert pending(plan)["flex-0"].reason is PendingReason.NO_CAPACITY


def test_without_the_tier_the_older_job_wins() -> None:
    """The control for the test above: the same snapshot with both groups flex."""
    flex = job("flex", cpu=4.0, group="batch", created_at=0.0)
    other = job("critical", cpu=4.0, group="prod", created_at=50.0)
    groups = [CapacityGroup("batch", Tier.FLEX), CapacityGroup("prod", Tier.FLEX)]
    plan = run(snapshot(cluster_of([host("h0", cpu=4.0)]), [flex, other], groups=groups))
    assert placed(plan) == {"flex-0": "h0"}


def test_critical_tasks_are_placed_before_flex_tasks() -> None:
    flex = job("flex", group="batch", size=3)
    critical = job("critical", group="prod", created_at=9.0, size=3)
    groups = [CapacityGroup("batch", Tier.FLEX), CapacityGroup("prod", Tier.CRITICAL)]
    plan = run(snapshot(cluster_of([host("h0"), host("h1")]), [flex, critical], groups=groups))
    order = [a.task_id.split("-")[0] for a in plan.assignments]
    assert order == ["critical"] * 3 + ["flex"] * 3


def two_groups(usage: dict[str, Resources], room_cpu: float, tasks: int = 2) -> dict[str, str]:
    groups = [CapacityGroup("alpha", Tier.FLEX, GUARANTEE), CapacityGroup("beta", Tier.FLEX, GUARANTEE)]
    jobs = [
        job("a", group="alpha", created_at=0.0, size=tasks),
        job("b", group="beta", created_at=5.0, size=tasks),
    ]
    plan = run(snapshot(cluster_of([host("h0", cpu=room_cpu)]), jobs, groups=groups, usage=usage))
    return placed(plan)


def test_the_group_further_below_its_guarantee_by_dominant_share_gets_scarce_room() -> None:
    # alpha: cpu 1/8 but memory 6144/8192 -> dominant share 0.75; beta: cpu 4/8 -> 0.5.
    # By cpu alone alpha would be served first; by dominant share beta is.
    usage = {"alpha": Resources(1.0, 6144), "beta": Resources(4.0, 0)}
    assert sorted(two_groups(usage, room_cpu=2.0)) == ["b-0", "b-1"]


def test_the_other_group_wins_when_the_shares_are_reversed() -> None:
    usage = {"alpha": Resources(1.0, 0), "beta": Resources(4.0, 0)}
    assert sorted(two_groups(usage, room_cpu=2.0)) == ["a-0", "a-1"]


def test_groups_at_their_guarantee_share_the_room_fairly() -> None:
    landed = two_groups({}, room_cpu=10.0, tasks=10)
    alpha = sum(1 for task in landed if task.startswith("a-"))
    assert len(landed) == 10
    assert 4 <= alpha <= 6, f"alpha got {alpha} of 10: DRF should interleave the groups"


def test_a_group_at_its_limit_waits_while_other_groups_place() -> None:
    groups = [
        CapacityGroup("capped", Tier.FLEX, limit=Resources(2.0, 0)),
        CapacityGroup("open", Tier.FLEX),
    ]
    jobs = [job("c", group="capped", size=2), job("o", group="open", created_at=1.0, size=2)]
    usage = {"capped": Resources(2.0, 4096)}
    plan = run(snapshot(cluster_of([host("h0")]), jobs, groups=groups, usage=usage))
    assert sorted(placed(plan)) == ["o-0", "o-1"]
    for task in ("c-0", "c-1"):
        p = pending(plan)[task]
        assert p.reason is PendingReason.GROUP_LIMIT
        assert p.message == "capacity group `capped` at its limit"


def test_a_group_places_up_to_its_limit_and_no_further() -> None:
    groups = [CapacityGroup("capped", Tier.FLEX, limit=Resources(3.0, 0))]
    plan = run(
        snapshot(
            cluster_of([host("h0")]),
            [job("c", group="capped", size=4)],
            groups=groups,
            usage={"capped": Resources(1.0, 0)},
        )
    )
    assert sorted(placed(plan)) == ["c-0", "c-1"]
    assert {p.task_id: p.reason for p in plan.pending} == {
        "c-2": PendingReason.GROUP_LIMIT,
        "c-3": PendingReason.GROUP_LIMIT,
    }


def test_a_zero_limit_dimension_is_unlimited() -> None:
    groups = [CapacityGroup("capped", Tier.FLEX, limit=Resources(0.0, 2048))]
    plan = run(
        snapshot(cluster_of([host("h0")]), [job("c", memory=512, group="capped", size=10)], groups=groups)
    )
    assert len(plan.assignments) == 4  # memory 4 x 512 = 2048; cpu (limit 0) does not count
    assert all(p.reason is PendingReason.GROUP_LIMIT for p in plan.pending)


def test_a_job_naming_an_unknown_group_is_served_as_the_default_group() -> None:
    groups = [CapacityGroup("default", Tier.FLEX, limit=Resources(1.0, 0))]
    plan = run(snapshot(cluster_of([host("h0")]), [job("g", group="ghost", size=2)], groups=groups))
    assert list(placed(plan)) == ["g-0"]
    assert pending(plan)["g-1"].message == "capacity group `default` at its limit"


# -- pack_order, all classes at once against one at a time ------------------------------------------


def pack_order_one_by_one(buckets: list[Bucket], free: np.ndarray, total: np.ndarray) -> None:
    """``pack_order`` as first written: demands summed and the head grown one class at a time."""
    demands = [[vector(cls.request) * len(tasks) for cls, tasks in b.classes] for b in buckets]
    totals = [sum(d, np.zeros_like(free)) for d in demands]
    everything = sum(totals, np.zeros_like(free))
    share = np.divide(1.0, total, out=np.zeros_like(total), where=total > 0)
    for bucket, demand, own in zip(buckets, demands, totals, strict=True):
        room = free - (everything - own) + 1e-9
        head = 0
        used = np.zeros_like(free)
        while head < len(demand) and np.all(used + demand[head] <= room):
            used += demand[head]
            head += 1
        if head < 2:
            continue
        classes = list(bucket.classes)
        ordered = sorted(
            classes[:head],
            key=lambda item: (-float((vector(item[0].request) * share).max()), item[0].created_at),
        )
        bucket.classes = deque(ordered + classes[head:])


requests = st.builds(
    Resources,
    st.sampled_from([0.25, 0.5, 1.0, 1.5, 3.0, 8.0]),
    st.integers(0, 8192),
    st.integers(0, 4096),
    st.integers(0, 300),
    st.integers(0, 1),
)


def buckets_of(jobs: list[list[tuple[Resources, int, int]]]) -> list[Bucket]:
    out = []
    for g, group in enumerate(jobs):
        b = Bucket(CapacityGroup(f"g{g}", Tier.FLEX), np.zeros(5), np.zeros(5), None)
        for k, (request, count, created) in enumerate(group):
            cls = JobClass(f"g{g}j{k}", f"g{g}", request, float(created))
            b.classes.append((cls, [PendingTask(f"{cls.job_id}-{i}", cls.job_id) for i in range(count)]))
        out.append(b)
    return out


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.lists(st.tuples(requests, st.integers(1, 40), st.integers(0, 5)), max_size=12),
        min_size=1,
        max_size=3,
    ),
    st.floats(1.0, 400.0),
)
def test_pack_order_orders_as_one_class_at_a_time(
    jobs: list[list[tuple[Resources, int, int]]], cpu: float
) -> None:
    free = vector(Resources(cpu, 400_000, 200_000, 20_000, 8))
    total = free * 1.5
    fast, slow = buckets_of(jobs), buckets_of(jobs)
    pack_order(fast, free, total)
    pack_order_one_by_one(slow, free, total)
    assert [[c.job_id for c, _ in b.classes] for b in fast] == [
        [c.job_id for c, _ in b.classes] for b in slow
    ]
