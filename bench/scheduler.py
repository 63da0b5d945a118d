"""The scheduler's pure core on synthetic fleets: ``schedule(snapshot, profile, rng) -> Plan`` in a loop,
fed the way the master feeds it (a batch of pending tasks per iteration, the plan applied to the
cluster before the next one). Only the ``schedule()`` calls are timed; generating the workload,
building snapshots and applying plans are not.

Prints one JSON line per scenario on stdout (medians over ``--runs`` runs with different seeds; with
``--verbose`` also one line per run), progress on stderr. The collector runs with the master's thresholds
(``corral.cli.servers.tune_gc``; ``--default-gc`` keeps Python's, ~10 % slower on the worst case):

    python bench/scheduler.py                        # every scenario, 3 runs each
    python bench/scheduler.py --scenario large --runs 5
    python bench/scheduler.py --quick --runs 1       # small sizes: a smoke run (tests use it)

Scenarios:
    hetero_5000             5,000 hosts of six instance types (one with 4 GPUs), 3 zones, racks; jobs
                            log-uniform in 1-1000 tasks, fractional cpu, 20 % with constraints, 30 % with
                            ports, 20 security-group sets; filled to ~70 % of fleet cpu in iterations of
                            whole jobs totalling >= 1,000 tasks. Pack mode.
    hetero_5000_spread      the same workload in spread mode.
    identical_5000          5,000 x (16 cpu, 64 GB); 20 jobs x 2,500 tasks of (1 cpu, 2 GB), one job per
                            iteration. Pack mode. Target: >= 50,000 placements/s.
    iter200_10000_mixed     10,000 heterogeneous hosts pre-loaded to ~50 % cpu (untimed warm-up), then 50
                            iterations of 200 tasks from the hetero job mix. Target: p50 <= 15 ms.
    iter200_10000_distinct  the worst case of the same: every task is its own job, so every iteration
                            places 200 one-task classes, each scored over all 10,000 hosts.
                            Target: p50 <= 8 ms (``us_per_class``: p50 over the classes per iteration).
    small_mix_pack          1,000 x (16 cpu, 64 GB); tasks of 0.25-2 cpu (4 GB per cpu) to ~75 % of the
                            fleet's cpu. Target: packing_ratio <= 1.03.
    large                   the issue's "large" scenario: 2,000 x (16 cpu, 64 GB) filled with random 1-, 3-
                            and 6-cpu jobs (4 GB per cpu) until an iteration places nothing.
                            Targets: packing_ratio <= 1.06 and cpu_allocated_pct >= 97.
    large_75_stream         the same fleet and task mix to only ~75 % of its cpu, arriving in iterations
                            of >= 1,000 tasks. No target: how close online packing gets to the bound
                            depends on the order jobs arrive in (a 6-cpu pair leaves a 4-cpu hole that
                            only later small tasks can fill), so its ratio swings between seeds.

Feeding: tasks an iteration leaves pending stay queued for the next one, as in the master (except in
the iter200 scenarios, where each iteration is exactly its 200 new tasks and leftovers are dropped).
Every task carries a security-group set, so takes an interface address (20 sets in the hetero mix, one
shared set elsewhere). The hetero mix also has a few GPU jobs (1 %, at most 32 tasks, 1-2 GPUs each).

Definitions (all measured on the cluster after the run, warm-up included):
    placements_per_s    total placements / total time inside schedule() (warm-up excluded).
    iteration_ms_p50/99 percentiles of the per-iteration schedule() times of one run.
    hosts_used          hosts holding >= 1 task.
    lower_bound_hosts   for each resource with demand D (the sum of what placed tasks hold), the smallest
                        k such that the k hosts largest in that resource together have >= D; the max over
                        resources. For identical hosts this is ceil(max_r D_r / capacity_r). No placement
                        can use fewer hosts, so hosts_used >= lower_bound_hosts always.
    packing_ratio       hosts_used / lower_bound_hosts (1.0 is perfect).
    cpu_allocated_pct   allocated cpu / total fleet cpu * 100.
    pending             tasks still queued after the last iteration (iter200: tasks left, summed).
    classes             job classes the iterations scheduled (a job queued in k iterations counts k times).
    us_per_class        iteration_ms_p50 / (classes / iterations): what one class costs in a typical
                        iteration (iter200 only).
    violations          broken invariants found by checking the final cluster: over-committed hosts,
                        duplicate ports or addresses, hard constraints not honoured (should be 0).
    zone_balance_uneven jobs with hard zone_balance whose tasks end two or more apart across the zones
                        that have room for them now (0 unless a repacking pass opened room afterwards).

Summary lines report the median of each number over the runs, each number on its own (so
``packing_ratio`` is the median of the runs' ratios, not the ratio of the medians); ``pending_reasons``
is from the first run. ``target`` names the scenario's goal, and ``target_met`` says whether the
median met it.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import statistics
import sys
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from corral.cli.servers import tune_gc
from corral.domain.capacity import Tier
from corral.domain.resources import Resources
from corral.scheduler import (
    Assignment,
    Cluster,
    HostSpec,
    JobClass,
    Mode,
    PendingTask,
    Placement,
    Profile,
    Snapshot,
    schedule,
)
from corral.scheduler.cluster import ABSENT, UNBOUND

GB = 1024
PACK_PROFILE = Profile()
SPREAD_PROFILE = Profile().with_mode(Tier.FLEX, Mode.SPREAD)

# name, cpu, memory GB, disk GB, network Mbps, gpu, share of the fleet
INSTANCE_TYPES = (
    ("m5.xlarge", 4, 16, 200, 2500, 0, 0.20),
    ("m5.2xlarge", 8, 32, 400, 5000, 0, 0.25),
    ("m5.4xlarge", 16, 64, 800, 10000, 0, 0.25),
    ("r5.2xlarge", 8, 64, 400, 5000, 0, 0.12),
    ("c5.4xlarge", 16, 32, 800, 10000, 0, 0.15),
    ("p3.8xlarge", 32, 244, 1000, 10000, 4, 0.03),
)
ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")
HOSTS_PER_RACK = 40
SG_SETS = 20
CPU_CHOICES = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
CPU_WEIGHTS = (0.2, 0.25, 0.25, 0.15, 0.1, 0.05)
MEMORY_PER_CPU_MB = (1024, 2048, 4096, 6144)
DISK_PER_CPU_GB = (2, 5, 10, 20)


# -- fleets -----------------------------------------------------------------------------------------


def hetero_fleet(rng: np.random.Generator, hosts: int) -> Cluster:
    cluster = Cluster(capacity=hosts)
    shares = np.array([t[-1] for t in INSTANCE_TYPES])
    kinds = rng.choice(len(INSTANCE_TYPES), size=hosts, p=shares / shares.sum())
    zones = rng.integers(len(ZONES), size=hosts)
    racks: Counter[int] = Counter()
    for i in range(hosts):
        name, cpu, mem, disk, net, gpu, _ = INSTANCE_TYPES[kinds[i]]
        z = int(zones[i])
        rack = racks[z] // HOSTS_PER_RACK
        racks[z] += 1
        cluster.upsert_host(
            HostSpec(
                f"h{i:05d}",
                Resources(float(cpu), mem * GB, disk * GB, net, gpu),
                {
                    "zone": ZONES[z],
                    "instance_type": name,
                    "host_group": name.split(".")[0],
                    "rack": f"{ZONES[z]}-r{rack:03d}",
                },
                port_range=(30000, 32767),
                interfaces=8,
                addresses_per_interface=30,
            )
        )
    return cluster


def identical_fleet(hosts: int, cpu: int = 16, memory_gb: int = 64) -> Cluster:
    cluster = Cluster(capacity=hosts)
    for i in range(hosts):
        cluster.upsert_host(
            HostSpec(
                f"h{i:05d}",
                Resources(float(cpu), memory_gb * GB, 1000 * GB, 10000, 0),
                {"zone": ZONES[i % len(ZONES)], "instance_type": "m5.4xlarge", "host_group": "m5"},
            )
        )
    return cluster


# -- workloads --------------------------------------------------------------------------------------


# Security-group sets: 1-3 groups each, drawn from 31 groups.
SG_GROUPS = [tuple(f"sg-{(i * 7 + k) % 31:02d}" for k in range(1 + i % 3)) for i in range(SG_SETS)]


def log_uniform_size(rng: np.random.Generator, high: int) -> int:
    return max(1, min(high, round(math.exp(rng.uniform(0.0, math.log(high))))))


class JobMaker:
    """Numbers jobs so their ids and created_at give the queue a stable order."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.count = 0

    def make(self, size: int, request: Resources, **kw: object) -> JobClass:
        i = self.count
        self.count += 1
        return JobClass(f"{self.prefix}{i:06d}", "default", request, float(i), size=size, **kw)


