"""Hypothesis properties of ``schedule`` over random small fleets and workloads: it never over-commits a
host, every hard constraint holds, it is deterministic and pure, every pending task is explained
truthfully (checked by brute force against an independent model), and capacity-group limits hold."""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np
from hypothesis import given, settings

from corral.domain.capacity import DEFAULT_GROUP
from corral.scheduler import JobClass, PendingReason, Plan, Snapshot, schedule
from tests.scheduler.builders import assert_same, cluster_state
from tests.scheduler.oracle import TOLERANCE, Fleet, amounts, reason_of, switched_on
from tests.scheduler.world import World, worlds

# One random world feeds every soundness check: the bugs worth finding need rare combinations (pack
# mode, a rule switched on, room for two), so examples are better spent there than on re-generating.
SOUNDNESS = settings(max_examples=600, deadline=None)
PURITY = settings(max_examples=80, deadline=None)
ROOM_REASONS = {
    PendingReason.NO_HOSTS,
    PendingReason.NO_CAPACITY,
    PendingReason.NO_PORTS,
    PendingReason.NO_NETWORK,
    PendingReason.CONSTRAINT,
}


def run(world: World) -> tuple[Snapshot, Fleet, Plan]:
    snapshot, fleet = world.build()
    return snapshot, fleet, schedule(snapshot, world.profile, np.random.default_rng(world.seed))


def job_of(snapshot: Snapshot, task_id: str) -> JobClass:
    return next(snapshot.jobs[t.job_id] for t in snapshot.tasks if t.task_id == task_id)


def replay(snapshot: Snapshot, fleet: Fleet, plan: Plan) -> None:
    """Apply the plan to the oracle in order, checking each task against the hard rules first."""
    for a in plan.assignments:
        job = job_of(snapshot, a.task_id)
        broken = fleet.rules_broken(job, a.host_id)
        assert not broken, f"{a.task_id} on {a.host_id} breaks {broken}"
        fleet.place(a.host_id, job, a.ports, a.interface, a.address)


@SOUNDNESS
@given(worlds())
def test_plans_are_sound(world: World) -> None:
    snapshot, fleet, plan = run(world)
    check_no_host_is_over_committed(snapshot, fleet, plan)
    check_capacity_group_limits(snapshot, plan)
    check_every_task_once(snapshot, plan)
    replay(snapshot, fleet, plan)  # checks every hard rule task by task; the fleet is now after the plan
    check_every_hard_constraint(snapshot, fleet, plan)
    check_pending_tasks_have_no_feasible_host(snapshot, fleet, plan)


def check_no_host_is_over_committed(snapshot: Snapshot, fleet: Fleet, plan: Plan) -> None:
    """Requests, ports and addresses fit what the hosts had free before the plan."""
    requested: dict[str, list[float]] = defaultdict(lambda: [0.0] * 5)
    ports: dict[str, list[int]] = defaultdict(list)
    addresses: dict[str, list[tuple[int, int]]] = defaultdict(list)
    sgs: dict[tuple[str, int], set[int]] = defaultdict(set)
    for host_id, h in fleet.hosts.items():
        for interface, sg in h.bound.items():
            sgs[host_id, interface].add(sg)
    for a in plan.assignments:
        job = job_of(snapshot, a.task_id)
        requested[a.host_id] = [
            s + r for s, r in zip(requested[a.host_id], amounts(job.request), strict=True)
        ]
        assert len(a.ports) == job.ports
        ports[a.host_id] += a.ports
        if job.sg_code is None:
            assert (a.interface, a.address) == (None, None)
            continue
        assert a.interface is not None and a.address is not None
        addresses[a.host_id].append((a.interface, a.address))
        sgs[a.host_id, a.interface].add(job.sg_code)
    for host_id, h in fleet.hosts.items():  # the oracle still holds the state before the plan
        for want, free in zip(requested[host_id], h.free, strict=True):
            # A host that came back smaller may be over-full already: only what is asked for must fit.
            assert want == 0 or want <= free + TOLERANCE, f"{host_id}: {requested[host_id]} > free {h.free}"
        low, high = h.spec.port_range
        assert len(set(ports[host_id])) == len(ports[host_id])
        assert all(low <= p <= high and p not in h.used_ports for p in ports[host_id])
        held = {(i, s) for i, slots in h.slots.items() for s in slots}
        assert len(set(addresses[host_id])) == len(addresses[host_id])
        for interface, address in addresses[host_id]:
            assert 0 <= interface < h.spec.interfaces
            assert 0 <= address < h.spec.addresses_per_interface
            assert (interface, address) not in held
    for (host_id, interface), codes in sgs.items():
        assert len(codes) == 1, f"{host_id} interface {interface} holds security groups {codes}"


