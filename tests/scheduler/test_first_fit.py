"""scheduler/schedule.py, the first-fit placeholder: never over-commits, explains every pending task."""

from __future__ import annotations

import random
from collections import defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st

from corral.domain.resources import ZERO, Resources
from corral.scheduler import (
    Assignment,
    HostOffer,
    Pending,
    PendingReason,
    Plan,
    Profile,
    Snapshot,
    TaskRequest,
)
from corral.scheduler import schedule as place

PROFILE = Profile()
SMALL = Resources(1.0, 1024, 1000, 100, 0)
HOST = Resources(4.0, 4096, 10_000, 1000, 0)


def req(task_id: str, resources: Resources = SMALL, ports: int = 0, ready_at: float = 0.0) -> TaskRequest:
    return TaskRequest(task_id, "j1", resources, ports, ready_at)


def plan(tasks: list[TaskRequest], hosts: list[HostOffer], now: float = 10.0) -> Plan:
    return place(Snapshot(now, tuple(tasks), tuple(hosts)), PROFILE, random.Random(0))


def test_first_fit_fills_the_first_host_first() -> None:
    hosts = [HostOffer("h1", HOST), HostOffer("h2", HOST)]
    result = plan([req(f"t{i}") for i in range(5)], hosts)
    assert [a.host_id for a in result.assignments] == ["h1"] * 4 + ["h2"]
    assert result.pending == ()


def test_free_room_is_reduced_before_the_next_task() -> None:
    big = Resources(3.0, 1024, 0, 0, 0)
    result = plan([req("a", big), req("b", big)], [HostOffer("h1", HOST), HostOffer("h2", HOST)])
    assert result.assignments == (Assignment("a", "h1"), Assignment("b", "h2"))


def test_ports_are_the_lowest_free_ones_and_distinct() -> None:
    host = HostOffer("h1", HOST, (31000, 31009), frozenset({31000, 31002}))
    result = plan([req("a", ports=2), req("b", ports=2)], [host])
    assert result.assignments == (
        Assignment("a", "h1", (31001, 31003)),
        Assignment("b", "h1", (31004, 31005)),
    )


def test_a_host_without_enough_ports_is_passed_over() -> None:
    hosts = [HostOffer("h1", HOST, (31000, 31001)), HostOffer("h2", HOST, (32000, 32009))]
    assert plan([req("a", ports=3)], hosts).assignments == (Assignment("a", "h2", (32000, 32001, 32002)),)


def test_no_ports_anywhere() -> None:
    hosts = [HostOffer("h1", HOST, (31000, 31001)), HostOffer("h2", HOST, (31000, 31000))]
    assert plan([req("a", ports=3)], hosts).pending == (
        Pending("a", PendingReason.NO_PORTS, "no ports: 2 hosts", {"ports": 2}),
    )


def test_not_ready_tasks_stay_pending_and_take_no_room() -> None:
    hosts = [HostOffer("h1", Resources(1.0, 1024, 1000, 100, 0))]
    result = plan([req("later", ready_at=15.0), req("now", ready_at=10.0)], hosts, now=10.0)
    assert result.pending == (Pending("later", PendingReason.NOT_READY, "retry delay: ready in 5.0s"),)
    assert result.assignments == (Assignment("now", "h1"),)


def test_unschedulable_hosts_are_skipped() -> None:
    hosts = [HostOffer("down", HOST, schedulable=False), HostOffer("up", HOST)]
    assert plan([req("a")], hosts).assignments == (Assignment("a", "up"),)


def test_only_unschedulable_hosts_means_no_hosts() -> None:
    hosts = [HostOffer("down", HOST, schedulable=False)]
    assert plan([req("a")], hosts).pending == (
        Pending("a", PendingReason.NO_HOSTS, "no schedulable host", {"host_unavailable": 1}),
    )
    assert plan([req("a")], []).pending == (Pending("a", PendingReason.NO_HOSTS, "no schedulable host", {}),)


def test_explanation_names_the_dominant_short_resource() -> None:
    hosts = [
        HostOffer("h1", Resources(8.0, 512, 10_000, 1000, 0)),
        HostOffer("h2", Resources(8.0, 512, 10_000, 1000, 0)),
        HostOffer("h3", Resources(0.5, 8192, 10_000, 1000, 0)),
        HostOffer("h4", HOST, schedulable=False),
    ]
    (pending,) = plan([req("a")], hosts).pending
    assert pending == Pending(
        "a",
        PendingReason.NO_CAPACITY,
        "no capacity: memory — 2 of 3 hosts too full",
        {"host_unavailable": 1, "resources:memory": 2, "resources:cpu": 1},
    )


