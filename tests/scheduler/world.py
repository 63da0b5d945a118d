"""Hypothesis strategies for random small worlds: a heterogeneous fleet (some tasks already running on
it), a workload of jobs with random constraints, capacity groups and a profile. ``World.build`` gives
the snapshot to schedule and an oracle ``Fleet`` in the same state."""

from __future__ import annotations

from dataclasses import dataclass, replace

from hypothesis import strategies as st

from corral.domain.capacity import CapacityGroup, Tier
from corral.domain.resources import Resources
from corral.scheduler import (
    Cluster,
    HostSpec,
    JobClass,
    Mode,
    PendingTask,
    Placement,
    Profile,
    Snapshot,
)
from tests.scheduler.oracle import Fleet, amounts

NOW = 100.0
ZONES = ("z0", "z1", "z2")
TYPES = ("m5", "c5", "r5")
HOST_GROUPS = ("web", "batch")
RACKS = ("r1", "r2")
RULES = ("unique_host", "exclusive_host", "zone_balance")
SG_SETS = (("web",), ("db",), ("db", "web"))  # registered in this order: code i is SG_SETS[i]
IMAGES = ("", "img:a", "img:b")
GROUP_NAMES = ("g0", "g1", "default")
JOB_GROUPS = (*GROUP_NAMES, "ghost")  # ``ghost`` names no group: served as the default group


@dataclass(frozen=True)
class Resident:
    """A task on a host before the iteration (skipped at build time if it would not fit)."""

    host: int
    job_id: str
    share: float  # of the host's cpu and memory
    ports: int
    sg: int | None
    exclusive: bool
    image: str


@dataclass(frozen=True)
class World:
    specs: tuple[HostSpec, ...]
    residents: tuple[Resident, ...]
    updates: tuple[HostSpec, ...]  # hosts registering again, with their tasks on them
    jobs: tuple[JobClass, ...]
    tasks: tuple[PendingTask, ...]
    groups: tuple[CapacityGroup, ...]
    usage: tuple[tuple[str, Resources], ...]
    profile: Profile
    seed: int

    def build(self) -> tuple[Snapshot, Fleet]:
        cluster = Cluster()
        for spec in self.specs:
            cluster.upsert_host(spec)
        codes = [cluster.sg_code(s) for s in SG_SETS]
        if codes != list(range(len(SG_SETS))):
            raise AssertionError(f"security-group codes not assigned in order: {codes}")
        fleet = Fleet(list(self.specs))
        for r in self.residents:
            _settle(cluster, fleet, self.specs[r.host], r)
        for spec in self.updates:
            cluster.upsert_host(spec)
            fleet.reregister(spec)
        snapshot = Snapshot(
            NOW,
            cluster,
            {j.job_id: j for j in self.jobs},
            self.tasks,
            {g.name: g for g in self.groups},
            dict(self.usage),
        )
        return snapshot, fleet


def _settle(cluster: Cluster, fleet: Fleet, spec: HostSpec, r: Resident) -> None:
    host = fleet.hosts[spec.host_id]
    total = spec.total
    request = Resources(round(total.cpu * r.share, 3), int(total.memory_mb * r.share))
    job = JobClass(r.job_id, "default", request, ports=r.ports, sg_code=r.sg, image=r.image)
    if any(f < want for f, want in zip(host.free, amounts(request), strict=True)):
        return
    if host.exclusive or (r.exclusive and host.tasks) or len(host.ports_left()) < r.ports:
        return
    spot = host.address_for(r.sg) if r.sg is not None else None
    if r.sg is not None and spot is None:
        return
    interface, address = spot if spot is not None else (None, None)
    ports = tuple(host.ports_left()[: r.ports])
    placement = Placement(r.job_id, request, ports, r.sg, interface, address, r.exclusive, r.image)
    cluster.assign(cluster.index[spec.host_id], placement)
    fleet.place(spec.host_id, job, ports, interface, address, r.exclusive)


@st.composite
def host_specs(draw: st.DrawFn, i: int, zones: tuple[str, ...]) -> HostSpec:
    total = Resources(
        draw(st.sampled_from([1.0, 2.0, 3.5, 4.0, 8.0, 16.0])),
        draw(st.sampled_from([1024, 4096, 16384])),
        draw(st.sampled_from([2000, 20000])),
        draw(st.sampled_from([100, 1000])),
        draw(st.sampled_from([0, 0, 1, 2])),
    )
    attributes = {"zone": draw(st.sampled_from(zones)), "instance_type": draw(st.sampled_from(TYPES))}
    for key, values in (("host_group", HOST_GROUPS), ("rack", RACKS), ("ssd", ("yes", "no"))):
        value = draw(st.sampled_from((None, *values)))
        if value is not None:
            attributes[key] = value
    ports = draw(st.integers(1, 4))
    return HostSpec(
        f"h{i}",
        total,
        attributes,
        port_range=(30000, 30000 + ports - 1),
        interfaces=draw(st.sampled_from([0, 1, 2, 2, 3, 3])),
        addresses_per_interface=draw(st.integers(1, 4)),
        schedulable=draw(st.sampled_from([True, True, True, True, False])),
    )