def hetero_job(
    rng: np.random.Generator, maker: JobMaker, cluster: Cluster, max_size: int, size: int | None = None
) -> JobClass:
    if size is None:
        size = log_uniform_size(rng, max_size)
    gpu = 0
    if rng.random() < 0.01:  # a GPU job (only one instance type has GPUs): small, 1-2 GPUs a task
        size = min(size, 32)
        gpu = int(rng.integers(1, 3))
        cpu, memory = 4.0 * gpu, 16 * GB * gpu
    else:
        cpu = float(rng.choice(CPU_CHOICES, p=CPU_WEIGHTS))
        per_cpu = int(rng.choice(MEMORY_PER_CPU_MB))
        memory = int(min(32 * GB, max(256, cpu * per_cpu * rng.uniform(0.8, 1.2))))
    disk = int(max(512, cpu * int(rng.choice(DISK_PER_CPU_GB)) * GB))
    network = int(cpu * rng.uniform(25, 150))
    request = Resources(cpu, memory, disk, network, gpu)
    ports = int(rng.integers(1, 5)) if rng.random() < 0.3 else 0
    groups = SG_GROUPS[int(rng.integers(SG_SETS))]
    image = f"registry/app{int(rng.integers(300)):03d}:v{int(rng.integers(3))}"
    hard: dict[str, str] = {}
    soft: dict[str, str] = {}
    if rng.random() < 0.2:
        fitting = [
            t[0] for t in INSTANCE_TYPES if t[1] >= cpu and t[2] * GB >= memory and t[5] >= gpu and t[1] >= 8
        ]
        kind = int(rng.integers(8))
        if kind == 0:
            hard["unique_host"] = "true"
        elif kind == 1:
            hard["zone_balance"] = "true"
        elif kind == 2:
            hard["availability_zone"] = str(rng.choice(ZONES))
        elif kind == 3 and fitting:
            hard["instance_type"] = str(rng.choice(fitting))
        elif kind == 4:
            hard["unique_host"] = hard["zone_balance"] = "true"
        elif kind == 5:
            soft["unique_host"] = "true"
        elif kind == 6:
            soft["zone_balance"] = "true"
        elif fitting:
            soft["instance_type"] = str(rng.choice(fitting))
    return maker.make(
        size,
        request,
        ports=ports,
        sg_code=cluster.sg_code(groups),
        image=image,
        hard=hard,
        soft=soft,
    )


