"""Trial placement onto hypothetical hosts: exactly the hosts the real scheduler would fill, the cheapest
set of groups, hosts on their way first, and tasks no shape can hold named as such."""

from __future__ import annotations

import math

from corral.autoscale.trial import add_hosts, detached, group_of, shortfall
from corral.domain.hostgroup import HostGroup, HostShape
from corral.domain.resources import Resources
from corral.scheduler import PendingTask
from tests.scheduler.builders import cluster_of, host, job


def shape(cpu: float, memory: int = 65536, zones: tuple[str, ...] = ("z0",), **attrs: str) -> HostShape:
    return HostShape(Resources(cpu, memory, 100_000, 10_000, 0), zones, "m5", dict(attrs))


def tasks(n: int, job_id: str = "j") -> list[PendingTask]:
    return [PendingTask(f"{job_id}-{i}", job_id, order=(0.0, i)) for i in range(n)]


def test_a_burst_asks_for_exactly_the_hosts_it_fills() -> None:
    cluster = cluster_of([host(f"h{i}", cpu=16) for i in range(10)])
    small = HostGroup("small", shape(16.0))
    result = shortfall(cluster, {"j": job("j", cpu=1.0, memory=2048)}, tasks(5000), [small], {"small": 990})
    # 10 real hosts hold 160 tasks; 4,840 more at 16 per host.
    assert result.hosts == {"small": math.ceil(4840 / 16)}
    assert len(result.covered_by_coming) == 160
    assert len(result.placed) == 4840 and not result.unfixable


def test_the_trial_never_changes_the_cluster() -> None:
    cluster = cluster_of([host("h0", cpu=4)])
    before = (list(cluster.ids), cluster.free.copy(), cluster.schedulable.copy())
    shortfall(cluster, {"j": job("j", cpu=1.0)}, tasks(40), [HostGroup("g", shape(8.0))], {"g": 10})
    assert cluster.ids == before[0]
    assert (cluster.free == before[1]).all() and (cluster.schedulable == before[2]).all()
    copy = detached(cluster)
    add_hosts(copy, HostGroup("g", shape(8.0)), 3)
    assert cluster.size == 1 and copy.size == 4
    assert group_of(copy.ids[-1]) == "g" and group_of("h0") is None


def test_the_cheapest_group_per_task_wins() -> None:
    cluster = cluster_of([])
    cheap_small = HostGroup("small", shape(16.0), cost_per_host=1.0)
    big = HostGroup("big", shape(64.0, 4 * 65536), cost_per_host=3.5)  # 64 tasks for 3.5: cheaper per task
    jobs = {"j": job("j", cpu=1.0, memory=2048)}
    result = shortfall(cluster, jobs, tasks(640), [cheap_small, big], {"small": 100, "big": 100})
    assert result.hosts == {"big": 10}
    assert result.cost == 35.0
    pricier = HostGroup("big", shape(64.0, 4 * 65536), cost_per_host=5.0)
    result = shortfall(cluster, jobs, tasks(640), [cheap_small, pricier], {"small": 100, "big": 100})
    assert result.hosts == {"small": 40}


def test_room_limits_a_group_and_the_next_group_takes_the_rest() -> None:
    cluster = cluster_of([])
    a = HostGroup("a", shape(16.0), cost_per_host=1.0)
    b = HostGroup("b", shape(16.0), cost_per_host=2.0)
    result = shortfall(cluster, {"j": job("j", cpu=1.0)}, tasks(160), [a, b], {"a": 4, "b": 20})
    assert result.hosts == {"a": 4, "b": 6}
    assert len(result.placed) == 160


def test_hosts_on_their_way_are_filled_first() -> None:
    cluster = cluster_of([])
    g = HostGroup("g", shape(16.0))
    result = shortfall(cluster, {"j": job("j", cpu=1.0)}, tasks(100), [g], {"g": 50}, {"g": 5})
    assert len(result.covered_by_coming) == 80
    assert result.hosts == {"g": 2}


def test_a_constraint_only_one_group_satisfies_picks_that_group() -> None:
    cluster = cluster_of([])
    cpu_only = HostGroup("cpu", shape(16.0), cost_per_host=1.0)
    gpu_zone = HostGroup("east", shape(16.0, zones=("east",)), cost_per_host=3.0)
    jobs = {"j": job("j", cpu=2.0, hard={"availability_zone": "east"})}
    result = shortfall(cluster, jobs, tasks(10), [cpu_only, gpu_zone], {"cpu": 10, "east": 10})
    assert result.hosts == {"east": 2}


def test_tasks_no_shape_can_hold_are_unfixable() -> None:
    cluster = cluster_of([])
    g = HostGroup("g", shape(8.0))
    jobs = {"big": job("big", cpu=32.0), "ok": job("ok", cpu=1.0)}
    result = shortfall(cluster, jobs, [*tasks(2, "big"), *tasks(3, "ok")], [g], {"g": 10})
    assert result.hosts == {"g": 1}
    assert set(result.unfixable) == {"big-0", "big-1"}
    assert "shape" in result.unfixable["big-0"]
    full = shortfall(cluster, jobs, tasks(3, "ok"), [g], {"g": 0})
    assert full.hosts == {} and "max size" in full.unfixable["ok-0"]
