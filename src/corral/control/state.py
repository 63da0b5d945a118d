"""The leader's in-memory state: jobs, tasks, hosts, and the indices the loops need.

Single-threaded by design (it lives on the master's event loop), so it takes no locks. Every change
goes through ``put_job`` / ``put_task`` / ``put_host`` so the indices and the per-host accounting
cannot drift from the records.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace

from corral.control.classes import JobClasses
from corral.control.setaside import SetAsideJobs
from corral.disruption.relocation import DrainingHost
from corral.domain.capacity import DEFAULT_GROUP, CapacityGroup, default_group
from corral.domain.host import Host
from corral.domain.hostgroup import HostGroup
from corral.domain.job import Job
from corral.domain.resources import ZERO, Resources
from corral.domain.states import TaskState
from corral.domain.task import Task
from corral.scheduler.cluster import Cluster, HostSpec, Placement


class ClusterState:
    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}
        self.tasks: dict[str, Task] = {}
        self.hosts: dict[str, Host] = {}
        self._by_job: dict[str, dict[str, None]] = {}
        self._by_host: dict[str, dict[str, None]] = {}
        self._pending: dict[str, None] = {}  # Accepted tasks, in creation order
        self._group_keys: dict[str, str] = {}
        self.cluster = Cluster()  # the scheduler's arrays, kept current with every placement
        self.groups: dict[str, CapacityGroup] = {DEFAULT_GROUP: default_group()}
        self.host_groups: dict[str, HostGroup] = {}  # configured host groups (shape, sizes, provider)
        # Hosts an operator is draining, with when and the batch deadline (kept across restarts).
        self.drained: dict[str, DrainingHost] = {}
        self.cordoned: set[str] = set()  # hosts a group drain will drain later: no new tasks meanwhile
        self._relocating: dict[str, None] = {}  # live tasks whose replacement starts elsewhere first
        self.host_images: dict[str, frozenset[str]] = {}
        self.classes = JobClasses(self.cluster)  # each job as the scheduler sees it
        self.set_aside = SetAsideJobs()  # jobs taken out of the loops after raising
        self._footprints: dict[str, Placement] = {}  # task -> what it holds on its host
        self.on_host_count = 0  # tasks placed on hosts and not finished, fleet-wide
        # Tasks whose footprint could not be charged to their host when it registered (a record written
        # by something else, say): their job is set aside by whoever registered the host.
        self.faults: list[tuple[str, BaseException]] = []
        # capacity group -> what its placed tasks hold: cpu, memory, disk, network, gpu (summed in place)
        self._usage: dict[str, list[float]] = {}

    # -- jobs -----------------------------------------------------------------------------------

    def put_job(self, job: Job) -> None:
        self.jobs[job.id] = job
        self._by_job.setdefault(job.id, {})
        key = job.descriptor.job_group_key
        if key is not None:
            if job.is_active:
                self._group_keys[key] = job.id
            elif self._group_keys.get(key) == job.id:
                del self._group_keys[key]

    def job_with_group(self, key: str) -> str | None:
        return self._group_keys.get(key)

    def drop_job(self, job_id: str) -> None:
        """Forget a finished job and its tasks (they live on in the store)."""
        for task_id in list(self._by_job.pop(job_id, {})):
            self.drop_task(task_id)
        job = self.jobs.pop(job_id, None)
        self.classes.forget(job_id)
        key = job.descriptor.job_group_key if job else None
        if key is not None and self._group_keys.get(key) == job_id:
            del self._group_keys[key]

    def tasks_of(self, job_id: str) -> list[Task]:
        return [self.tasks[t] for t in self._by_job.get(job_id, {})]

    # -- tasks ----------------------------------------------------------------------------------

    def put_task(self, task: Task, footprint: Placement | None = None) -> Task | None:
        """Store ``task``, keeping indices and host accounting right. Returns the previous record.

        ``footprint`` is what the scheduler charged when it placed the task; without it (a task loaded
        from the store, or re-registered) the same derivation is made from the task's job."""
        old = self.tasks.get(task.id)
        self.tasks[task.id] = task
        self._by_job.setdefault(task.job_id, {})[task.id] = None
        if task.relocating_to is not None and task.is_live:
            self._relocating[task.id] = None
        elif old is not None and old.relocating_to is not None:
            self._relocating.pop(task.id, None)
        if task.state is TaskState.ACCEPTED:
            self._pending[task.id] = None
        else:
            self._pending.pop(task.id, None)
        old_host = old.host_id if old is not None and old.on_host else None
        new_host = task.host_id if task.on_host else None
        if old is not None and old_host is not None and old_host != new_host:
            self._release(old, old_host)
        if new_host is not None and new_host != old_host:
            self._hold(task, new_host, footprint)
        return old

    def drop_task(self, task_id: str) -> None:
        task = self.tasks.pop(task_id, None)
        if task is None:
            return
        self._pending.pop(task_id, None)
        self._relocating.pop(task_id, None)
        if task.on_host and task.host_id is not None:
            self._release(task, task.host_id)
        by_job = self._by_job.get(task.job_id)
        if by_job is not None:
            by_job.pop(task_id, None)

    def relocating(self) -> list[Task]:
        """Live tasks being moved: their replacement starts elsewhere before they stop."""
        return [self.tasks[t] for t in self._relocating if t in self.tasks]

    def pending_tasks(self) -> Iterator[Task]:
        return (self.tasks[t] for t in self._pending)

    @property
    def pending_count(self) -> int:
        return len(self._pending)

    def tasks_on_host(self, host_id: str) -> list[Task]:
        return [self.tasks[t] for t in self._by_host.get(host_id, {})]

    def _footprint(self, task: Task) -> Placement | None:
        job = self.jobs.get(task.job_id)
        if job is None:
            return None
        return self.classes.of(job, task.version).footprint(task.ports, task.interface, task.address)

    def _hold(self, task: Task, host_id: str, footprint: Placement | None = None) -> None:
        self._by_host.setdefault(host_id, {})[task.id] = None
        self.on_host_count += 1
        if footprint is None:
            footprint = self._footprint(task)
        if footprint is None:
            return
        self._footprints[task.id] = footprint
        group = self.jobs[task.job_id].descriptor.capacity_group
        _add(self._usage.setdefault(group, [0.0] * 5), footprint.request, 1)
        h = self.cluster.index.get(host_id)
        if h is not None:  # a host not registered yet is charged when it registers
            self.cluster.assign(h, footprint)

    def _release(self, task: Task, host_id: str) -> None:
        on_host = self._by_host.get(host_id)
        if on_host is not None and on_host.pop(task.id, 0) is None:
            self.on_host_count -= 1
        footprint = self._footprints.pop(task.id, None)
        if footprint is None:
            return
        group = self.jobs[task.job_id].descriptor.capacity_group if task.job_id in self.jobs else None
        if group is not None:
            _add(self._usage.setdefault(group, [0.0] * 5), footprint.request, -1)
        h = self.cluster.index.get(host_id)
        if h is not None:
            self.cluster.release(h, footprint)

    # -- hosts ----------------------------------------------------------------------------------

    def put_host(self, host: Host) -> None:
        previous = self.hosts.get(host.id)
        self.hosts[host.id] = host
        if previous is not None and _same_for_scheduling(previous, host):
            return
        new = host.id not in self.cluster.index
        self.cluster.upsert_host(
            HostSpec(
                host_id=host.id,
                total=host.resources,
                attributes={
                    "zone": host.attributes.zone,
                    "instance_type": host.attributes.instance_type,
                    "host_group": host.attributes.host_group,
                    **host.attributes.custom,
                },
                port_range=host.port_range,
                interfaces=host.network_interfaces,
                addresses_per_interface=host.addresses_per_interface,
                schedulable=host.schedulable,
                # Charged to the quarantine in explanations only when nothing else keeps the host out.
                quarantined=host.quarantined and replace(host, quarantined_until=None).schedulable,
            )
        )
        if new:
            h = self.cluster.index[host.id]
            for task_id in self._by_host.get(host.id, {}):
                footprint = self._footprints.get(task_id)
                if footprint is None:
                    continue
                try:
                    self.cluster.assign(h, footprint)
                except Exception as e:  # that task's record is at fault, not the host: set its job aside
                    del self._footprints[task_id]
                    self.faults.append((footprint.job_id, e))

    def take_faults(self) -> list[tuple[str, BaseException]]:
        faults, self.faults = self.faults, []
        return faults

    def free(self, host: Host) -> Resources:
        h = self.cluster.index.get(host.id)
        if h is None:
            return host.resources
        cpu, memory, disk, network, gpu = (float(x) for x in self.cluster.free[:, h])
        return Resources(cpu, int(memory), int(disk), int(network), int(gpu))

    def allocated(self, host_id: str) -> Resources:
        """What the tasks on a host hold, from the task records (registered or not)."""
        total = ZERO
        for task_id in self._by_host.get(host_id, {}):
            footprint = self._footprints.get(task_id)
            if footprint is not None:
                total = total + footprint.request
        return total

    def used_ports(self, host_id: str) -> frozenset[int]:
        ports: set[int] = set()
        for task_id in self._by_host.get(host_id, {}):
            footprint = self._footprints.get(task_id)
            if footprint is not None:
                ports.update(footprint.ports)
        return frozenset(ports)

    def set_images(self, host_id: str, images: Iterable[str]) -> None:
        """What images a host has, as its agent reports them (the image-locality scorer reads them)."""
        reported = frozenset(images)
        self.host_images[host_id] = reported
        h = self.cluster.index.get(host_id)
        if h is not None:
            self.cluster.set_images(h, reported)

    def group_usage(self) -> dict[str, Resources]:
        """What each capacity group's placed tasks hold."""
        return {
            group: Resources(cpu, int(memory), int(disk), int(network), int(gpu))
            for group, (cpu, memory, disk, network, gpu) in self._usage.items()
        }

    # -- loading --------------------------------------------------------------------------------

    def load(self, jobs: Iterable[Job], tasks: Iterable[Task]) -> list[tuple[str, BaseException]]:
        """Hold what the store loaded. A job whose records cannot be held (deriving a task's footprint
        raises, say) is reported, not fatal: the caller sets it aside and the rest loads."""
        failed: dict[str, BaseException] = {}
        for job in jobs:
            try:
                self.put_job(job)
            except Exception as e:
                failed[job.id] = e
        for task in tasks:
            if task.job_id in self.jobs and task.job_id not in failed:
                try:
                    self.put_task(task)
                except Exception as e:
                    failed[task.job_id] = e
        return list(failed.items())


def _add(total: list[float], r: Resources, sign: int) -> None:
    total[0] += sign * r.cpu
    total[1] += sign * r.memory_mb
    total[2] += sign * r.disk_mb
    total[3] += sign * r.network_mbps
    total[4] += sign * r.gpu


def _same_for_scheduling(a: Host, b: Host) -> bool:
    """True when only bookkeeping (heartbeat times) differs: the cluster arrays need no update."""
    return (
        a.resources == b.resources
        and a.attributes == b.attributes
        and a.port_range == b.port_range
        and a.network_interfaces == b.network_interfaces
        and a.addresses_per_interface == b.addresses_per_interface
        and a.schedulable == b.schedulable
        and a.quarantined == b.quarantined
    )