def fill(jobs: Iterator[JobClass], target_cpu: float) -> list[JobClass]:
    """Jobs until their cpu reaches ``target_cpu`` (the last one cut to land on it)."""
    out: list[JobClass] = []
    total = 0.0
    for job in jobs:
        room = math.ceil((target_cpu - total) / job.request.cpu - 1e-9)
        if room <= 0:
            break
        if job.size > room:
            job = dataclasses.replace(job, size=room)
        out.append(job)
        total += job.request.cpu * job.size
    return out


def batches(jobs: list[JobClass], at_least: int) -> Iterator[list[JobClass]]:
    """Whole jobs, in order, totalling >= ``at_least`` tasks per batch (the last batch: the rest)."""
    batch: list[JobClass] = []
    count = 0
    for job in jobs:
        batch.append(job)
        count += job.size
        if count >= at_least:
            yield batch
            batch, count = [], 0
    if batch:
        yield batch


def fleet_cpu(cluster: Cluster) -> float:
    return float(cluster.total[0, : cluster.size].sum())


# -- the loop ---------------------------------------------------------------------------------------


@dataclass
class Feed:
    """What one run of the loop did."""

    times: list[float] = field(default_factory=list)  # seconds inside schedule(), per iteration
    placed: int = 0
    submitted: int = 0
    classes: int = 0
    pending: int = 0
    pending_reasons: Counter[str] = field(default_factory=Counter)
    jobs: dict[str, JobClass] = field(default_factory=dict)  # every job submitted
    problems: list[str] = field(default_factory=list)  # assignments that break an invariant


