"""Why a task stays pending: each host is charged to the first filter that turns it away, and the
reason given is the filter that turned away the last hosts in reach."""

from __future__ import annotations

from corral.domain.resources import Resources
from corral.scheduler import Cluster, PendingReason, Placement
from tests.scheduler.builders import NOW, cluster_of, host, job, pending, placed, run, snapshot, tasks_of

R = PendingReason


def test_a_task_bigger_than_any_host_has_no_capacity_for_cpu() -> None:
    cluster = cluster_of([host(f"h{i}", cpu=16.0) for i in range(3)])
    p = pending(run(snapshot(cluster, [job("big", cpu=64.0)])))["big-0"]
    assert p.reason is R.NO_CAPACITY
    assert p.message.startswith("no capacity: cpu")
    assert p.rejections == {"resources:cpu": 3}
    assert p.hosts == 3


def test_the_worst_short_resource_is_named() -> None:
    cluster = cluster_of([host("h0", cpu=16.0, memory=1024), host("h1", cpu=2.0, memory=1024)])
    p = pending(run(snapshot(cluster, [job("big", cpu=4.0, memory=4096)])))["big-0"]
    assert p.reason is R.NO_CAPACITY
    assert p.message.startswith("no capacity: memory")
    assert p.rejections == {"resources:cpu": 1, "resources:memory": 2}


def test_a_zone_no_host_has_is_a_constraint() -> None:
    cluster = cluster_of([host("h0", zone="z0"), host("h1", zone="z1")])
    p = pending(run(snapshot(cluster, [job("j", hard={"availability_zone": "z9"})])))["j-0"]
    assert p.reason is R.CONSTRAINT
    assert p.message.startswith("availability_zone: 2 hosts rejected")
    assert p.rejections == {"constraint:availability_zone": 2}


def test_all_hosts_unschedulable_is_no_hosts() -> None:
    cluster = cluster_of([host("h0", schedulable=False), host("h1", schedulable=False)])
    p = pending(run(snapshot(cluster, [job("j")])))["j-0"]
    assert p.reason is R.NO_HOSTS
    assert p.rejections == {"host_unavailable": 2}


def test_a_disabled_host_is_no_hosts_too() -> None:
    cluster = cluster_of([host("h0")])
    cluster.set_schedulable("h0", False)
    assert pending(run(snapshot(cluster, [job("j")])))["j-0"].reason is R.NO_HOSTS


def test_an_empty_cluster_is_no_hosts() -> None:
    p = pending(run(snapshot(Cluster(), [job("j")])))["j-0"]
    assert (p.reason, p.message) == (R.NO_HOSTS, "no hosts have registered")


def test_the_filter_that_turned_away_the_last_hosts_in_reach_is_the_reason() -> None:
    cluster = cluster_of(
        [host("h0", schedulable=False), host("h1", zone="z1"), host("h2", cpu=2.0, zone="z0")]
    )
    p = pending(run(snapshot(cluster, [job("j", cpu=4.0, hard={"availability_zone": "z0"})])))["j-0"]
    assert p.reason is R.NO_CAPACITY
    assert p.rejections == {"host_unavailable": 1, "constraint:availability_zone": 1, "resources:cpu": 1}
    assert "1 ruled out by host_unavailable" in p.message
    assert "1 ruled out by constraint:availability_zone" in p.message


def test_capacity_taken_by_this_iteration_is_no_capacity() -> None:
    plan = run(snapshot(cluster_of([host("h0", cpu=2.0)]), [job("j", cpu=1.5, size=2)]))
    assert list(placed(plan)) == ["j-0"]
    p = pending(plan)["j-1"]
    assert p.reason is R.NO_CAPACITY
    assert p.rejections == {"resources:cpu": 1}


def holding(
    cluster: Cluster,
    h: int,
    ports: tuple[int, ...] = (),
    sg_code: int | None = None,
    interface: int | None = None,
    address: int | None = None,
) -> Cluster:
    """The cluster with another job's task on host ``h``."""
    cluster.assign(h, Placement("other", Resources(0.5, 256), ports, sg_code, interface, address))
    return cluster