def check_every_hard_constraint(snapshot: Snapshot, fleet: Fleet, plan: Plan) -> None:
    for h in fleet.hosts.values():  # the replay checked each task; the end state must agree
        assert h.exclusive == 0 or h.tasks == 1, f"{h.spec.host_id} shares an exclusive task's host"
        assert h.spec.schedulable or not any(a.host_id == h.spec.host_id for a in plan.assignments)
    for job in snapshot.jobs.values():
        landed = [a.host_id for a in plan.assignments if job_of(snapshot, a.task_id) is job]
        if switched_on(job, "unique_host"):
            assert all(fleet.hosts[host_id].jobs[job.job_id] == 1 for host_id in landed)
        if switched_on(job, "zone_balance"):
            # Zones only close during an iteration, so a zone that took tasks ends at most one above any
            # zone still open, and within the cap over the zones open at the end.
            limit = fleet.zone_limit(job)
            still = {z: fleet.zone_count(job, z) for z in fleet.zones_open(job)}
            for zone in {fleet.hosts[host_id].spec.attributes["zone"] for host_id in landed}:
                count = fleet.zone_count(job, zone)
                assert count <= limit, f"{job.job_id}: {zone} above {limit}"
                assert all(count <= c + 1 for c in still.values()), f"{job.job_id}: {zone} {count}, {still}"


def check_every_task_once(snapshot: Snapshot, plan: Plan) -> None:
    ids = [a.task_id for a in plan.assignments] + [p.task_id for p in plan.pending]
    assert sorted(ids) == sorted(t.task_id for t in snapshot.tasks), "each task exactly once"
    waiting = {t.task_id for t in snapshot.tasks if t.ready_at > snapshot.now}
    assert {p.task_id for p in plan.pending if p.reason is PendingReason.NOT_READY} == waiting


def _zone_balanced(job: JobClass) -> bool:
    return switched_on(job, "zone_balance")


def check_pending_tasks_have_no_feasible_host(snapshot: Snapshot, fleet: Fleet, plan: Plan) -> None:
    """Brute force over the fleet after the plan: a task pending for want of room fits nowhere."""
    schedulable = any(h.spec.schedulable for h in fleet.hosts.values())
    for p in plan.pending:
        if p.reason not in ROOM_REASONS:
            continue
        job = job_of(snapshot, p.task_id)
        if _zone_balanced(job):
            # The one rule that loosens within an iteration: a zone that fills drops out of the zones a
            # job balances over, so a task the balance held back early may fit by the end (it is placed
            # at the next iteration). Known; see issue 13's note.
            continue
        assert fleet.feasible_hosts(job) == [], f"{p.task_id} pending ({p.reason}) but fits"
        assert (p.reason is PendingReason.NO_HOSTS) == (not schedulable)
        # Rules only ever tighten during an iteration, so the rule named still holds somewhere.
        reasons = {reason_of(rule) for host_id in fleet.hosts for rule in fleet.broken(job, host_id)}
        assert p.reason in reasons, f"{p.reason} but hosts only break {reasons}"
        assert p.hosts == len(fleet.hosts)


def check_capacity_group_limits(snapshot: Snapshot, plan: Plan) -> None:
    def group_of(job: JobClass) -> str:
        return job.group if job.group in snapshot.groups else DEFAULT_GROUP

    used: dict[str, list[float]] = defaultdict(lambda: [0.0] * 5)
    used.update({name: amounts(r) for name, r in snapshot.usage.items()})
    placed: Counter[str] = Counter()
    for a in plan.assignments:
        job = job_of(snapshot, a.task_id)
        name = group_of(job)
        used[name] = [u + r for u, r in zip(used[name], amounts(job.request), strict=True)]
        placed[name] += 1
    for name, group in snapshot.groups.items():
        if group.limit is None or not placed[name]:
            continue
        for u, cap in zip(used[name], amounts(group.limit), strict=True):
            assert cap == 0 or u <= cap + TOLERANCE, f"{name} uses {used[name]} over {group.limit}"
    for p in plan.pending:
        if p.reason is not PendingReason.GROUP_LIMIT:
            continue
        job = job_of(snapshot, p.task_id)
        held = snapshot.groups.get(group_of(job))
        assert held is not None and held.limit is not None
        assert p.message == f"capacity group `{held.name}` at its limit"
        over = [
            cap > 0 and want > 0 and u + want > cap + TOLERANCE
            for u, want, cap in zip(used[held.name], amounts(job.request), amounts(held.limit), strict=True)
        ]
        assert any(over), f"{p.task_id} held back, but {held.name} has room under {held.limit}"


@PURITY
@given(worlds())
def test_same_input_same_plan_and_the_cluster_is_untouched(world: World) -> None:
    snapshot, _ = world.build()
    before = cluster_state(snapshot.cluster)
    first = schedule(snapshot, world.profile, np.random.default_rng(world.seed))
    assert_same(before, cluster_state(snapshot.cluster))
    second = schedule(snapshot, world.profile, np.random.default_rng(world.seed))
    assert first == second
    _, _, rebuilt = run(world)
    assert rebuilt == first
