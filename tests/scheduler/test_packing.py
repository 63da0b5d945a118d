"""Packing a batch well in pack mode: jobs that will all be placed go largest first (``pack_order``),
then the packing pass (``improve.py`` over ``repack.py``) moves this iteration's tasks so they hold as
few hosts as it can find — never past a rule, and never leaving a task pending that now fits."""

from __future__ import annotations

from collections import Counter
from unittest.mock import patch

import numpy as np
import pytest
from hypothesis import given, settings

from corral.domain.capacity import CapacityGroup, Tier
from corral.domain.resources import Resources
from corral.scheduler import JobClass, Mode, PendingTask, Plan, Profile, Snapshot, improve, schedule
from corral.scheduler import repack as repack_module
from corral.scheduler.cluster import vector
from corral.scheduler.complete import complete
from corral.scheduler.queue import Bucket, pack_order
from corral.scheduler.repack import Bins, binding, repack
from tests.scheduler.builders import assert_same, cluster_of, cluster_state, host, job, per_host
from tests.scheduler.test_properties import (
    check_capacity_group_limits,
    check_every_hard_constraint,
    check_every_task_once,
    check_no_host_is_over_committed,
    check_pending_tasks_have_no_feasible_host,
    replay,
)
from tests.scheduler.world import World, worlds

PACK = Profile().with_mode(Tier.FLEX, Mode.PACK)
# 70 cpu that fit 7 hosts of 10 exactly (6+4, 6+4, 6+2+2, 5+5, 5+5, 5+3+2, 3+3+2+2); best-fit
# decreasing uses 8.
SIZES = [6, 6, 6, 5, 5, 5, 5, 5, 4, 4, 3, 3, 3, 2, 2, 2, 2, 2]


def batch(sizes: list[int], hosts: int, *, order: list[int] | None = None, cpu: int = 10) -> Snapshot:
    """One job per size (created in ``order``, oldest first), a task per item; hosts of ``cpu``."""
    cluster = cluster_of(host(f"h{i:02d}", cpu=float(cpu), memory=cpu * 1024) for i in range(hosts))
    distinct = sorted(set(sizes))
    created = order or list(range(len(distinct)))
    jobs = {
        f"s{s}": JobClass(f"s{s}", "default", Resources(float(s), s * 1024), float(created[k]))
        for k, s in enumerate(distinct)
    }
    tasks = [PendingTask(f"t{i:02d}", f"s{s}", 0.0, (0.0, i)) for i, s in enumerate(sizes)]
    return Snapshot(0.0, cluster, jobs, tasks)


def hosts_used(plan: Plan) -> int:
    return len(per_host(plan))


@pytest.mark.parametrize("seed", range(6))
def test_a_batch_reaches_the_optimum_where_best_fit_decreasing_uses_a_host_more(seed: int) -> None:
    snapshot = batch(SIZES, hosts=10, order=[3, 0, 4, 1, 2])
    plan = schedule(snapshot, PACK, np.random.default_rng(seed))
    assert not plan.pending
    assert hosts_used(plan) == 7
    with patch.object(improve, "MIN_TASKS", 10**9):  # the control: without the pass
        assert hosts_used(schedule(snapshot, PACK, np.random.default_rng(seed))) == 8


def test_a_tight_fleet_places_every_task_that_fits() -> None:
    """Exactly the room the tasks need (no slack at all): only the optimal packing places them all."""
    plan = schedule(batch(SIZES, hosts=7), PACK, np.random.default_rng(0))
    assert not plan.pending
    assert hosts_used(plan) == 7


def test_the_pass_never_runs_in_spread_mode() -> None:
    spread = Profile().with_mode(Tier.FLEX, Mode.SPREAD)
    with patch.object(improve.Pass, "run", side_effect=AssertionError("ran")):
        schedule(batch(SIZES, hosts=10), spread, np.random.default_rng(0))


def test_tasks_with_host_rules_stay_where_the_queue_put_them() -> None:
    """A job with unique_host is not moved (its rule depends on where its other tasks are); the
    movable ones still pack."""
    snapshot = batch(SIZES, hosts=12)
    unique = job("u", cpu=1.0, memory=1024, size=3, hard={"unique_host": "true"}, created_at=9.0)
    tasks = [*snapshot.tasks, *(PendingTask(f"u-{i}", "u", 0.0, (9.0, i)) for i in range(3))]
    snapshot = Snapshot(0.0, snapshot.cluster, {**snapshot.jobs, "u": unique}, tasks)
    plan = schedule(snapshot, PACK, np.random.default_rng(0))
    assert not plan.pending
    unique_hosts = [a.host_id for a in plan.assignments if a.task_id.startswith("u-")]
    assert len(set(unique_hosts)) == 3