def feed(
    cluster: Cluster,
    iterations: Iterator[list[JobClass]],
    profile: Profile,
    seed: int,
    *,
    carry: bool = True,
    until_stuck: bool = False,
    max_iterations: int = 1000,
) -> Feed:
    """Schedule batch after batch, applying each plan to ``cluster`` as the master would."""
    out = Feed()
    queued: list[PendingTask] = []
    active: dict[str, JobClass] = {}
    exclusive: dict[str, bool] = {}
    for i, new_jobs in enumerate(iterations):
        if i >= max_iterations:
            break
        for job in new_jobs:
            active[job.job_id] = out.jobs[job.job_id] = job
            exclusive[job.job_id] = job.hard.get("exclusive_host", "").lower() == "true"
            queued.extend(
                PendingTask(f"{job.job_id}-{k:04d}", job.job_id, 0.0, (job.created_at, k))
                for k in range(job.size)
            )
            out.submitted += job.size
        out.classes += len({t.job_id for t in queued})
        snapshot = Snapshot(float(i), cluster, dict(active), tuple(queued))
        started = time.perf_counter()
        plan = schedule(snapshot, profile, np.random.default_rng([seed, 7, i]))
        out.times.append(time.perf_counter() - started)
        job_of = {t.task_id: t.job_id for t in queued}
        for a in plan.assignments:
            job = active[job_of[a.task_id]]
            h = cluster.index[a.host_id]
            out.problems.extend(check_assignment(cluster, h, job, a))
            cluster.assign(
                h,
                Placement(
                    job.job_id,
                    job.request,
                    a.ports,
                    job.sg_code,
                    a.interface,
                    a.address,
                    exclusive[job.job_id],
                    job.image,
                ),
            )
        out.placed += len(plan.assignments)
        if len(plan.assignments) + len(plan.pending) != len(queued):
            raise AssertionError(
                f"plan covers {len(plan.assignments)} + {len(plan.pending)} tasks of {len(queued)}"
            )
        reasons = Counter(str(p.reason) for p in plan.pending)
        out.pending_reasons = reasons if carry else out.pending_reasons + reasons
        left = {p.task_id for p in plan.pending}
        queued = [t for t in queued if t.task_id in left] if carry else []
        out.pending = len(queued) if carry else out.pending + len(left)
        still = {t.job_id for t in queued}
        active = {j: c for j, c in active.items() if j in still}
        if until_stuck and not plan.assignments:
            break
    return out


def check_assignment(cluster: Cluster, h: int, job: JobClass, a: Assignment) -> list[str]:
    """What is wrong with one assignment, judged on the cluster just before it is applied."""
    problems = []
    if not cluster.schedulable[h]:
        problems.append(f"{a.task_id}: on unschedulable host {a.host_id}")
    if len(a.ports) != job.ports or len(set(a.ports)) != len(a.ports):
        problems.append(f"{a.task_id}: {len(a.ports)} ports for a job asking {job.ports}")
    if job.sg_code is not None:
        if a.interface is None or a.address is None:
            problems.append(f"{a.task_id}: no address")
        else:
            bound = int(cluster.if_sg[h, a.interface])
            if bound not in (UNBOUND, job.sg_code):
                problems.append(f"{a.task_id}: interface bound to another security-group set")
            elif int(cluster.if_slots[h, a.interface]) >> a.address & 1:
                problems.append(f"{a.task_id}: address already taken")
            elif a.address >= cluster.addr_per_if[h]:
                problems.append(f"{a.task_id}: address beyond the interface's")
    return problems


# -- measures ---------------------------------------------------------------------------------------


