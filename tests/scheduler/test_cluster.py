"""The fleet as arrays: registering hosts, tasks landing and finishing, forks, and the concrete choice
of ports and addresses."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.domain.resources import Resources
from corral.scheduler import Cluster, Placement
from corral.scheduler.cluster import ABSENT, MISSING, UNBOUND
from tests.scheduler.builders import assert_same, cluster_of, cluster_state, host


def web_task(
    sg: int,
    interface: int,
    address: int,
    *,
    job: str = "j",
    ports: tuple[int, ...] = (30000, 30001),
    exclusive: bool = False,
    image: str = "img:a",
) -> Placement:
    """A task's footprint with an address: 2 cpu, 1 GB, some disk and network."""
    return Placement(job, Resources(2.0, 1024, 100, 10, 0), ports, sg, interface, address, exclusive, image)


def test_reregistering_a_host_keeps_its_allocations() -> None:
    cluster = cluster_of([host("h0", cpu=8.0, memory=8192, ports=(30000, 30009), interfaces=2, rack="r1")])
    sg = cluster.sg_code(["web"])
    task = web_task(sg, 0, 0)
    cluster.assign(0, task)
    again = host("h0", cpu=16.0, memory=8192, zone="z1", ports=(30000, 30009), interfaces=2)
    assert cluster.upsert_host(again) == 0
    assert cluster.size == 1
    assert cluster.free[:, 0].tolist() == [14.0, 7168.0, 99_900.0, 9_990.0, 0.0]
    assert cluster.used_ports[0] == {30000, 30001}
    assert cluster.ports_free[0] == 8
    assert cluster.task_count[0] == 1
    assert cluster.job_hosts == {"j": {0: 1}}
    assert (cluster.if_sg[0, 0], cluster.if_used[0, 0], cluster.free_ifaces[0]) == (sg, 1, 1)
    assert cluster.room(sg)[0] == 29
    assert cluster.attribute("zone")[0] == cluster.lookup("zone", "z1")
    assert cluster.attribute("rack")[0] == MISSING  # no longer reported
    cluster.release(0, task)
    assert np.array_equal(cluster.free[:, 0], cluster.total[:, 0])
    assert (cluster.ports_free[0], cluster.free_ifaces[0], cluster.room(sg)[0]) == (10, 2, 0)


def test_reregistering_as_unschedulable_and_back() -> None:
    cluster = cluster_of([host("h0")])
    cluster.upsert_host(host("h0", schedulable=False))
    assert not cluster.schedulable[0]
    cluster.set_schedulable("h0", True)
    assert cluster.schedulable[0]


def test_an_interface_that_went_away_does_not_come_back_when_freed() -> None:
    cluster = cluster_of([host("h0", interfaces=3, addresses=2)])
    sg = cluster.sg_code(["web"])
    task = web_task(sg, 2, 0)
    cluster.assign(0, task)
    cluster.upsert_host(host("h0", interfaces=1, addresses=2))
    assert cluster.if_sg[0, :3].tolist() == [UNBOUND, ABSENT, sg]  # still held until the task ends
    assert cluster.free_ifaces[0] == 1
    cluster.release(0, task)
    assert cluster.if_sg[0, :3].tolist() == [UNBOUND, ABSENT, ABSENT]
    assert cluster.free_ifaces[0] == 1
    cluster.assign(0, web_task(cluster.sg_code(["db"]), 0, 0))
    assert cluster.pick_address(0, sg) is None  # the host has one interface, and it is taken


def test_changing_addresses_per_interface_keeps_the_room_consistent() -> None:
    cluster = cluster_of([host("h0", interfaces=1, addresses=4)])
    sg = cluster.sg_code(["web"])
    task = web_task(sg, 0, 0)
    cluster.assign(0, task)
    assert cluster.room(sg)[0] == 3
    cluster.upsert_host(host("h0", interfaces=1, addresses=2))
    assert cluster.room(sg)[0] == 1
    cluster.release(0, task)
    assert cluster.room(sg)[0] == 0
    assert cluster.free_ifaces[0] == 1


