"""Per-class working state for one iteration: the request as a vector, the constraint masks that do
not change while the class is placed, and the job's own counts per host and per zone (kept current as
its tasks land). Computed once per class — the equivalence-class saving."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from corral.domain.constraints import ATTRIBUTE_PREFIX, ConstraintName, is_enabled
from corral.scheduler.cluster import Bools, Cluster, Floats, Ints
from corral.scheduler.snapshot import JobClass

EPS = 1e-9

# Constraints that compare a host attribute with the constraint's value.
ATTRIBUTE_CONSTRAINTS = {
    ConstraintName.AVAILABILITY_ZONE: "zone",
    ConstraintName.INSTANCE_TYPE: "instance_type",
    ConstraintName.HOST_GROUP: "host_group",
}


def attribute_mask(cluster: Cluster, name: str, value: str) -> Bools | None:
    """Hosts whose attribute matches a static constraint, or None if ``name`` is not such a constraint."""
    n = cluster.size
    if name == ConstraintName.HOST:
        mask = np.zeros(n, dtype=bool)
        h = cluster.index.get(value)
        if h is not None:
            mask[h] = True
        return mask
    key = ATTRIBUTE_CONSTRAINTS.get(ConstraintName(name)) if name in ATTRIBUTE_CONSTRAINTS else None
    if key is None and name.startswith(ATTRIBUTE_PREFIX):
        key = name[len(ATTRIBUTE_PREFIX) :]
    if key is None:
        return None
    code = cluster.lookup(key, value)
    if code is None:
        return np.zeros(n, dtype=bool)
    matches: Bools = cluster.attribute(key) == code
    return matches


_EMPTY_INTS: Ints = np.zeros(0, dtype=np.int64)
_EMPTY_BOOLS: Bools = np.zeros(0, dtype=bool)
_EMPTY_FLOATS: Floats = np.zeros(0)


@dataclass(slots=True)
class ClassContext:
    cls: JobClass
    cluster: Cluster
    req: Floats
    dims: list[int]  # the resources the class asks for (> 0)
    static: Bools  # schedulable and every hard attribute constraint
    static_masks: dict[str, Bools]  # each hard attribute constraint on its own (for explanations)
    soft_static: list[Bools]  # each soft attribute constraint
    unique: bool = False
    exclusive: bool = False
    zone_balance: bool = False
    soft_unique: bool = False
    soft_exclusive: bool = False
    soft_zone_balance: bool = False
    zone_limit: int = 0  # no zone holds more of the job than ceil(size / zones that can hold the class)
    zone_least: int = 0  # the fewest of the job's tasks in a zone that can hold the class (see ``zones.py``)
    job_spread: bool = False  # the profile scores job spreading over hosts
    # Empty until build_context fills them (shared read-only empties: building a context is hot).
    zone: Ints = field(default_factory=lambda: _EMPTY_INTS)
    zone_count: Ints = field(default_factory=lambda: _EMPTY_INTS)
    # Zones that can hold the class: here those with a host its constraints allow; the placement narrows
    # them to those with a host it may take now (``zones.py``).
    zone_live: Bools = field(default_factory=lambda: _EMPTY_BOOLS)
    job_on_host: Ints = field(default_factory=lambda: _EMPTY_INTS)
    image: Bools | None = None
    # The request as plain floats: numpy float64 scalars would widen the float32 score columns.
    amount: list[float] = field(default_factory=list)
    # Per resource, the least a host must have free to take one task (-inf where the class asks for none).
    need: Floats = field(default_factory=lambda: _EMPTY_FLOATS)

    @property
    def zone_dependent(self) -> bool:
        return self.zone_balance or self.soft_zone_balance

    def net_capacity(self, sel: slice | Ints) -> Ints:
        """How many more addresses for this class's security groups each host can give."""
        c = self.cluster
        free_ifaces: Ints = c.iface_addrs[sel]
        if self.cls.sg_code is None:
            return np.full(np.shape(free_ifaces), 1 << 30, dtype=np.int64)
        room = c.sg_room.get(self.cls.sg_code)
        return free_ifaces if room is None else free_ifaces + room[sel]

    @property
    def job_dependent(self) -> bool:
        """Whether the class's rules or scores depend on where the job's own tasks are."""
        return self.unique or self.soft_unique or self.job_spread

    def place_one(self, h: int) -> None:
        if self.job_dependent:
            if not self.job_on_host.flags.writeable:  # the shared zeros: this job's first task lands
                self.job_on_host = np.zeros(len(self.job_on_host), dtype=np.int64)  # (fresh zeros are cheap)
            self.job_on_host[h] += 1
        if self.zone.size:
            z = self.zone[h]
            if z >= 0:
                self.zone_count[z] += 1


_ZEROS: list[Ints] = [np.zeros(0, dtype=np.int64)]


