"""The fleet as arrays: what each host has free, its attributes as integer codes, its ports and its
two-level network resource (interfaces, each bound to one security-group set while it holds addresses).

The master keeps one ``Cluster`` up to date as hosts register and tasks land and finish (``assign`` /
``release``); each scheduling iteration works on a ``fork()``, so deciding never changes the original.
Forks share what they do not change: numpy arrays are copied (cheap), per-host and per-job containers
are copied only when the fork first writes to them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from corral.domain.resources import Resources

RESOURCE_NAMES = ("cpu", "memory", "disk", "network", "gpu")
R = len(RESOURCE_NAMES)
WELL_KNOWN = ("zone", "instance_type", "host_group")
MISSING = -1  # attribute code of a host without that attribute
UNBOUND = -1  # interface holds no address, so no security-group set
ABSENT = -2  # the host has fewer interfaces than this column

# Array aliases name intent (float, integer, boolean columns); numpy's own dtype typing is too
# imprecise through arithmetic to be worth spelling out.
Floats = NDArray[Any]
Ints = NDArray[Any]
Bools = NDArray[Any]


def vector(r: Resources) -> Floats:
    return np.array([r.cpu, r.memory_mb, r.disk_mb, r.network_mbps, r.gpu], dtype=np.float64)


@dataclass(frozen=True, slots=True)
class HostSpec:
    """What the scheduler needs to know of a host."""

    host_id: str
    total: Resources
    attributes: Mapping[str, str]  # zone, instance_type, host_group and custom keys
    port_range: tuple[int, int] = (30000, 32767)
    interfaces: int = 8
    addresses_per_interface: int = 30
    schedulable: bool = True
    quarantined: bool = False  # not schedulable only because it is quarantined (for explanations)


@dataclass(frozen=True, slots=True)
class Placement:
    """One task's footprint on a host, as ``assign`` and ``release`` take it."""

    job_id: str
    request: Resources
    ports: tuple[int, ...] = ()
    sg_code: int | None = None
    interface: int | None = None
    address: int | None = None
    exclusive: bool = False
    image: str = ""


