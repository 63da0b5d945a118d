"""Trial placement onto hosts that do not exist yet: the exact shortfall of pending work.

The real scheduler (``corral.scheduler.schedule``, pack mode) places the pending tasks on a fork of the
cluster to which hypothetical hosts of a group's shape were added; the hypothetical hosts it used are
the hosts to ask for. Two stages keep the answer exact: first the hosts already on their way (asked of
a provider, not registered yet) join the fork, and only what they cannot hold is tried on new ones.

Cheapest set of groups: each group alone, and a cascade through the groups from the cheapest per unit of
capacity (each taking what it can of what is left); the option that places the most tasks, then costs
least, wins. Pure: the cluster is forked, never changed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from corral.domain.capacity import Tier
from corral.domain.hostgroup import HostGroup
from corral.scheduler import Cluster, HostSpec, Mode, PendingTask, Plan, Profile, Snapshot, schedule
from corral.scheduler.snapshot import JobClass

HYPOTHETICAL = "+"  # hypothetical host ids start with this (no agent may register such an id)
PROBED_JOBS = 20  # jobs whose left-over tasks are probed for why (one trial per job and group)
TRIAL_PROFILE = Profile({Tier.CRITICAL: Mode.PACK, Tier.FLEX: Mode.PACK})


def shape_spec(group: HostGroup, host_id: str, n: int) -> HostSpec:
    """The scheduler's view of the ``n``-th new host of ``group`` (zones round robin)."""
    shape = group.shape
    attributes = {
        **shape.attributes,
        "zone": shape.zones[n % len(shape.zones)],
        "instance_type": shape.instance_type,
        "host_group": group.name,
    }
    return HostSpec(host_id, shape.resources, attributes, shape.port_range)


def detached(cluster: Cluster) -> Cluster:
    """A fork that may also gain hosts and change what hosts are schedulable: ``fork()`` shares the host
    list and the per-host constants with its original, which adding a host would change."""
    out = cluster.fork()
    out.ids = list(cluster.ids)
    out.index = dict(cluster.index)
    out.total = cluster.total.copy()
    out.inv_total = cluster.inv_total.copy()
    out.has = cluster.has.copy()
    out.schedulable = cluster.schedulable.copy()
    out.quarantined = cluster.quarantined.copy()
    out.port_low, out.port_high = cluster.port_low.copy(), cluster.port_high.copy()
    out.attrs = {k: v.copy() for k, v in cluster.attrs.items()}
    out.codebook = {k: dict(v) for k, v in cluster.codebook.items()}
    out.addr_per_if, out.if_count = cluster.addr_per_if.copy(), cluster.if_count.copy()
    out.sg_codes = dict(cluster.sg_codes)
    return out


def add_hosts(cluster: Cluster, group: HostGroup, count: int, tag: str = "") -> list[str]:
    """Add ``count`` hypothetical hosts of ``group``'s shape to ``cluster`` (a ``detached`` copy)."""
    ids = []
    base = sum(1 for i in cluster.ids if i.startswith(f"{HYPOTHETICAL}{group.name}#"))
    for n in range(base, base + count):
        host_id = f"{HYPOTHETICAL}{group.name}#{tag}{n}"
        cluster.upsert_host(shape_spec(group, host_id, n))
        ids.append(host_id)
    return ids


def group_of(host_id: str) -> str | None:
    """The group of a hypothetical host id (None for a real host)."""
    if not host_id.startswith(HYPOTHETICAL):
        return None
    return host_id[len(HYPOTHETICAL) :].partition("#")[0]


@dataclass(frozen=True, slots=True)
class Option:
    """One way to fit the tasks: how many new hosts of each group, what it costs, what it places."""

    hosts: Mapping[str, int]
    cost: float
    placed: frozenset[str]

    @property
    def total(self) -> int:
        return sum(self.hosts.values())


@dataclass(frozen=True, slots=True)
class Shortfall:
    """The answer: new hosts per group (the chosen option), which tasks they hold, which tasks the hosts
    there and those on their way already hold, and the tasks no group's shape can hold (with why)."""

    hosts: Mapping[str, int] = field(default_factory=dict)
    cost: float = 0.0
    placed: frozenset[str] = frozenset()
    covered_by_coming: frozenset[str] = frozenset()
    unfixable: Mapping[str, str] = field(default_factory=dict)  # task id -> why no new host helps
    options: tuple[Option, ...] = ()


def _trial(
    cluster: Cluster,
    jobs: Mapping[str, JobClass],
    tasks: Sequence[PendingTask],
    now: float,
    seed: int,
) -> Plan:
    snapshot = Snapshot(now, cluster, jobs, tasks)  # no capacity groups: the caller left out group limits
    return schedule(snapshot, TRIAL_PROFILE, np.random.default_rng(seed))


def _capacity(group: HostGroup) -> float:
    r = group.shape.resources
    return max(r.cpu, 1e-9)


