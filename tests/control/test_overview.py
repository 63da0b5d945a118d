"""The overview: hosts by health, allocation of reachable hosts, the queue and its Titus buckets, and
the busiest jobs — figures an operator reads off ``corral top`` and the console."""

from __future__ import annotations

from dataclasses import replace

from corral.control.overview import Allocation, health_of, overview
from corral.control.state import ClusterState
from corral.domain.host import Host
from corral.domain.resources import Resources
from corral.domain.states import HostState, JobState, TaskState
from tests.store.factories import make_job, make_task

NOW = 10_000.0
HOST = Resources(8.0, 8192, 10_000, 1000, 0)


def test_health_words() -> None:
    host = Host("h", HOST)
    assert health_of(host) == "healthy"
    assert health_of(replace(host, draining=True)) == "draining"
    assert health_of(replace(host, enabled=False)) == "draining"
    assert health_of(replace(host, healthy=False, draining=True)) == "unhealthy"
    assert health_of(replace(host, state=HostState.UNREACHABLE, healthy=False)) == "unreachable"


def cluster() -> ClusterState:
    state = ClusterState()
    state.put_host(Host("h1", HOST))
    state.put_host(Host("h2", HOST, healthy=False))
    state.put_host(Host("h3", HOST, state=HostState.UNREACHABLE))
    state.put_job(make_job("web", application="web", service=True, cpu=2.0, memory_mb=1024))
    state.put_job(make_job("etl", application="etl", capacity_group="batchy"))
    state.put_job(make_job("old", state=JobState.FINISHED, finished_at=1.0))
    for i in range(3):
        state.put_task(make_task(f"w{i}", "web", index=None, state=TaskState.STARTED, host_id="h1"))
    ages = {"e0": 30, "e1": 120, "e2": 400, "e3": 700, "e4": 1000}  # seconds waiting
    for i, (task_id, age) in enumerate(ages.items()):
        state.put_task(make_task(task_id, "etl", index=i, created_at=NOW - age))
    backing_off = make_task("e5", "etl", index=5, created_at=NOW - 2000)
    state.put_task(replace(backing_off, ready_at=NOW + 30))  # failed, waiting for its retry delay
    state.put_task(make_task("e6", "etl", index=6, state=TaskState.LAUNCHED, host_id="h2"))
    return state


def test_overview_of_a_small_cluster() -> None:
    o = overview(cluster(), NOW, top=5)
    assert o.hosts == {"healthy": 1, "unhealthy": 1, "unreachable": 1}
    # reachable hosts only: h1 (3 x web) and h2 (1 x etl)
    assert o.resources["cpu"] == Allocation(16.0, 7.0)
    assert o.resources["memory"] == Allocation(16384.0, 3 * 1024 + 512)
    assert o.tasks == {"Accepted": 6, "Launched": 1, "Started": 3}
    assert o.jobs == {"batch": 1, "service": 1}

    q = o.queue
    assert (q.pending, q.waiting_retry) == (6, 1)
    assert q.oldest_s == 1000
    assert q.longer_than == {"60": 4, "300": 3, "600": 2, "900": 1}
    assert q.by_group == {"batchy": 6}

    assert [(b.job_id, b.running, b.pending, b.cpu, b.memory_mb) for b in o.busiest] == [
        ("web", 3, 0, 6.0, 3072),
        ("etl", 1, 6, 1.0, 512),
    ]
    assert overview(cluster(), NOW, top=1).busiest[0].job_id == "web"
    assert overview(cluster(), NOW, top=0).busiest == []


def test_an_empty_cluster() -> None:
    o = overview(ClusterState(), NOW)
    assert o.hosts == {} and o.tasks == {} and o.busiest == []
    assert o.queue.pending == 0 and o.queue.oldest_s == 0.0
    assert o.resources["cpu"] == Allocation(0.0, 0.0)