def test_the_pass_keeps_static_constraints() -> None:
    """Half the hosts are in z1 and one job must run there: after the re-pack it still does."""
    cluster = cluster_of(host(f"h{i:02d}", cpu=10.0, memory=10240, zone=f"z{i % 2}") for i in range(12))
    jobs = {
        f"s{s}": JobClass(f"s{s}", "default", Resources(float(s), s * 1024), float(s)) for s in set(SIZES)
    }
    jobs["s3"] = JobClass("s3", "default", Resources(3.0, 3072), 3.0, hard={"availability_zone": "z1"})
    tasks = [PendingTask(f"t{i:02d}", f"s{s}", 0.0, (0.0, i)) for i, s in enumerate(SIZES)]
    plan = schedule(Snapshot(0.0, cluster, jobs, tasks), PACK, np.random.default_rng(0))
    assert not plan.pending
    zone_of = {f"h{i:02d}": f"z{i % 2}" for i in range(12)}
    pinned = [a.host_id for a in plan.assignments if a.footprint is not None and a.footprint.job_id == "s3"]
    assert pinned and all(zone_of[h] == "z1" for h in pinned)


def test_the_plan_is_reproducible_and_the_cluster_untouched() -> None:
    snapshot = batch(SIZES, hosts=10, order=[2, 4, 0, 3, 1])
    before = cluster_state(snapshot.cluster)
    first = schedule(snapshot, PACK, np.random.default_rng(3))
    assert_same(before, cluster_state(snapshot.cluster))
    assert schedule(snapshot, PACK, np.random.default_rng(3)) == first


# -- pack_order -------------------------------------------------------------------------------------


def bucket(name: str, classes: list[tuple[str, float, int]]) -> Bucket:
    """A bucket of jobs (id, cpu, tasks) in fair order."""
    b = Bucket(CapacityGroup(name, Tier.FLEX), np.zeros(5), np.zeros(5), None)
    for k, (job_id, cpu, count) in enumerate(classes):
        cls = JobClass(job_id, name, Resources(cpu, 0), float(k))
        b.classes.append((cls, [PendingTask(f"{job_id}-{i}", job_id, 0.0, (0.0, i)) for i in range(count)]))
    return b


def order(b: Bucket) -> list[str]:
    return [cls.job_id for cls, _ in b.classes]


FREE = vector(Resources(100.0, 0))


def test_jobs_that_all_fit_go_largest_first_even_in_a_tight_fleet() -> None:
    b = bucket("g", [("small", 1.0, 40), ("big", 8.0, 7)])  # 96 of 100 cpu free
    assert pack_order([b], FREE, FREE)
    assert order(b) == ["big", "small"]


def test_when_room_is_short_only_the_oldest_jobs_that_fit_are_reordered() -> None:
    b = bucket("g", [("a", 1.0, 30), ("b", 5.0, 10), ("c", 10.0, 5), ("d", 2.0, 5)])  # a + b = 80 fit
    assert pack_order([b], FREE, FREE)
    assert order(b) == ["b", "a", "c", "d"]  # c would not fit after them: it and d keep their place


def test_other_groups_demand_counts_before_reordering() -> None:
    mine = bucket("g", [("a", 1.0, 30), ("b", 5.0, 10)])
    other = bucket("h", [("x", 1.0, 40)])  # 80 + 40 > 100: nothing of g is sure to be placed
    assert not pack_order([mine, other], FREE, FREE)
    assert order(mine) == ["a", "b"]


# -- the search on its own --------------------------------------------------------------------------


def test_memory_in_proportion_to_cpu_is_left_out_of_the_search() -> None:
    size = np.array([[1.0, 2.0, 0.01], [2.0, 4.0, 0.01]])
    cap = np.array([[2.5, 5.0, 1.0], [2.5, 16.0, 1.0]])
    assert binding(size, cap) == [0]  # memory follows cpu; the third column never fills


def test_the_search_frees_bins_and_keeps_items_where_they_are_allowed() -> None:
    sizes = np.array(SIZES, dtype=float)[:, None] / 10
    bins = 10
    # Worst fit: one item per bin to start with, so there is a lot to free.
    where = np.arange(len(SIZES)) % bins
    allowed = np.ones((2, bins), dtype=bool)
    allowed[1, :3] = False  # the 5s may not use the first three bins
    kind = np.array([1 if s == 5 else 0 for s in SIZES])
    where = np.where((kind == 1) & (where < 3), where + 3, where)
    state = Bins(np.ones((bins, 1)), np.ones(bins, dtype=bool), sizes, kind, allowed, where)
    repack(state, np.random.default_rng(0), work=10**7, bound=7)
    assert state.used() == 7
    assert (state.load <= 1.0 + 1e-9).all()
    assert all(allowed[k, b] for k, b in zip(kind, state.where, strict=True))


def best_fit_decreasing(sizes: np.ndarray) -> tuple[np.ndarray, int]:
    """Each item, largest first, into the fullest bin of 1 it fits (a new one if none): the start the
    scheduler's queue gives the search."""
    loads: list[float] = []
    where = np.empty(len(sizes), dtype=np.int64)
    for i in np.argsort(-sizes, kind="stable"):
        fits = [b for b, load in enumerate(loads) if load + sizes[i] <= 1.0 + 1e-9]
        if not fits:
            loads.append(0.0)
            fits = [len(loads) - 1]
        b = max(fits, key=lambda b: loads[b])
        loads[b] += sizes[i]
        where[i] = b
    return where, len(loads)