class Cluster:
    def __init__(self, capacity: int = 64, interfaces: int = 8) -> None:
        self.ids: list[str] = []
        self.index: dict[str, int] = {}
        # Resources are rows (resource x host) so each resource is one contiguous column of hosts.
        self.total = np.zeros((R, capacity))
        self.free = np.zeros((R, capacity))
        # Scoring inputs are float32: scores need no more precision, and a full scan moves half the bytes.
        # Feasibility stays on the float64 ``free``.
        self.inv_total = np.zeros((R, capacity), dtype=np.float32)  # 1 / total (0 where the host has none)
        self.has = np.zeros((R, capacity), dtype=np.float32)  # 1.0 where the host has the resource at all
        self.util = np.zeros((R, capacity), dtype=np.float32)  # share in use: has - free / total
        self.schedulable = np.zeros(capacity, dtype=bool)
        self.quarantined = np.zeros(capacity, dtype=bool)  # quarantine alone keeps it unschedulable
        self.port_low = np.zeros(capacity, dtype=np.int64)
        self.port_high = np.full(capacity, -1, dtype=np.int64)
        self.ports_free = np.zeros(capacity, dtype=np.int64)
        self.task_count = np.zeros(capacity, dtype=np.int64)
        self.exclusive = np.zeros(capacity, dtype=np.int64)
        self.exclusive_tasks = 0  # across the cluster: while 0, nobody needs the exclusive_host filter
        self.attrs: dict[str, Ints] = {k: np.full(capacity, MISSING, dtype=np.int64) for k in WELL_KNOWN}
        self.codebook: dict[str, dict[str, int]] = {k: {} for k in WELL_KNOWN}
        self.addr_per_if = np.zeros(capacity, dtype=np.int64)
        self.if_count = np.zeros(capacity, dtype=np.int64)  # interfaces the host has now
        self.if_sg = np.full((capacity, interfaces), ABSENT, dtype=np.int64)
        self.if_used = np.zeros((capacity, interfaces), dtype=np.int64)
        self.if_slots = np.zeros((capacity, interfaces), dtype=np.uint64)
        self.free_ifaces = np.zeros(capacity, dtype=np.int64)
        self.iface_addrs = np.zeros(capacity, dtype=np.int64)  # free interfaces x addresses per interface
        self.sg_codes: dict[tuple[str, ...], int] = {}
        self.sg_room: dict[int, Ints] = {}  # per security-group set: free addresses on interfaces bound to it
        self.used_ports: dict[int, frozenset[int]] = {}
        self.job_hosts: dict[str, dict[int, int]] = {}  # job -> host index -> tasks there
        self.image_hosts: dict[str, Bools] = {}  # image -> which hosts ran it
        self._owned: set[tuple[str, object]] = set()  # containers this fork may change in place
        self._shared = False

    @property
    def size(self) -> int:
        return len(self.ids)

    # -- hosts ----------------------------------------------------------------------------------

    def upsert_host(self, spec: HostSpec) -> int:
        """Add a host, or update one that registered before (its allocations are kept)."""
        h = self.index.get(spec.host_id)
        if h is None:
            h = len(self.ids)
            self._grow(h + 1, spec.interfaces)
            self.ids.append(spec.host_id)
            self.index[spec.host_id] = h
            used = np.zeros(R)
        else:
            self._grow(h + 1, spec.interfaces)
            used = self.total[:, h] - self.free[:, h]
        total = vector(spec.total)
        self.total[:, h] = total
        self.free[:, h] = total - used
        self.has[:, h] = total > 0
        self.inv_total[:, h] = np.divide(1.0, total, out=np.zeros(R), where=total > 0)
        self._utilization(h)
        self.schedulable[h] = spec.schedulable
        self.quarantined[h] = spec.quarantined and not spec.schedulable
        low, high = spec.port_range
        self.port_low[h], self.port_high[h] = low, high
        self.ports_free[h] = (high - low + 1) - len(self.used_ports.get(h, ()))
        for key, value in spec.attributes.items():
            self._attr_column(key)[h] = self.code(key, value)
        for key in self.attrs:
            if key not in spec.attributes:
                self.attrs[key][h] = MISSING
        self.addr_per_if[h] = spec.addresses_per_interface
        width = self.if_sg.shape[1]
        for i in range(width):
            if i >= spec.interfaces:
                if self.if_used[h, i] == 0:
                    self.if_sg[h, i] = ABSENT
            elif self.if_sg[h, i] == ABSENT:
                self.if_sg[h, i] = UNBOUND
        self.free_ifaces[h] = int(np.count_nonzero(self.if_sg[h] == UNBOUND))
        self.iface_addrs[h] = self.free_ifaces[h] * self.addr_per_if[h]
        self.if_count[h] = spec.interfaces
        # The host's room per security-group set, again: addresses per interface may have changed, and
        # an interface that went away while held offers no new address.
        live = np.arange(width) < spec.interfaces
        for sg in {int(s) for s in self.if_sg[h] if s >= 0}:
            used = self.if_used[h][live & (self.if_sg[h] == sg)]
            self.room(sg)[h] = int(np.maximum(spec.addresses_per_interface - used, 0).sum())
        return h

    def set_schedulable(self, host_id: str, schedulable: bool) -> None:
        h = self.index.get(host_id)
        if h is not None:
            self.schedulable[h] = schedulable

    def code(self, key: str, value: str) -> int:
        """The integer code of an attribute value (codes are stable for the life of the cluster)."""
        book = self.codebook.setdefault(key, {})
        found = book.get(value)
        if found is None:
            if self._shared:
                self.codebook[key] = book = dict(book)
            found = book[value] = len(book)
        return found

    def lookup(self, key: str, value: str) -> int | None:
        """The code of ``value`` if any host ever had it, else None (no host can match)."""
        return self.codebook.get(key, {}).get(value)

    def attribute(self, key: str) -> Ints:
        column = self.attrs.get(key)
        if column is None:
            return np.full(self.size, MISSING, dtype=np.int64)
        return column[: self.size]

    def _attr_column(self, key: str) -> Ints:
        column = self.attrs.get(key)
        if column is None:
            column = self.attrs[key] = np.full(self.total.shape[1], MISSING, dtype=np.int64)
        return column

    def sg_code(self, groups: Iterable[str]) -> int:
        key = tuple(sorted(set(groups)))
        found = self.sg_codes.get(key)
        if found is None:
            if self._shared:
                self.sg_codes = dict(self.sg_codes)
            found = self.sg_codes[key] = len(self.sg_codes)
        return found

    def _grow(self, rows: int, interfaces: int) -> None:
        cap, width = self.if_sg.shape
        new_cap = max(cap, 1)
        while new_cap < rows:
            new_cap *= 2
        new_width = max(width, interfaces)
        if new_cap == cap and new_width == width:
            return
        self.total = _resize(self.total, (R, new_cap), 0)
        self.free = _resize(self.free, (R, new_cap), 0)
        self.inv_total = _resize(self.inv_total, (R, new_cap), 0)
        self.has = _resize(self.has, (R, new_cap), 0)
        self.util = _resize(self.util, (R, new_cap), 0)
        self.schedulable = _resize(self.schedulable, (new_cap,), False)
        self.quarantined = _resize(self.quarantined, (new_cap,), False)
        self.port_low = _resize(self.port_low, (new_cap,), 0)
        self.port_high = _resize(self.port_high, (new_cap,), -1)
        self.ports_free = _resize(self.ports_free, (new_cap,), 0)
        self.task_count = _resize(self.task_count, (new_cap,), 0)
        self.exclusive = _resize(self.exclusive, (new_cap,), 0)
        self.addr_per_if = _resize(self.addr_per_if, (new_cap,), 0)
        self.if_count = _resize(self.if_count, (new_cap,), 0)
        self.free_ifaces = _resize(self.free_ifaces, (new_cap,), 0)
        self.iface_addrs = _resize(self.iface_addrs, (new_cap,), 0)
        self.if_sg = _resize(self.if_sg, (new_cap, new_width), ABSENT)
        self.if_used = _resize(self.if_used, (new_cap, new_width), 0)
        self.if_slots = _resize(self.if_slots, (new_cap, new_width), 0)
        self.attrs = {k: _resize(v, (new_cap,), MISSING) for k, v in self.attrs.items()}
        self.sg_room = {k: _resize(v, (new_cap,), 0) for k, v in self.sg_room.items()}
        self.image_hosts = {k: _resize(v, (new_cap,), False) for k, v in self.image_hosts.items()}

    # -- tasks ----------------------------------------------------------------------------------

    def _utilization(self, h: int) -> None:
        self.util[:, h] = self.has[:, h] - self.free[:, h] * self.inv_total[:, h]

    def assign(self, h: int, p: Placement, request: Floats | None = None) -> None:
        """Charge host ``h`` with a task (``request``: ``p.request`` as a vector, if the caller has it).

        One host's five numbers are worked out in plain floats: the same float64 operations as on the
        columns (``free - request``, ``has - free x inv_total`` stored as float32), at a fraction of the
        cost of numpy calls on a handful of values."""
        r = p.request
        free = self.free[:, h].tolist()
        after = [
            free[0] - r.cpu,
            free[1] - r.memory_mb,
            free[2] - r.disk_mb,
            free[3] - r.network_mbps,
            free[4] - r.gpu,
        ]
        self.free[:, h] = after
        has, inv = self.has[:, h].tolist(), self.inv_total[:, h].tolist()
        self.util[:, h] = [
            has[0] - after[0] * inv[0],
            has[1] - after[1] * inv[1],
            has[2] - after[2] * inv[2],
            has[3] - after[3] * inv[3],
            has[4] - after[4] * inv[4],
        ]
        self.task_count[h] += 1
        if p.exclusive:
            self.exclusive[h] += 1
            self.exclusive_tasks += 1
        if p.ports:
            self.used_ports[h] = self.used_ports.get(h, frozenset()) | frozenset(p.ports)
            self.ports_free[h] -= len(p.ports)
        if p.interface is not None and p.address is not None and p.sg_code is not None:
            self._take_address(h, p.interface, p.address, p.sg_code)
        hosts = self._job_counts(p.job_id)
        hosts[h] = hosts.get(h, 0) + 1
        if p.image:
            ran = self.image_hosts.get(p.image)
            if ran is None or not ran[h]:
                self._image_mask(p.image)[h] = True

    def release(self, h: int, p: Placement) -> None:
        self.free[:, h] += vector(p.request)
        self._utilization(h)
        self.task_count[h] -= 1
        if p.exclusive:
            self.exclusive[h] -= 1
            self.exclusive_tasks -= 1
        if p.ports:
            self.used_ports[h] = self.used_ports.get(h, frozenset()) - frozenset(p.ports)
            self.ports_free[h] += len(p.ports)
        if p.interface is not None and p.address is not None and p.sg_code is not None:
            self._give_address(h, p.interface, p.address, p.sg_code)
        hosts = self._job_counts(p.job_id)
        left = hosts.get(h, 0) - 1
        if left > 0:
            hosts[h] = left
        else:
            hosts.pop(h, None)
            if not hosts:
                self.job_hosts.pop(p.job_id, None)

    def _job_counts(self, job_id: str) -> dict[int, int]:
        hosts = self.job_hosts.get(job_id)
        if hosts is None:
            hosts = self.job_hosts[job_id] = {}
            self._owned.add(("job", job_id))
        elif self._shared and ("job", job_id) not in self._owned:
            hosts = self.job_hosts[job_id] = dict(hosts)
            self._owned.add(("job", job_id))
        return hosts

    def _image_mask(self, image: str) -> Bools:
        found = self.image_hosts.get(image)
        if found is None:
            found = self.image_hosts[image] = np.zeros(self.total.shape[1], dtype=bool)
            self._owned.add(("image", image))
        elif self._shared and ("image", image) not in self._owned:
            found = self.image_hosts[image] = found.copy()
            self._owned.add(("image", image))
        return found

    def set_images(self, h: int, images: frozenset[str]) -> None:
        """The images host ``h`` has now (as its agent reports them); others it no longer has."""
        for image, mask in self.image_hosts.items():
            if mask[h] and image not in images:
                self._image_mask(image)[h] = False
        for image in images:
            has = self.image_hosts.get(image)
            if has is None or not has[h]:
                self._image_mask(image)[h] = True

    def room(self, sg_code: int) -> Ints:
        """Free addresses on interfaces bound to this security-group set, per host."""
        found = self.sg_room.get(sg_code)
        if found is None:
            found = self.sg_room[sg_code] = np.zeros(self.total.shape[1], dtype=np.int64)
            self._owned.add(("sg", sg_code))
        elif self._shared and ("sg", sg_code) not in self._owned:
            found = self.sg_room[sg_code] = found.copy()
            self._owned.add(("sg", sg_code))
        return found

    def _take_address(self, h: int, i: int, slot: int, sg: int) -> None:
        live = i < self.if_count[h]  # else an interface that went away: held, but no room to count
        room = self.room(sg)
        used = int(self.if_used[h, i])
        per = int(self.addr_per_if[h])
        if used == 0:
            self.if_sg[h, i] = sg
            if live:
                self.free_ifaces[h] -= 1
                self.iface_addrs[h] -= per
                room[h] += per
        if live and used < per:  # an over-full interface has no room to lose
            room[h] -= 1
        self.if_used[h, i] = used + 1
        self.if_slots[h, i] = int(self.if_slots[h, i]) | (1 << slot)

    def _give_address(self, h: int, i: int, slot: int, sg: int) -> None:
        live = i < self.if_count[h]
        room = self.room(sg)
        self.if_used[h, i] -= 1
        self.if_slots[h, i] &= ~np.uint64(1 << slot)
        if live and self.if_used[h, i] < self.addr_per_if[h]:
            room[h] += 1
        if self.if_used[h, i] == 0:
            self.if_sg[h, i] = UNBOUND if live else ABSENT
            if live:
                self.free_ifaces[h] += 1
                self.iface_addrs[h] += self.addr_per_if[h]
                room[h] -= self.addr_per_if[h]

    # -- concrete choices -----------------------------------------------------------------------

    def pick_ports(self, h: int, count: int) -> tuple[int, ...]:
        used = self.used_ports.get(h, frozenset())
        picked: list[int] = []
        port = int(self.port_low[h])
        high = int(self.port_high[h])
        while len(picked) < count and port <= high:
            if port not in used:
                picked.append(port)
            port += 1
        return tuple(picked)

    def pick_address(self, h: int, sg: int) -> tuple[int, int] | None:
        """An interface bound to ``sg`` with a free slot (keeping interfaces free), else a free one."""
        per = int(self.addr_per_if[h])
        live = int(self.if_count[h])
        bound_to = self.if_sg[h].tolist()  # a handful of interfaces: plain Python beats numpy here
        chosen = -1
        if sg in bound_to:
            used = self.if_used[h].tolist()
            for i in range(min(live, len(bound_to))):
                if bound_to[i] == sg and used[i] < per:
                    chosen = i
                    break
        if chosen < 0:
            if UNBOUND not in bound_to or per == 0:
                return None
            chosen = bound_to.index(UNBOUND)
        slots = int(self.if_slots[h, chosen])
        slot = (~slots & (slots + 1)).bit_length() - 1  # the lowest free slot
        return (chosen, slot) if slot < per else None

    # -- forking --------------------------------------------------------------------------------

    def fork(self) -> Cluster:
        """A copy to decide on: changes to it never reach this cluster."""
        other = Cluster.__new__(Cluster)
        other.ids = self.ids
        other.index = self.index
        other.total = self.total
        other.inv_total = self.inv_total
        other.has = self.has
        other.free = self.free.copy()
        other.util = self.util.copy()
        other.schedulable = self.schedulable
        other.quarantined = self.quarantined
        other.port_low, other.port_high = self.port_low, self.port_high
        other.ports_free = self.ports_free.copy()
        other.task_count = self.task_count.copy()
        other.exclusive = self.exclusive.copy()
        other.exclusive_tasks = self.exclusive_tasks
        other.attrs = self.attrs
        other.codebook = dict(self.codebook)
        other.addr_per_if = self.addr_per_if
        other.if_count = self.if_count
        other.if_sg = self.if_sg.copy()
        other.if_used = self.if_used.copy()
        other.if_slots = self.if_slots.copy()
        other.free_ifaces = self.free_ifaces.copy()
        other.iface_addrs = self.iface_addrs.copy()
        other.sg_codes = self.sg_codes
        other.sg_room = dict(self.sg_room)
        other.used_ports = dict(self.used_ports)
        other.job_hosts = dict(self.job_hosts)
        other.image_hosts = dict(self.image_hosts)
        other._owned = set()
        other._shared = True
        return other


def _resize(a: NDArray[Any], shape: tuple[int, ...], fill: object) -> NDArray[Any]:
    out = np.full(shape, fill, dtype=a.dtype)
    out[tuple(slice(0, s) for s in a.shape)] = a
    return out