def test_an_interface_over_full_after_reregistering_has_no_room() -> None:
    cluster = cluster_of([host("h0", interfaces=2, addresses=4)])
    sg = cluster.sg_code(["web"])
    tasks = [web_task(sg, 0, slot) for slot in range(3)]
    for task in tasks:
        cluster.assign(0, task)
    cluster.upsert_host(host("h0", interfaces=2, addresses=1))
    assert cluster.room(sg)[0] == 0  # three held where one fits now: no room, but none owed either
    assert cluster.pick_address(0, sg) == (1, 0)  # the free interface still takes an address
    cluster.release(0, tasks[2])
    assert cluster.room(sg)[0] == 0
    cluster.release(0, tasks[1])
    cluster.release(0, tasks[0])
    assert (cluster.room(sg)[0], cluster.free_ifaces[0]) == (0, 2)


def test_the_arrays_grow_past_their_initial_capacity() -> None:
    cluster = Cluster(capacity=2, interfaces=1)
    cluster.upsert_host(host("h0", interfaces=1))
    sg = cluster.sg_code(["web"])
    cluster.assign(0, web_task(sg, 0, 0))
    for i in range(1, 40):
        cluster.upsert_host(host(f"h{i}", interfaces=4))
    assert cluster.size == 40 and cluster.if_sg.shape[1] == 4
    assert cluster.free[0, 0] == 14.0 and cluster.room(sg)[0] == 29
    assert cluster.if_sg[0].tolist() == [sg, ABSENT, ABSENT, ABSENT]
    assert cluster.free_ifaces[:40].tolist() == [0] + [4] * 39


def test_assign_then_release_restores_every_array() -> None:
    cluster = cluster_of([host("h0", interfaces=2, addresses=2), host("h1", zone="z1")])
    sg, other = cluster.sg_code(["web"]), cluster.sg_code(["db"])
    cluster.room(sg), cluster.room(other)  # create the rows the tasks will use
    before = cluster_state(cluster)
    tasks = [
        (0, web_task(sg, 0, 0)),
        (0, web_task(sg, 0, 1, ports=(30005,), job="k")),
        (0, web_task(other, 1, 0, ports=())),
        (1, web_task(sg, 0, 0, exclusive=True, image="img:b")),
    ]
    for h, task in tasks:
        cluster.assign(h, task)
    assert cluster_state(cluster)["task_count"][:2].tolist() == [3, 1]
    for h, task in reversed(tasks):
        cluster.release(h, task)
    after = cluster_state(cluster)
    assert after["image_hosts"] == {"img:a": {0}, "img:b": {1}}  # a host that ran an image still has it
    after["image_hosts"] = before["image_hosts"]
    after["used_ports"] = {h: p for h, p in after["used_ports"].items() if p}
    assert_same(before, after)


def busy_cluster() -> tuple[Cluster, int]:
    cluster = cluster_of([host("h0", interfaces=2, addresses=2), host("h1")])
    sg = cluster.sg_code(["web"])
    cluster.assign(0, web_task(sg, 0, 0))
    return cluster, sg


def test_changes_on_a_fork_never_show_in_the_original() -> None:
    cluster, sg = busy_cluster()
    before = cluster_state(cluster)
    fork = cluster.fork()
    steps: list[Callable[[], object]] = [
        lambda: fork.assign(0, web_task(sg, 0, 1, ports=(30002,))),  # containers the original has too
        lambda: fork.assign(1, web_task(fork.sg_code(["db"]), 0, 0, job="k", exclusive=True, image="img:b")),
        lambda: fork.release(0, web_task(sg, 0, 0)),
        lambda: fork.code("zone", "z-new"),
    ]
    for step in steps:
        step()
        assert_same(before, cluster_state(cluster))
    assert fork.job_hosts == {"j": {0: 1}, "k": {1: 1}}
    assert fork.used_ports == {0: {30002}, 1: {30000, 30001}}
    assert fork.room(sg)[0] == 1 and set(np.flatnonzero(fork.image_hosts["img:b"])) == {1}
    assert fork.exclusive[1] == 1 and fork.lookup("zone", "z-new") is not None


def test_a_fork_of_a_fork_is_isolated_too() -> None:
    cluster, sg = busy_cluster()
    first = cluster.fork()
    first.assign(1, web_task(sg, 0, 0, job="k"))
    before = cluster_state(first)
    second = first.fork()
    second.assign(1, web_task(sg, 0, 1, job="k", ports=(30002,)))
    assert_same(before, cluster_state(first))
    assert second.job_hosts["k"] == {1: 2}