def lower_bound_hosts(cluster: Cluster) -> int:
    n = cluster.size
    total = cluster.total[:, :n].T[cluster.schedulable[:n]]
    demand = (cluster.total[:, :n] - cluster.free[:, :n]).T.sum(axis=0)
    bound = 0
    for d in range(total.shape[1]):
        if demand[d] <= 1e-9:
            continue
        covered = np.cumsum(np.sort(total[:, d])[::-1])
        k = int(np.searchsorted(covered, demand[d] * (1 - 1e-12) - 1e-9)) + 1
        bound = max(bound, min(k, len(covered)))
    return bound


def violations(cluster: Cluster, jobs: dict[str, JobClass], placed: int) -> list[str]:
    """Invariants the plans must keep, checked on the final cluster."""
    n = cluster.size
    problems: list[str] = []
    over = np.flatnonzero((cluster.free[:, :n].T < -1e-6).any(axis=1))
    if over.size:
        problems.append(f"{over.size} hosts over-committed (e.g. {cluster.ids[over[0]]})")
    if int(cluster.task_count[:n].sum()) != placed:
        problems.append(f"task_count sums to {int(cluster.task_count[:n].sum())}, placed {placed}")
    for h, used in cluster.used_ports.items():
        span = int(cluster.port_high[h] - cluster.port_low[h] + 1)
        if cluster.ports_free[h] != span - len(used) or cluster.ports_free[h] < 0:
            problems.append(f"host {cluster.ids[h]}: ports reused or over-taken")
        if used and (min(used) < cluster.port_low[h] or max(used) > cluster.port_high[h]):
            problems.append(f"host {cluster.ids[h]}: port out of range")
    used = cluster.if_used[:n]
    if not np.array_equal(np.bitwise_count(cluster.if_slots[:n]).astype(np.int64), used):
        problems.append("an address was handed out twice")
    if (used > cluster.addr_per_if[:n, None]).any() or ((used > 0) & (cluster.if_sg[:n] < 0)).any():
        problems.append("an interface holds more addresses than it has, or holds some unbound")
    absent = cluster.if_sg[:n] == ABSENT
    if (used[absent] > 0).any():
        problems.append("an address on an interface the host lacks")
    for job in jobs.values():
        counts = cluster.job_hosts.get(job.job_id, {})
        if not counts or not job.hard:
            continue
        hosts = np.fromiter(counts.keys(), dtype=np.int64)
        tasks = np.fromiter(counts.values(), dtype=np.int64)
        for name, key in (("availability_zone", "zone"), ("instance_type", "instance_type")):
            if name in job.hard:
                code = cluster.lookup(key, job.hard[name])
                column = cluster.attribute(key)
                if (column[hosts] != code).any():
                    problems.append(f"{job.job_id}: {name}={job.hard[name]} not honoured")
        if job.hard.get("unique_host") == "true" and tasks.max() > 1:
            problems.append(f"{job.job_id}: unique_host not honoured ({tasks.max()} on one host)")
    return problems


def zone_uneven(cluster: Cluster, jobs: dict[str, JobClass]) -> int:
    """Jobs with hard ``zone_balance`` whose tasks end two or more apart across the zones that have room
    for one more of them now. The scheduler sends each task to a zone with the fewest among the zones
    that can hold it, and placing only takes room, so this is 0 — unless a repacking pass moved other
    tasks since and opened room in a zone that had none (so it is reported, not counted a violation)."""
    n = cluster.size
    zone = cluster.attribute("zone")
    uneven = 0
    for job in jobs.values():
        counts = cluster.job_hosts.get(job.job_id, {})
        if not counts or job.hard.get("zone_balance") != "true":
            continue
        hosts = np.fromiter(counts.keys(), dtype=np.int64)
        tasks = np.fromiter(counts.values(), dtype=np.int64)
        allowed = cluster.schedulable[:n].copy()
        for name, key in (("availability_zone", "zone"), ("instance_type", "instance_type")):
            if name in job.hard:
                allowed &= cluster.attribute(key) == cluster.lookup(key, job.hard[name])
        per_zone = np.bincount(zone[hosts], weights=tasks, minlength=len(ZONES)).astype(int)
        has_room = np.bincount(zone[room_for(cluster, job, allowed) & (zone >= 0)], minlength=len(ZONES))
        uneven += any(per_zone[z] <= per_zone.max() - 2 and has_room[z] for z in range(len(ZONES)))
    return uneven