def test_mixed_port_and_resource_shortage_is_no_capacity() -> None:
    hosts = [HostOffer("h1", HOST, (31000, 31000)), HostOffer("h2", ZERO)]
    (pending,) = plan([req("a", ports=2)], hosts).pending
    assert pending.reason is PendingReason.NO_CAPACITY
    assert pending.rejections["ports"] == 1
    assert pending.message.startswith("no capacity: cpu — 1 of 2 hosts")


# -- properties ----------------------------------------------------------------------------------

vectors = st.builds(
    Resources,
    st.integers(0, 16).map(lambda n: n / 4),
    st.integers(0, 16).map(lambda n: n * 256),
    st.integers(0, 4).map(lambda n: n * 1000),
    st.integers(0, 4).map(lambda n: n * 100),
    st.integers(0, 2),
)


@st.composite
def host_offers(draw: st.DrawFn, n: int) -> HostOffer:
    low = 30000 + 100 * n
    high = low + draw(st.integers(-1, 6))
    used = draw(st.frozensets(st.integers(low - 2, high + 2), max_size=4))
    return HostOffer(f"h{n}", draw(vectors), (low, high), used, draw(st.booleans()))


@st.composite
def snapshots(draw: st.DrawFn) -> Snapshot:
    hosts = [draw(host_offers(i)) for i in range(draw(st.integers(0, 6)))]
    count = draw(st.integers(0, 20))
    tasks = [
        TaskRequest(
            f"t{i}",
            f"j{i % 3}",
            draw(vectors),
            draw(st.integers(0, 3)),
            draw(st.sampled_from([0.0, 5.0, 9.0])),
        )
        for i in range(count)
    ]
    return Snapshot(5.0, tuple(tasks), tuple(hosts))


def fits_ports(need: int, host: HostOffer, taken: set[int]) -> bool:
    low, high = host.port_range
    return sum(1 for p in range(low, high + 1) if p not in taken) >= need


@settings(max_examples=300, deadline=None)
@given(snapshots())
def test_never_over_commits_a_host(snapshot: Snapshot) -> None:
    result = place(snapshot, PROFILE)
    hosts = {h.host_id: h for h in snapshot.hosts}
    tasks = {t.task_id: t for t in snapshot.tasks}
    used: dict[str, Resources] = defaultdict(lambda: ZERO)
    ports: dict[str, list[int]] = defaultdict(list)
    for a in result.assignments:
        host, task = hosts[a.host_id], tasks[a.task_id]
        assert host.schedulable
        assert task.ready_at <= snapshot.now
        assert len(a.ports) == task.ports
        used[a.host_id] += task.resources
        ports[a.host_id].extend(a.ports)
    for host_id, total in used.items():
        host = hosts[host_id]
        assert total.fits_in(host.free), (host_id, total, host.free)
        low, high = host.port_range
        assert len(set(ports[host_id])) == len(ports[host_id])
        assert all(low <= p <= high and p not in host.used_ports for p in ports[host_id])
    # Every task is either placed or explained, once.
    assert sorted([a.task_id for a in result.assignments] + [p.task_id for p in result.pending]) == sorted(
        tasks
    )
    # A task left pending for room really has none: room only shrinks as later tasks land.
    for p in result.pending:
        if p.reason is PendingReason.NOT_READY:
            assert tasks[p.task_id].ready_at > snapshot.now
            continue
        for host in snapshot.hosts:
            if not host.schedulable:
                continue
            room = host.free - used[host.host_id]
            taken = set(host.used_ports) | set(ports[host.host_id])
            assert not (
                tasks[p.task_id].resources.fits_in(room) and fits_ports(tasks[p.task_id].ports, host, taken)
            )


@settings(max_examples=100, deadline=None)
@given(snapshots(), st.integers())
def test_same_snapshot_same_plan(snapshot: Snapshot, seed: int) -> None:
    assert place(snapshot, PROFILE, random.Random(seed)) == place(snapshot, PROFILE, random.Random(seed + 1))