CONSTRAINT_VALUES: dict[str, tuple[str, ...]] = {
    "unique_host": ("true", "True", "false"),
    "exclusive_host": ("true", "false"),
    "zone_balance": ("true", " TRUE "),
    "availability_zone": (*ZONES, "z9"),
    "instance_type": TYPES,
    "host_group": HOST_GROUPS,
    "attribute.rack": (*RACKS, "r9"),
    "attribute.ssd": ("yes", "no"),
}


@st.composite
def constraints(draw: st.DrawFn, host_ids: list[str], most: int) -> dict[str, str]:
    options = {**CONSTRAINT_VALUES, "host": (*host_ids, "h-gone")}
    # The placement rules come up twice as often as any one attribute: they are where the subtle bugs hide.
    names = draw(st.lists(st.sampled_from([*sorted(options), *RULES]), unique=True, max_size=most))
    return {name: draw(st.sampled_from(options[name])) for name in names}


@st.composite
def job_classes(draw: st.DrawFn, job_id: str, host_ids: list[str]) -> JobClass:
    request = Resources(
        draw(st.sampled_from([0.1, 0.25, 0.5, 1.0, 1.5, 2.5, 4.0])),
        draw(st.sampled_from([0, 128, 512, 2048])),
        draw(st.sampled_from([0, 500, 5000])),
        draw(st.sampled_from([0, 10, 100])),
        draw(st.sampled_from([0, 0, 0, 1])),
    )
    return JobClass(
        job_id,
        draw(st.sampled_from(JOB_GROUPS)),
        request,
        created_at=float(draw(st.integers(0, 5))),
        ports=draw(st.sampled_from([0, 0, 1, 2])),
        sg_code=draw(st.sampled_from([None, 0, 1, 2])),
        image=draw(st.sampled_from(IMAGES)),
        size=draw(st.integers(1, 8)),
        hard=draw(constraints(host_ids, 2)),
        soft=draw(constraints(host_ids, 2)),
    )


def resources(cpu: list[float], memory: list[int]) -> st.SearchStrategy[Resources]:
    return st.builds(Resources, st.sampled_from(cpu), st.sampled_from(memory))


@st.composite
def capacity_groups(draw: st.DrawFn, name: str) -> CapacityGroup:
    limit = draw(
        st.sampled_from([None, None, Resources()]) | resources([0.0, 1.0, 2.5, 6.0], [0, 1024, 8192])
    )
    return CapacityGroup(
        name, draw(st.sampled_from(Tier)), draw(resources([0.0, 2.0, 8.0], [0, 4096])), limit
    )


@st.composite
def worlds(draw: st.DrawFn) -> World:
    zones = ZONES[: draw(st.integers(1, 3))]
    specs = tuple(draw(host_specs(i, zones)) for i in range(draw(st.integers(1, 12))))
    host_ids = [s.host_id for s in specs]
    jobs = tuple(draw(job_classes(f"j{i}", host_ids)) for i in range(draw(st.integers(1, 6))))
    resident = st.builds(
        Resident,
        st.integers(0, len(specs) - 1),
        st.sampled_from([j.job_id for j in jobs] + ["other"]),
        st.sampled_from([0.25, 0.5]),
        st.integers(0, 2),
        st.sampled_from([None, 0, 1, 2]),
        st.booleans(),
        st.sampled_from(IMAGES),
    )
    tasks = []
    for job in jobs:
        for i in range(draw(st.just(job.size) | st.integers(1, job.size))):
            ready_at = draw(st.sampled_from([*[0.0] * 5, NOW, NOW + 0.5, NOW + 30.0]))
            tasks.append(PendingTask(f"{job.job_id}-{i}", job.job_id, ready_at, (job.created_at, i)))
    names = draw(st.lists(st.sampled_from(GROUP_NAMES), unique=True))
    # A host may come back with other resources, attributes and interfaces while its tasks run. Not with
    # another port range: ports held outside the new range are knowingly counted as used (conservative).
    again = draw(st.lists(st.integers(0, len(specs) - 1), unique=True, max_size=3))
    updates = tuple(replace(draw(host_specs(i, zones)), port_range=specs[i].port_range) for i in again)
    modes = st.sampled_from(Mode)
    return World(
        specs,
        tuple(draw(st.lists(resident, max_size=2 * len(specs)))),
        updates,
        jobs,
        tuple(draw(st.permutations(tasks))),
        tuple(draw(capacity_groups(name)) for name in names),
        tuple((name, draw(resources([0.0, 0.5, 2.0], [0, 512]))) for name in GROUP_NAMES),
        Profile().with_mode(Tier.CRITICAL, draw(modes)).with_mode(Tier.FLEX, draw(modes)),
        draw(st.integers(0, 2**32 - 1)),
    )