def room_for(cluster: Cluster, job: JobClass, allowed: np.ndarray) -> np.ndarray:
    """Hosts (of those its static constraints allow) that could take one more task of the job now."""
    n = cluster.size
    request = np.array(
        [
            job.request.cpu,
            job.request.memory_mb,
            job.request.disk_mb,
            job.request.network_mbps,
            job.request.gpu,
        ]
    )
    ok = allowed & (cluster.free[:, :n] >= request[:, None] - 1e-9).all(axis=0)
    ok &= cluster.ports_free[:n] >= job.ports
    if job.sg_code is not None:
        room = cluster.sg_room.get(job.sg_code)
        ok &= (cluster.iface_addrs[:n] > 0) | (room[:n] > 0 if room is not None else False)
    ok &= cluster.exclusive[:n] == 0
    if job.hard.get("unique_host") == "true":
        placed = cluster.job_hosts.get(job.job_id, {})
        ok[list(placed)] = False
    result: np.ndarray = ok
    return result


def measure(cluster: Cluster, result: Feed, jobs: dict[str, JobClass], placed_total: int) -> dict:
    n = cluster.size
    total = cluster.total[:, :n].T
    alloc = total - cluster.free[:, :n].T
    used = int(np.count_nonzero(cluster.task_count[:n] > 0))
    bound = lower_bound_hosts(cluster)
    seconds = sum(result.times)
    times_ms = np.array(result.times) * 1000
    problems = result.problems + violations(cluster, jobs, placed_total)
    for p in problems[:10]:
        log(f"  VIOLATION: {p}")
    return {
        "hosts": n,
        "tasks": result.submitted,
        "placed": result.placed,
        "pending": result.pending,
        "classes": result.classes,
        "iterations": len(result.times),
        "placements_per_s": round(result.placed / seconds, 1) if seconds > 0 else 0.0,
        "iteration_ms_p50": round(float(np.percentile(times_ms, 50)), 3),
        "iteration_ms_p99": round(float(np.percentile(times_ms, 99)), 3),
        "iteration_ms_max": round(float(times_ms.max()), 3),
        "schedule_s": round(seconds, 4),
        "hosts_used": used,
        "lower_bound_hosts": bound,
        "packing_ratio": round(used / bound, 4) if bound else None,
        "cpu_allocated_pct": round(float(alloc[:, 0].sum() / total[:, 0].sum() * 100), 3),
        "memory_allocated_pct": round(float(alloc[:, 1].sum() / total[:, 1].sum() * 100), 3),
        "violations": len(problems),
        "zone_balance_uneven": zone_uneven(cluster, jobs),
        "pending_reasons": dict(sorted(result.pending_reasons.items())),
    }


# -- scenarios --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    hetero_hosts: int = 5000
    hetero_batch: int = 1000
    hetero_max_job: int = 1000
    identical_hosts: int = 5000
    identical_jobs: int = 20
    identical_tasks: int = 2500
    iter_hosts: int = 10000
    iter_warm_batch: int = 2000
    iter_count: int = 50
    iter_tasks: int = 200
    small_hosts: int = 1000
    small_max_job: int = 300
    large_hosts: int = 2000
    large_max_job: int = 500
    pack_batch: int = 1000


FULL = Sizes()
QUICK = Sizes(
    hetero_hosts=400,
    hetero_batch=200,
    hetero_max_job=100,
    identical_hosts=400,
    identical_jobs=4,
    identical_tasks=500,
    iter_hosts=800,
    iter_warm_batch=500,
    iter_count=5,
    iter_tasks=100,
    small_hosts=100,
    small_max_job=60,
    large_hosts=150,
    large_max_job=60,
    pack_batch=200,
)


def rng_for(seed: int, family: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(family.encode())])


def hetero(sizes: Sizes, seed: int, profile: Profile) -> dict:
    rng = rng_for(seed, "hetero")
    cluster = hetero_fleet(rng, sizes.hetero_hosts)
    maker = JobMaker("j")
    jobs = fill(
        iter(lambda: hetero_job(rng, maker, cluster, sizes.hetero_max_job), None), 0.7 * fleet_cpu(cluster)
    )
    result = feed(cluster, batches(jobs, sizes.hetero_batch), profile, seed)
    return measure(cluster, result, result.jobs, result.placed)


