"""An independent model of the fleet for checking plans: plain Python, host by host, written from the
rules in DESIGN.md §3 rather than from the scheduler's filters, so a bug in one is not copied into the
other. ``Fleet.place`` records a task; ``Fleet.broken`` lists every hard rule one more task of a job
would break on a host."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from corral.domain.resources import Resources
from corral.scheduler import HostSpec, JobClass, PendingReason

TOLERANCE = 1e-6  # fractional cpus add up with rounding error
DIMS = ("cpu", "memory_mb", "disk_mb", "network_mbps", "gpu")
SHORT_NAMES = ("cpu", "memory", "disk", "network", "gpu")
PINNED = {"availability_zone": "zone", "instance_type": "instance_type", "host_group": "host_group"}

# The pending reason each broken rule stands for.
REASON = {
    "unschedulable": PendingReason.NO_HOSTS,
    "constraint": PendingReason.CONSTRAINT,
    "resources": PendingReason.NO_CAPACITY,
    "ports": PendingReason.NO_PORTS,
    "network": PendingReason.NO_NETWORK,
}


def amounts(r: Resources) -> list[float]:
    return [float(getattr(r, d)) for d in DIMS]


def switched_on(job: JobClass, name: str) -> bool:
    return job.hard.get(name, "").strip().lower() == "true"


@dataclass
class HostState:
    spec: HostSpec
    free: list[float]
    used_ports: set[int] = field(default_factory=set)
    slots: dict[int, set[int]] = field(default_factory=dict)  # interface -> addresses held
    bound: dict[int, int] = field(default_factory=dict)  # interface -> its security-group set, while used
    jobs: Counter[str] = field(default_factory=Counter)
    tasks: int = 0
    exclusive: int = 0

    def ports_left(self) -> list[int]:
        low, high = self.spec.port_range
        return [p for p in range(low, high + 1) if p not in self.used_ports]

    def address_for(self, sg: int) -> tuple[int, int] | None:
        """An interface bound to ``sg`` with a free address, else an unused interface; its lowest free slot."""
        per = self.spec.addresses_per_interface
        ifaces = range(self.spec.interfaces)
        shared = [i for i in ifaces if self.bound.get(i) == sg and len(self.slots.get(i, ())) < per]
        unused = [i for i in ifaces if not self.slots.get(i)]
        choice = shared or (unused if per > 0 else [])
        if not choice:
            return None
        i = choice[0]
        return i, min(set(range(per)) - self.slots.get(i, set()))


class Fleet:
    def __init__(self, specs: list[HostSpec]) -> None:
        self.hosts = {s.host_id: HostState(s, amounts(s.total)) for s in specs}

    def reregister(self, spec: HostSpec) -> None:
        """The host registers again with a new spec: what its tasks hold stays held."""
        h = self.hosts[spec.host_id]
        used = [t - f for t, f in zip(amounts(h.spec.total), h.free, strict=True)]
        h.spec = spec
        h.free = [t - u for t, u in zip(amounts(spec.total), used, strict=True)]

    def place(
        self,
        host_id: str,
        job: JobClass,
        ports: tuple[int, ...] = (),
        interface: int | None = None,
        address: int | None = None,
        exclusive: bool | None = None,
    ) -> None:
        """Record one task of ``job`` on the host (no checks: the tests check before they record)."""
        h = self.hosts[host_id]
        h.free = [f - r for f, r in zip(h.free, amounts(job.request), strict=True)]
        h.used_ports |= set(ports)
        if interface is not None and address is not None and job.sg_code is not None:
            h.slots.setdefault(interface, set()).add(address)
            h.bound[interface] = job.sg_code
        h.jobs[job.job_id] += 1
        h.tasks += 1
        h.exclusive += int(switched_on(job, "exclusive_host") if exclusive is None else exclusive)

    def static_ok(self, job: JobClass, h: HostState) -> bool:
        return not self._static_broken(job, h)

    def _static_broken(self, job: JobClass, h: HostState) -> list[str]:
        out = []
        for name, value in job.hard.items():
            if name == "host":
                ok = h.spec.host_id == value
            elif name in PINNED:
                ok = h.spec.attributes.get(PINNED[name]) == value
            elif name.startswith("attribute."):
                ok = h.spec.attributes.get(name.removeprefix("attribute.")) == value
            else:
                continue
            if not ok:
                out.append(f"constraint:{name}")
        return out

    def zones_open(self, job: JobClass) -> set[str]:
        """Zones that can hold the job: with a host one more task could go to by every rule but zone balance."""
        return {
            zone
            for host_id, h in self.hosts.items()
            if (zone := h.spec.attributes.get("zone")) is not None
            and not self._rules_but_zone(job, host_id) + self.room_broken(job, host_id)
        }

    def zone_limit(self, job: JobClass) -> int:
        """ceil(size / zones that can hold the job)."""
        return math.ceil(job.size / max(len(self.zones_open(job)), 1))

    def zone_count(self, job: JobClass, zone: str | None) -> int:
        return sum(h.jobs[job.job_id] for h in self.hosts.values() if h.spec.attributes.get("zone") == zone)

    def rules_broken(self, job: JobClass, host_id: str) -> list[str]:
        """The placement rules (not room) one more task of ``job`` on the host would break."""
        out = self._rules_but_zone(job, host_id)
        zone = self.hosts[host_id].spec.attributes.get("zone")
        if switched_on(job, "zone_balance") and zone is not None:
            # Fenzo's balance: a zone with the fewest of the job's tasks among the zones that can hold it,
            # and none above ceil(size / those zones).
            count = self.zone_count(job, zone)
            others = [self.zone_count(job, z) for z in self.zones_open(job)]
            if count >= self.zone_limit(job) or any(count > c for c in others):
                out.append("constraint:zone_balance")
        return out

    def _rules_but_zone(self, job: JobClass, host_id: str) -> list[str]:
        h = self.hosts[host_id]
        out = [] if h.spec.schedulable else ["unschedulable"]
        out += self._static_broken(job, h)
        if h.exclusive > 0 or (switched_on(job, "exclusive_host") and h.tasks > 0):
            out.append("constraint:exclusive_host")
        if switched_on(job, "unique_host") and h.jobs[job.job_id] > 0:
            out.append("constraint:unique_host")
        return out

    def room_broken(self, job: JobClass, host_id: str) -> list[str]:
        """The kinds of room (resources per dimension, ports, network) the host lacks for one more task."""
        h = self.hosts[host_id]
        out = []
        for name, free, want in zip(SHORT_NAMES, h.free, amounts(job.request), strict=True):
            if want > 0 and free < want - 1e-9:
                out.append(f"resources:{name}")
        if len(h.ports_left()) < job.ports:
            out.append("ports")
        if job.sg_code is not None and h.address_for(job.sg_code) is None:
            out.append("network")
        return out

    def broken(self, job: JobClass, host_id: str) -> list[str]:
        return self.rules_broken(job, host_id) + self.room_broken(job, host_id)

    def feasible_hosts(self, job: JobClass) -> list[str]:
        return [host_id for host_id in self.hosts if not self.broken(job, host_id)]


def reason_of(rule: str) -> PendingReason:
    return REASON[rule.split(":", 1)[0]]