def shortfall(
    cluster: Cluster,
    jobs: Mapping[str, JobClass],
    tasks: Sequence[PendingTask],
    groups: Sequence[HostGroup],
    room: Mapping[str, int],
    coming: Mapping[str, int] | None = None,
    *,
    now: float = 0.0,
    seed: int = 0,
) -> Shortfall:
    """New hosts per group that let ``tasks`` run (pending, ready, not held back by a group limit).

    ``room``: how many more hosts each group may get (its max size less its hosts and those coming);
    ``coming``: hosts each group already has on the way. Each trial adds at most one hypothetical host per
    task (no task needs more than one host), so the arrays stay as small as the work."""
    coming = coming or {}
    base = detached(cluster)
    for group in groups:
        if coming.get(group.name, 0) > 0:
            add_hosts(base, group, coming[group.name], tag="c")
    # What the hosts there are and those on their way can hold is not asked for again.
    plan = _trial(base, jobs, tasks, now, seed)
    covered = frozenset(a.task_id for a in plan.assignments)
    base = _with(base, plan, jobs)
    tasks = [t for t in tasks if t.task_id not in covered]
    if not tasks:
        return Shortfall(covered_by_coming=covered)
    options: list[Option] = []
    usable = [g for g in groups if room.get(g.name, 0) > 0]
    for group in usable:
        option = _try([group], base, jobs, tasks, room, now, seed)
        if option.placed:
            options.append(option)
    by_value = sorted(usable, key=lambda g: (g.cost_per_host / _capacity(g), g.name))
    if len(by_value) > 1:
        cascade = _try(by_value, base, jobs, tasks, room, now, seed)
        if cascade.placed:
            options.append(cascade)
    if not options:
        left = list(tasks)
        return Shortfall(covered_by_coming=covered, unfixable=_why_left(base, jobs, left, groups, now, seed))
    best = min(options, key=lambda o: (-len(o.placed), o.cost, o.total, sorted(o.hosts.items())))
    left = [t for t in tasks if t.task_id not in best.placed]
    why = _why_left(base, jobs, left, groups, now, seed)
    return Shortfall(best.hosts, best.cost, best.placed, covered, why, tuple(options))


def _why_left(
    base: Cluster,
    jobs: Mapping[str, JobClass],
    left: Sequence[PendingTask],
    groups: Sequence[HostGroup],
    now: float,
    seed: int,
) -> dict[str, str]:
    """Why new hosts do not help the tasks left: no group's shape holds one (a trial per job on one
    empty host of every group's shape), or the groups whose shape would are out of room."""
    if not left:
        return {}
    out: dict[str, str] = {}
    by_job: dict[str, PendingTask] = {}
    for t in left:
        by_job.setdefault(t.job_id, t)
    for n, (job_id, sample) in enumerate(sorted(by_job.items())):
        if n >= PROBED_JOBS:  # bounded: the rest get the plain answer
            for t in left:
                out.setdefault(t.task_id, "no host group with room can hold it")
            break
        fits: list[str] = []
        for group in groups:
            cluster = detached(base)
            for i in range(cluster.size):  # only the empty host of the group's shape may take it
                cluster.schedulable[i] = False
            add_hosts(cluster, group, 1, tag="probe")
            plan = _trial(cluster, jobs, [sample], now, seed)
            if plan.assignments:
                fits.append(group.name)
        if fits:
            why = f"host group(s) {', '.join(fits)} could hold it but are at their max size"
        else:
            why = "no host group's shape can hold it (constraints or size)"
        for t in left:
            if t.job_id == job_id:
                out[t.task_id] = why
    return out


def _try(
    order: Sequence[HostGroup],
    base: Cluster,
    jobs: Mapping[str, JobClass],
    tasks: Sequence[PendingTask],
    room: Mapping[str, int],
    now: float,
    seed: int,
) -> Option:
    """Groups in ``order``, each taking what it can of what the earlier ones left."""
    cluster = detached(base)
    left = list(tasks)
    hosts: dict[str, int] = {}
    placed: set[str] = set()
    for group in order:
        if not left:
            break
        add_hosts(cluster, group, min(room.get(group.name, 0), len(left)))
        plan = _trial(cluster, jobs, left, now, seed)
        used = {a.host_id for a in plan.assignments if group_of(a.host_id) == group.name}
        if used:
            hosts[group.name] = len(used)
        done = {a.task_id for a in plan.assignments}
        placed |= done
        cluster = _with(cluster, plan, jobs)
        _close_unused(cluster, group.name, used)
        left = [t for t in left if t.task_id not in done]
    cost = sum(n * next(g.cost_per_host for g in order if g.name == name) for name, n in hosts.items())
    return Option(hosts, cost, frozenset(placed))


def _with(cluster: Cluster, plan: Plan, jobs: Mapping[str, JobClass]) -> Cluster:
    """``cluster`` (a fork) charged with ``plan``'s placements."""
    for a in plan.assignments:
        if a.footprint is not None:
            cluster.assign(cluster.index[a.host_id], a.footprint)
    return cluster


def _close_unused(cluster: Cluster, group: str, used: set[str]) -> None:
    """Hypothetical hosts of ``group`` the trial did not use are not asked for: later groups must not
    count on them."""
    prefix = f"{HYPOTHETICAL}{group}#"
    for i, host_id in enumerate(cluster.ids):
        if host_id.startswith(prefix) and host_id not in used:
            cluster.schedulable[i] = False