def identical(sizes: Sizes, seed: int) -> dict:
    cluster = identical_fleet(sizes.identical_hosts)
    maker = JobMaker("j")
    sg = cluster.sg_code(("sg-default",))
    request = Resources(1.0, 2 * GB)
    jobs = [
        maker.make(sizes.identical_tasks, request, sg_code=sg, image="registry/batch:v1")
        for _ in range(sizes.identical_jobs)
    ]
    result = feed(cluster, ([j] for j in jobs), PACK_PROFILE, seed)
    return measure(cluster, result, result.jobs, result.placed)


_warm: dict[tuple[int, Sizes], tuple[Cluster, dict[str, JobClass], int, list[str]]] = {}


def warm_cluster(sizes: Sizes, seed: int) -> tuple[Cluster, dict[str, JobClass], int, list[str]]:
    """A heterogeneous fleet ~50 % full: scheduled, not timed (shared by both iter200 scenarios)."""
    key = (seed, sizes)
    if key not in _warm:
        rng = rng_for(seed, "iter200-warm")
        cluster = hetero_fleet(rng, sizes.iter_hosts)
        maker = JobMaker("w")
        jobs = fill(
            iter(lambda: hetero_job(rng, maker, cluster, sizes.hetero_max_job), None),
            0.5 * fleet_cpu(cluster),
        )
        started = time.perf_counter()
        result = feed(cluster, batches(jobs, sizes.iter_warm_batch), PACK_PROFILE, seed, carry=False)
        log(f"  warm-up: {result.placed} tasks in {time.perf_counter() - started:.1f}s")
        _warm.clear()
        _warm[key] = (cluster, result.jobs, result.placed, result.problems)
    cluster, jobs, placed, problems = _warm[key]
    return copy.deepcopy(cluster), dict(jobs), placed, list(problems)


def iter200(sizes: Sizes, seed: int, distinct: bool) -> dict:
    cluster, jobs, warm_placed, warm_problems = warm_cluster(sizes, seed)
    rng = rng_for(seed, "iter200-distinct" if distinct else "iter200-mixed")
    maker = JobMaker("t")

    def iterations() -> Iterator[list[JobClass]]:
        for _ in range(sizes.iter_count):
            batch: list[JobClass] = []
            count = 0
            while count < sizes.iter_tasks:
                room = sizes.iter_tasks - count
                size = 1 if distinct else min(log_uniform_size(rng, sizes.hetero_max_job), room)
                batch.append(hetero_job(rng, maker, cluster, sizes.hetero_max_job, size))
                count += size
            yield batch

    result = feed(cluster, iterations(), PACK_PROFILE, seed, carry=False)
    result.problems[:0] = warm_problems
    out = measure(cluster, result, jobs | result.jobs, warm_placed + result.placed)
    per_iteration = result.classes / max(len(result.times), 1)
    us_per_class = out["iteration_ms_p50"] * 1000 / per_iteration if per_iteration else 0.0
    return out | {"warmup_tasks": warm_placed, "us_per_class": round(us_per_class, 1)}


def packing(sizes: Sizes, seed: int, family: str) -> dict:
    """small_mix_pack, large, large_saturated: identical 16-cpu hosts, memory 4 GB per cpu."""
    rng = rng_for(seed, family)
    hosts = sizes.small_hosts if family == "small_mix_pack" else sizes.large_hosts
    cluster = identical_fleet(hosts)
    sg = cluster.sg_code(("sg-default",))
    maker = JobMaker("j")
    if family == "small_mix_pack":
        choices, max_job = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0), sizes.small_max_job
    else:
        choices, max_job = (1.0, 3.0, 6.0), sizes.large_max_job

    def job() -> JobClass:
        cpu = float(rng.choice(choices))
        request = Resources(cpu, int(cpu * 4 * GB))
        return maker.make(log_uniform_size(rng, max_job), request, sg_code=sg, image="registry/app:v1")

    if family == "large_saturated":
        endless = batches(iter(job, None), sizes.pack_batch)
        result = feed(cluster, endless, PACK_PROFILE, seed, until_stuck=True)
    else:
        jobs = fill(iter(job, None), 0.75 * fleet_cpu(cluster))
        result = feed(cluster, batches(jobs, sizes.pack_batch), PACK_PROFILE, seed)
    return measure(cluster, result, result.jobs, result.placed)