def test_a_fork_sees_the_state_at_the_time_of_forking() -> None:
    cluster, _ = busy_cluster()
    fork = cluster.fork()
    assert_same(cluster_state(cluster), cluster_state(fork))


def test_pick_address_prefers_an_interface_bound_to_the_same_groups() -> None:
    cluster = cluster_of([host("h0", interfaces=3, addresses=2)])
    web, db, cache = (cluster.sg_code([name]) for name in ("web", "db", "cache"))
    cluster.assign(0, web_task(db, 0, 0))
    assert cluster.pick_address(0, web) == (1, 0)  # interface 0 has room, but for another group
    cluster.assign(0, web_task(web, 1, 0))
    assert cluster.pick_address(0, web) == (1, 1)
    assert cluster.pick_address(0, db) == (0, 1)
    cluster.assign(0, web_task(web, 1, 1))
    assert cluster.pick_address(0, web) == (2, 0)  # its interface is full: a free one
    cluster.assign(0, web_task(cache, 2, 0))
    assert cluster.pick_address(0, web) is None
    cluster.release(0, web_task(web, 1, 0))
    assert cluster.pick_address(0, web) == (1, 0)  # the freed slot, on the interface still bound to web


def test_an_interface_is_free_again_when_its_last_address_goes() -> None:
    cluster = cluster_of([host("h0", interfaces=1, addresses=2)])
    web, db = cluster.sg_code(["web"]), cluster.sg_code(["db"])
    cluster.assign(0, web_task(web, 0, 0))
    assert cluster.pick_address(0, db) is None
    cluster.release(0, web_task(web, 0, 0))
    assert cluster.pick_address(0, db) == (0, 0)
    assert cluster.if_sg[0, 0] == UNBOUND


def test_pick_ports_skips_used_ports_and_stops_at_the_range() -> None:
    cluster = cluster_of([host("h0", ports=(30000, 30003))])
    cluster.assign(0, Placement("j", Resources(1.0), ports=(30001,)))
    assert cluster.pick_ports(0, 2) == (30000, 30002)
    assert cluster.pick_ports(0, 5) == (30000, 30002, 30003)


def test_codes_are_stable_and_security_group_sets_are_unordered() -> None:
    cluster = cluster_of([host("h0", zone="z0"), host("h1", zone="z1")])
    assert cluster.sg_code(["web", "db"]) == cluster.sg_code(["db", "web", "db"])
    assert cluster.sg_code(["web"]) != cluster.sg_code(["db", "web"])
    assert cluster.lookup("zone", "z1") == cluster.code("zone", "z1") == 1
    assert cluster.lookup("zone", "z9") is None
    assert cluster.attribute("no-such-key").tolist() == [MISSING, MISSING]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.one_of(st.just(0.0), st.floats(0.25, 1e6)), min_size=5, max_size=5),
    st.lists(
        st.builds(
            Resources,
            st.floats(0.0, 64.0),
            st.integers(0, 1 << 20),
            st.integers(0, 1 << 20),
            st.integers(0, 10_000),
            st.integers(0, 4),
        ),
        min_size=1,
        max_size=6,
    ),
)
def test_assign_keeps_free_and_utilization_as_the_columns_compute_them(
    totals: list[float], tasks: list[Resources]
) -> None:
    """``assign`` works out one host's numbers in plain floats: bitwise what the column arithmetic gives
    (float64 ``free``, float32 ``util`` = has - free x inv_total)."""
    cluster = Cluster()
    cluster.upsert_host(host("h0", cpu=totals[0], memory=int(totals[1])))
    cluster.total[2:, 0] = totals[2:]
    total = cluster.total[:, 0]
    cluster.free[:, 0] = total
    cluster.has[:, 0] = total > 0
    cluster.inv_total[:, 0] = np.divide(1.0, total, out=np.zeros(5), where=total > 0)
    free = cluster.free[:, 0].copy()
    for r in tasks:
        cluster.assign(0, Placement("j", r))
        free -= np.array([r.cpu, r.memory_mb, r.disk_mb, r.network_mbps, r.gpu], dtype=np.float64)
        util = (cluster.has[:, 0] - free * cluster.inv_total[:, 0]).astype(np.float32)
        assert cluster.free[:, 0].tobytes() == free.tobytes()
        assert cluster.util[:, 0].tobytes() == util.tobytes()