def _zeros(n: int) -> Ints:
    if len(_ZEROS[0]) < n:
        zeros = np.zeros(max(n, 2 * len(_ZEROS[0])), dtype=np.int64)
        zeros.flags.writeable = False
        _ZEROS[0] = zeros
    return _ZEROS[0][:n]


def _mask(
    cluster: Cluster, name: str, value: str, masks: dict[tuple[str, str], Bools | None] | None
) -> Bools | None:
    """``attribute_mask``, looked up in ``masks`` (one iteration's, for one cluster) before it is worked out:
    many classes pin the same zone or instance type, and the hosts' attributes hold for the iteration."""
    if masks is None:
        return attribute_mask(cluster, name, value)
    key = (name, value)
    if key not in masks:
        masks[key] = attribute_mask(cluster, name, value)
    return masks[key]


def _zone_live(
    cluster: Cluster,
    cls: JobClass,
    static: Bools,
    names: list[str],
    masks: dict[tuple[str, str], Bools | None] | None,
) -> Bools:
    """The zones with a host the class's constraints allow (``names``: the hard ones that narrowed
    ``static``). The same for every class pinned the same way: looked up in ``masks`` when given."""
    key = ("zone_live", ";".join(sorted(f"{name}={cls.hard[name]}" for name in names)))
    found = None if masks is None else masks.get(key)
    if found is None:
        zone = cluster.attribute("zone")
        zones = max(len(cluster.codebook.get("zone", {})), 1)
        found = np.bincount(zone[(zone >= 0) & static], minlength=zones) > 0
        if masks is not None:
            masks[key] = found
    return found


def build_context(
    cluster: Cluster,
    cls: JobClass,
    *,
    need_zones: bool,
    job_spread: bool = False,
    masks: dict[tuple[str, str], Bools | None] | None = None,
) -> ClassContext:
    """The class's context. ``masks``: attribute masks already worked out on this cluster (filled in)."""
    n = cluster.size
    r = cls.request
    amount = [float(r.cpu), float(r.memory_mb), float(r.disk_mb), float(r.network_mbps), float(r.gpu)]
    req = np.array(amount)  # as ``vector(cls.request)``, built once from the plain floats
    static = cluster.schedulable[:n]  # a view; copied below only if a constraint narrows it
    static_masks: dict[str, Bools] = {}
    dims = [d for d, a in enumerate(amount) if a > 0]
    ctx = ClassContext(cls, cluster, req, dims, static, static_masks, [])
    ctx.amount = amount
    ctx.need = np.array([a - EPS if a > 0 else -math.inf for a in amount])
    ctx.job_spread = job_spread
    for name, value in cls.hard.items():
        mask = _mask(cluster, name, value, masks)
        if mask is not None:
            static_masks[name] = mask
            static = static & mask
            ctx.static = static
        elif name == ConstraintName.UNIQUE_HOST:
            ctx.unique = is_enabled(value)
        elif name == ConstraintName.EXCLUSIVE_HOST:
            ctx.exclusive = is_enabled(value)
        elif name == ConstraintName.ZONE_BALANCE:
            ctx.zone_balance = is_enabled(value)
    for name, value in cls.soft.items():
        mask = _mask(cluster, name, value, masks)
        if mask is not None:
            ctx.soft_static.append(mask)
        elif name == ConstraintName.UNIQUE_HOST:
            ctx.soft_unique = is_enabled(value)
        elif name == ConstraintName.EXCLUSIVE_HOST:
            ctx.soft_exclusive = is_enabled(value)
        elif name == ConstraintName.ZONE_BALANCE:
            ctx.soft_zone_balance = is_enabled(value)
    placed = cluster.job_hosts.get(cls.job_id)
    if placed:
        counts = np.zeros(n, dtype=np.int64)
        counts[list(placed)] = list(placed.values())
    else:
        counts = _zeros(n)  # most classes have no task placed yet: share one read-only array
    ctx.job_on_host = counts
    if need_zones or ctx.zone_dependent:
        zone = cluster.attribute("zone")
        zones = max(len(cluster.codebook.get("zone", {})), 1)
        ctx.zone = zone
        if placed:
            known = zone >= 0
            ctx.zone_count = np.bincount(zone[known], weights=counts[known], minlength=zones).astype(np.int64)
        else:
            ctx.zone_count = np.zeros(zones, dtype=np.int64)
        ctx.zone_live = _zone_live(cluster, cls, static, list(static_masks), masks)
        live = max(int(ctx.zone_live.sum()), 1)
        ctx.zone_limit = math.ceil(cls.size / live)
        ctx.zone_least = int(ctx.zone_count[ctx.zone_live].min()) if ctx.zone_live.any() else 0
    if cls.image:
        ran = cluster.image_hosts.get(cls.image)
        if ran is not None:
            ctx.image = ran[:n]
    return ctx