def test_exhausted_ports_are_no_ports() -> None:
    cluster = holding(cluster_of([host("h0", ports=(30000, 30001))]), 0, ports=(30000, 30001))
    p = pending(run(snapshot(cluster, [job("j", ports=1)])))["j-0"]
    assert p.reason is R.NO_PORTS
    assert p.rejections == {"ports": 1}


def test_a_free_port_is_enough() -> None:
    cluster = holding(cluster_of([host("h0", ports=(30000, 30001))]), 0, ports=(30000,))
    plan = run(snapshot(cluster, [job("j", ports=1)]))
    assert [a.ports for a in plan.assignments] == [(30001,)]


def network_cluster() -> tuple[Cluster, int, int]:
    """One host with two interfaces, both bound to the ``db`` security groups."""
    cluster = cluster_of([host("h0", interfaces=2, addresses=4)])
    db, web = cluster.sg_code(["db"]), cluster.sg_code(["web"])
    holding(cluster, 0, sg_code=db, interface=0, address=0)
    holding(cluster, 0, sg_code=db, interface=1, address=0)
    return cluster, db, web


def test_interfaces_bound_to_other_security_groups_are_no_network() -> None:
    cluster, _, web = network_cluster()
    p = pending(run(snapshot(cluster, [job("j", sg_code=web)])))["j-0"]
    assert p.reason is R.NO_NETWORK
    assert p.rejections == {"network": 1}


def test_the_same_security_groups_share_a_bound_interface() -> None:
    cluster, db, _ = network_cluster()
    plan = run(snapshot(cluster, [job("j", sg_code=db, size=6)]))
    assert sorted((a.interface, a.address) for a in plan.assignments) == [
        (0, 1), (0, 2), (0, 3), (1, 1), (1, 2), (1, 3),
    ]  # fmt: skip
    assert pending(plan) == {}


def test_zone_balance_turns_away_full_zones() -> None:
    cluster = cluster_of([host("h0", zone="z0"), host("h1", zone="z1")])
    balanced = job("j", size=2, hard={"zone_balance": "true"})
    plan = run(snapshot(cluster, [balanced], tasks=tasks_of(balanced, 3)))
    assert sorted(placed(plan).values()) == ["h0", "h1"]
    p = pending(plan)["j-2"]
    assert p.reason is R.CONSTRAINT
    assert p.rejections == {"constraint:zone_balance": 2}


def test_unique_host_turns_away_hosts_holding_the_job() -> None:
    cluster = cluster_of([host("h0"), host("h1")])
    plan = run(snapshot(cluster, [job("j", size=3, hard={"unique_host": "true"})]))
    assert sorted(placed(plan).values()) == ["h0", "h1"]
    assert pending(plan)["j-2"].rejections == {"constraint:unique_host": 2}


def test_an_exclusive_task_needs_an_empty_host_and_keeps_it() -> None:
    cluster = holding(cluster_of([host("h0"), host("h1")]), 0)
    plan = run(snapshot(cluster, [job("x", hard={"exclusive_host": "true"}), job("y", created_at=1.0)]))
    assert placed(plan) == {"x-0": "h1", "y-0": "h0"}
    blocked = run(snapshot(cluster, [job("x", hard={"exclusive_host": "true"}, size=2)]))
    assert pending(blocked)["x-1"].rejections == {"constraint:exclusive_host": 2}


def test_a_task_waiting_out_a_retry_delay_is_not_ready() -> None:
    j = job("j", size=2)
    tasks = [*tasks_of(j, 1, ready_at=NOW + 5.0), *tasks_of(job("k"), 1, ready_at=NOW)]
    plan = run(snapshot(cluster_of([host("h0")]), [j, job("k")], tasks=tasks))
    assert placed(plan) == {"k-0": "h0"}
    p = pending(plan)["j-0"]
    assert (p.reason, p.message) == (R.NOT_READY, "retry delay: ready in 5.0s")