def test_the_search_reaches_the_bound_on_a_tight_uniform_batch() -> None:
    """120 items uniform in [20, 100] / 150: best fit decreasing uses one bin over the bound, which the
    overflow search alone does not close within its budget; aiming at the bound outright does."""
    sizes = np.random.default_rng(1).integers(20, 101, size=120) / 150
    where, n = best_fit_decreasing(sizes)
    bound = int(np.ceil(sizes.sum() - 1e-9))
    assert n == bound + 1

    def search() -> Bins:
        state = Bins(
            np.ones((n, 1)),
            np.ones(n, dtype=bool),
            sizes[:, None],
            np.zeros(120, dtype=np.int64),
            np.ones((1, n), dtype=bool),
            where,
        )
        repack(state, np.random.default_rng(0), work=1_500_000, bound=bound)
        assert (state.load <= 1.0 + 1e-9).all() and (state.where >= 0).all()
        return state

    assert search().used() == bound
    with patch.object(repack_module, "COMPLETE_SHARE", 0.0):  # the control: the overflow search alone
        assert search().used() == bound + 1


def test_completion_keeps_every_column_and_where_items_may_go() -> None:
    """Two columns, a job that may not use the host with other tasks (a bin that cannot be emptied, whose
    room counts all the same): 9 items from 3 emptiable bins into 2 of them and that one."""
    size = np.array([[0.4, 0.1]] * 4 + [[0.1, 0.4]] * 4 + [[0.3, 0.3]])
    cap = np.array([[1.0, 1.0], [1.0, 1.0], [1.0, 1.0], [0.4, 0.4]])
    emptiable = np.array([True, True, True, False])
    kind = np.array([0] * 4 + [1] * 4 + [0])
    allowed = np.ones((2, 4), dtype=bool)
    allowed[1, 3] = False
    state = Bins(cap, emptiable, size, kind, allowed, np.arange(9) % 3)
    done = complete(state, 2, 10**6, np.random.default_rng(0))
    assert done.where is not None
    state.reset(done.where)
    assert (state.where >= 0).all() and (state.load <= cap + 1e-9).all()
    assert all(allowed[k, b] for k, b in zip(kind, state.where, strict=True))
    assert state.used() == 2
    assert state.count[3] == 1


def test_completion_hands_back_the_nearest_packing_when_the_target_is_out_of_reach() -> None:
    """Six items that fill three bins by volume but not in fact: once 0.7 + 0.3 fills one, nothing fills
    the next. No packing, and the nearest holds those two."""
    sizes = np.array([0.7, 0.3, 0.7, 0.7, 0.5, 0.1])[:, None]
    state = Bins(
        np.ones((4, 1)),
        np.ones(4, dtype=bool),
        sizes,
        np.zeros(6, dtype=np.int64),
        np.ones((1, 4), dtype=bool),
        np.array([0, 0, 1, 2, 3, 3]),
    )
    done = complete(state, 3, 10**6, np.random.default_rng(0))
    assert done.where is None and done.nearest is not None
    placed = np.flatnonzero(done.nearest >= 0)
    assert sorted(sizes[placed, 0].tolist()) == [0.3, 0.7]
    assert len(set(done.nearest[placed].tolist())) == 1


# -- properties -------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(worlds())
def test_plans_are_sound_with_the_pass_on_every_batch(world: World) -> None:
    """The scheduler's soundness properties, with the pass running on batches of any size."""
    with patch.object(improve, "MIN_TASKS", 1):
        snapshot, fleet = world.build()
        plan = schedule(snapshot, world.profile, np.random.default_rng(world.seed))
        check_no_host_is_over_committed(snapshot, fleet, plan)
        check_capacity_group_limits(snapshot, plan)
        check_every_task_once(snapshot, plan)
        replay(snapshot, fleet, plan)
        check_every_hard_constraint(snapshot, fleet, plan)
        check_pending_tasks_have_no_feasible_host(snapshot, fleet, plan)
        assert schedule(snapshot, world.profile, np.random.default_rng(world.seed)) == plan


def test_the_pass_acts_on_random_batches() -> None:
    """The pass moves tasks on many random batches (so the properties above test something), and every
    plan it changes is sound by the same checks."""
    acted: Counter[bool] = Counter()
    original = improve._Repack._apply

    def spy(self: improve._Repack, target: list[int]) -> bool:
        done = original(self, target)
        acted[done] += 1
        return done

    rng = np.random.default_rng(0)
    with patch.object(improve, "MIN_TASKS", 1), patch.object(improve._Repack, "_apply", spy):
        for _ in range(100):  # Falkenauer's uniform sizes, fewer of them
            sizes = [int(s) for s in rng.integers(20, 101, size=int(rng.integers(10, 40)))]
            snapshot = batch(sizes, hosts=len(sizes), cpu=150)
            plan = schedule(snapshot, PACK, np.random.default_rng(int(rng.integers(99))))
            assert not plan.pending
            load = Counter[str]()
            for a in plan.assignments:
                assert a.footprint is not None
                load[a.host_id] += int(a.footprint.request.cpu)
            assert max(load.values()) <= 150
    assert acted[True] >= 5, acted