@dataclass(frozen=True)
class Scenario:
    mode: str
    run: Callable[[Sizes, int], dict]
    target: str  # "<metric> <op> <value>", or ""


SCENARIOS: dict[str, Scenario] = {
    "hetero_5000": Scenario("pack", lambda s, seed: hetero(s, seed, PACK_PROFILE), ""),
    "hetero_5000_spread": Scenario("spread", lambda s, seed: hetero(s, seed, SPREAD_PROFILE), ""),
    "identical_5000": Scenario("pack", identical, "placements_per_s >= 50000"),
    "iter200_10000_mixed": Scenario(
        "pack", lambda s, seed: iter200(s, seed, distinct=False), "iteration_ms_p50 <= 15"
    ),
    "iter200_10000_distinct": Scenario(
        "pack", lambda s, seed: iter200(s, seed, distinct=True), "iteration_ms_p50 <= 8"
    ),
    "small_mix_pack": Scenario(
        "pack", lambda s, seed: packing(s, seed, "small_mix_pack"), "packing_ratio <= 1.03"
    ),
    "large": Scenario(
        "pack",
        lambda s, seed: packing(s, seed, "large_saturated"),
        "packing_ratio <= 1.06; cpu_allocated_pct >= 97",
    ),
    "large_75_stream": Scenario("pack", lambda s, seed: packing(s, seed, "large"), ""),
}


def target_met(target: str, line: dict) -> bool | None:
    """Whether every "<metric> <op> <value>" of ``target`` (separated by ";") holds for ``line``."""
    if not target:
        return None
    verdicts = []
    for part in target.split(";"):
        metric, op, value = part.split()
        got = line.get(metric)
        if got is None:
            return None
        verdicts.append(bool(got >= float(value)) if op == ">=" else bool(got <= float(value)))
    return all(verdicts)


def median_line(runs: list[dict]) -> dict:
    out: dict = {}
    for key, first in runs[0].items():
        values = [r[key] for r in runs]
        if isinstance(first, bool) or not isinstance(first, int | float):
            out[key] = first
            continue
        m = statistics.median(values)
        out[key] = int(m) if all(isinstance(v, int) for v in values) and m == int(m) else round(m, 4)
    return out


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--default-gc",
        action="store_true",
        help="keep Python's default collector thresholds (the master raises them: tune_gc)",
    )
    parser.add_argument(
        "--scenario", action="append", choices=list(SCENARIOS), help="repeatable; default all"
    )
    parser.add_argument("--runs", type=int, default=3, help="runs per scenario, each with its own seed")
    parser.add_argument("--seed", type=int, default=1, help="run r uses seed + r")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--verbose", action="store_true", help="also print one line per run")
    args = parser.parse_args()
    if not args.default_gc:
        tune_gc()  # as the master runs the scheduler (corral.cli.servers)
    sizes = QUICK if args.quick else FULL
    for name in args.scenario or list(SCENARIOS):
        scenario = SCENARIOS[name]
        runs = []
        for r in range(args.runs):
            seed = args.seed + r
            log(f"{name}: run {r + 1}/{args.runs} (seed {seed})")
            started = time.perf_counter()
            line = scenario.run(sizes, seed)
            log(
                f"  {line['placed']} placed in {line['iterations']} iterations, "
                f"{line['placements_per_s']:.0f}/s, p50 {line['iteration_ms_p50']:.1f} ms, "
                f"wall {time.perf_counter() - started:.1f}s"
            )
            runs.append(line)
            if args.verbose:
                print(json.dumps({"scenario": name, "mode": scenario.mode, "run": r, "seed": seed, **line}))
        summary = {"scenario": name, "mode": scenario.mode, "runs": len(runs), **median_line(runs)}
        summary |= {"quick": args.quick, "target": scenario.target or None}
        summary["target_met"] = target_met(scenario.target, summary)
        print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
