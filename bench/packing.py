"""Packing quality of the real scheduler on the classic uniform bin-packing sets: Falkenauer's u120, u250
and u500 (120, 250 or 500 items of integer size uniform in 20..100, bins of 150). An item is a task
asking ``size`` cpu (and memory in proportion); a bin is a host of 150 cpu. Instances are drawn from a
seeded generator, so every run sees the same ones.

For each set and fleet slack (the fleet has that much more cpu than the tasks ask, 30 % or 3 %):

    batch      every task pending in one iteration of ``schedule()`` in pack mode: hosts used (hosts
               holding >= 1 task) and tasks left pending.
    online     the tasks arrive one per iteration, in random order (a task left pending is retried
               with the next arrivals, as the master does): hosts used and tasks left pending.
    settled    after online: ``consolidate()`` rounds, every task movable, at most a quarter of the
               fleet emptied per round, each round's moves applied (emptied hosts stay in the fleet,
               idle, and consolidation is told so: ``reuse``), until a round empties nothing; then the
               tasks still pending get one more iteration. Hosts used then. With
               ``--no-idle-destinations`` idle hosts take no moved task, as the autoscaler asks.

Each figure is compared with the Martello-Toth L2 lower bound of the instance (no packing can use
fewer hosts): ``*_over_pct`` is the mean over instances of (hosts used - L2) / L2 x 100. Times are the
median of the instance medians: ``batch_ms`` one batch iteration, ``online_ms`` one online iteration,
``consolidate_ms`` one ``consolidate()`` call.

Prints one JSON line per set and slack on stdout, progress on stderr:

    python bench/packing.py                     # u120, u250, u500 x 30 %, 3 %; 20 instances each
    python bench/packing.py --quick             # small: u250 and u500, 4 instances (tests use it)
    python bench/packing.py --set u500 --instances 5
    python bench/packing.py --set u120 --slack 0.3 --no-idle-destinations

Targets: batch within 0.5 % of the bound at either slack; settled within 1 %.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from corral.domain.resources import Resources
from corral.scheduler import Cluster, HostSpec, JobClass, PendingTask, Plan, Profile, Snapshot, schedule
from corral.scheduler.consolidate import Resident, consolidate

CAPACITY = 150
LOW, HIGH = 20, 100
MB_PER_CPU = 256
SETS = {"u120": 120, "u250": 250, "u500": 500}
SLACKS = (0.30, 0.03)
PROFILE = Profile()  # flex (the default group's tier) packs
BATCH_TARGET = 0.5
SETTLED_TARGET = 1.0
MAX_ROUNDS = 60


# -- instances and the bound ------------------------------------------------------------------------


def instance(name: str, k: int) -> list[int]:
    rng = np.random.default_rng([zlib.crc32(name.encode()), k])
    return [int(s) for s in rng.integers(LOW, HIGH + 1, size=SETS[name])]


def l2_bound(sizes: Sequence[int], capacity: int = CAPACITY) -> int:
    """Martello and Toth's L2: for each threshold a <= C/2, items over C - a need a bin each, items over
    C/2 need a bin each too, and items in [a, C/2] need what room the latter leave, rounded up."""
    w = np.asarray(sizes)
    best = math.ceil(w.sum() / capacity)
    for a in {0, *(int(x) for x in w if x <= capacity / 2)}:
        big = w[w > capacity - a]
        middle = w[(w > capacity / 2) & (w <= capacity - a)]
        small = w[(w >= a) & (w <= capacity / 2)]
        room = len(middle) * capacity - middle.sum()
        best = max(best, len(big) + len(middle) + max(0, math.ceil((small.sum() - room) / capacity)))
    return best


# -- fleet, jobs and tasks --------------------------------------------------------------------------


def fleet(hosts: int) -> Cluster:
    cluster = Cluster(capacity=hosts)
    total = Resources(float(CAPACITY), CAPACITY * MB_PER_CPU, 1_000_000, 100_000, 0)
    for i in range(hosts):
        cluster.upsert_host(HostSpec(f"h{i:04d}", total, {"zone": "z0", "instance_type": "u150"}))
    return cluster


@dataclass
class Workload:
    """One job per item size (its tasks are identical); jobs in a random fair order."""

    jobs: dict[str, JobClass]
    tasks: list[PendingTask]  # in arrival order
    job_of: dict[str, str]


def workload(sizes: Sequence[int], rng: np.random.Generator) -> Workload:
    distinct = sorted(set(sizes))
    created = rng.permutation(len(distinct))
    jobs = {
        f"s{s:03d}": JobClass(f"s{s:03d}", "default", Resources(float(s), s * MB_PER_CPU), float(c))
        for s, c in zip(distinct, created.tolist(), strict=True)
    }
    order = rng.permutation(len(sizes))
    tasks = [
        PendingTask(f"t{i:04d}", f"s{sizes[i]:03d}", 0.0, (jobs[f"s{sizes[i]:03d}"].created_at, i))
        for i in order.tolist()
    ]
    return Workload(jobs, tasks, {t.task_id: t.job_id for t in tasks})


def apply(cluster: Cluster, plan: Plan, where: dict[str, str]) -> None:
    for a in plan.assignments:
        if a.footprint is None:
            raise AssertionError(f"{a.task_id}: assignment without a footprint")
        cluster.assign(cluster.index[a.host_id], a.footprint)
        where[a.task_id] = a.host_id


def hosts_used(cluster: Cluster) -> int:
    return int(np.count_nonzero(cluster.task_count[: cluster.size] > 0))


def overcommitted(cluster: Cluster) -> int:
    return int(np.count_nonzero((cluster.free[:, : cluster.size] < -1e-6).any(axis=0)))


# -- one instance -----------------------------------------------------------------------------------


@dataclass
class Result:
    bound: int
    hosts: int
    batch: int = 0
    batch_pending: int = 0
    batch_ms: float = 0.0
    online: int = 0
    online_pending: int = 0
    online_ms: list[float] = field(default_factory=list)
    settled: int = 0
    settled_pending: int = 0
    rounds: int = 0
    moves: int = 0
    consolidate_ms: list[float] = field(default_factory=list)
    violations: int = 0


def run_instance(name: str, k: int, slack: float, *, online: bool, idle: bool = True) -> Result:
    sizes = instance(name, k)
    hosts = math.ceil(sum(sizes) * (1 + slack) / CAPACITY)
    out = Result(l2_bound(sizes), hosts)
    work = workload(sizes, np.random.default_rng([zlib.crc32(name.encode()), k, 1]))
    # Batch: one iteration, every task pending.
    cluster = fleet(hosts)
    started = time.perf_counter()
    plan = schedule(Snapshot(0.0, cluster, work.jobs, work.tasks), PROFILE, np.random.default_rng([k, 0]))
    out.batch_ms = (time.perf_counter() - started) * 1000
    apply(cluster, plan, {})
    out.batch, out.batch_pending = hosts_used(cluster), len(plan.pending)
    out.violations += overcommitted(cluster)
    if online:
        run_online(out, work, hosts, k, idle=idle)
    return out


def run_online(out: Result, work: Workload, hosts: int, k: int, *, idle: bool) -> None:
    cluster = fleet(hosts)
    where: dict[str, str] = {}
    queued: list[PendingTask] = []
    for i, task in enumerate(work.tasks):
        queued.append(task)
        snapshot = Snapshot(float(i), cluster, work.jobs, tuple(queued))
        started = time.perf_counter()
        plan = schedule(snapshot, PROFILE, np.random.default_rng([k, 1, i]))
        out.online_ms.append((time.perf_counter() - started) * 1000)
        apply(cluster, plan, where)
        left = {p.task_id for p in plan.pending}
        queued = [t for t in queued if t.task_id in left]
    out.online, out.online_pending = hosts_used(cluster), len(queued)
    out.violations += overcommitted(cluster)
    # Consolidation rounds until one empties nothing; the moves applied as the autoscaler's drains would.
    limit = max(1, hosts // 4)
    for r in range(MAX_ROUNDS):
        residents: dict[str, list[Resident]] = {}
        for task_id, host_id in where.items():
            job = work.jobs[work.job_of[task_id]]
            residents.setdefault(host_id, []).append(Resident(task_id, job.job_id, job.footprint()))
        busy = sorted(residents)
        view = cluster
        if not idle:  # as the autoscaler asks: idle hosts take no moved task
            view = cluster.fork()
            view.schedulable = view.schedulable & (view.task_count > 0)
        started = time.perf_counter()
        seed = k * 1000 + r
        # Emptied hosts stay in the fleet (idle) for the next round: ``reuse`` tells consolidation so.
        result = consolidate(view, work.jobs, residents, busy, PROFILE, limit=limit, seed=seed, reuse=True)
        out.consolidate_ms.append((time.perf_counter() - started) * 1000)
        if not result.emptied:
            break
        out.rounds += 1
        for host_id in result.emptied:
            h = cluster.index[host_id]
            for resident in residents.get(host_id, []):
                cluster.release(h, resident.footprint)
        for task_id, host_id in result.moves.items():
            cluster.assign(cluster.index[host_id], work.jobs[work.job_of[task_id]].footprint())
            where[task_id] = host_id
        out.moves += len(result.moves)
        out.violations += overcommitted(cluster)
    if queued:  # the master retries what waits
        snapshot = Snapshot(float(len(work.tasks)), cluster, work.jobs, tuple(queued))
        plan = schedule(snapshot, PROFILE, np.random.default_rng([k, 2]))
        apply(cluster, plan, where)
        queued = [t for t in queued if t.task_id in {p.task_id for p in plan.pending}]
    out.settled, out.settled_pending = hosts_used(cluster), len(queued)
    out.violations += overcommitted(cluster)


# -- summary ----------------------------------------------------------------------------------------


def over_pct(used: Sequence[int], bounds: Sequence[int]) -> float:
    return round(statistics.mean((u - b) / b * 100 for u, b in zip(used, bounds, strict=True)), 3)


def summary(name: str, slack: float, results: list[Result], *, online: bool) -> dict:
    bounds = [r.bound for r in results]
    line: dict = {
        "set": name,
        "slack_pct": round(slack * 100),
        "instances": len(results),
        "tasks": SETS[name],
        "hosts": round(statistics.mean(r.hosts for r in results), 2),
        "bound": "L2",
        "l2_hosts": round(statistics.mean(bounds), 2),
        "batch_hosts": round(statistics.mean(r.batch for r in results), 2),
        "batch_over_pct": over_pct([r.batch for r in results], bounds),
        "batch_pending": sum(r.batch_pending for r in results),
        "batch_ms": round(statistics.median(r.batch_ms for r in results), 2),
        "batch_ms_max": round(max(r.batch_ms for r in results), 2),
    }
    if online:
        line |= {
            "online_hosts": round(statistics.mean(r.online for r in results), 2),
            "online_over_pct": over_pct([r.online for r in results], bounds),
            "online_pending": sum(r.online_pending for r in results),
            "online_ms": round(statistics.median(statistics.median(r.online_ms) for r in results), 3),
            "settled_hosts": round(statistics.mean(r.settled for r in results), 2),
            "settled_over_pct": over_pct([r.settled for r in results], bounds),
            "settled_pending": sum(r.settled_pending for r in results),
            "consolidation_rounds": round(statistics.mean(r.rounds for r in results), 2),
            "moves": round(statistics.mean(r.moves for r in results), 1),
            "consolidate_ms": round(
                statistics.median(statistics.median(r.consolidate_ms) for r in results), 2
            ),
        }
    line["violations"] = sum(r.violations for r in results)
    target = f"batch_over_pct <= {BATCH_TARGET}" + (
        f"; settled_over_pct <= {SETTLED_TARGET}" if online else ""
    )
    met = line["batch_over_pct"] <= BATCH_TARGET and line["batch_pending"] == 0
    if online:
        met = met and line["settled_over_pct"] <= SETTLED_TARGET and line["settled_pending"] == 0
    return line | {"target": target, "target_met": met}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--set", action="append", choices=list(SETS), help="repeatable; default all")
    parser.add_argument("--instances", type=int, help="instances per set (default 20; 4 with --quick)")
    parser.add_argument("--slack", type=float, action="append", help="fleet slack, e.g. 0.3 (repeatable)")
    parser.add_argument(
        "--no-online", action="store_true", help="batch only (online + consolidation is slower)"
    )
    parser.add_argument("--quick", action="store_true", help="small: u250 and u500, 4 instances")
    parser.add_argument(
        "--no-idle-destinations",
        action="store_true",
        help="settled: idle hosts take no moved task (as the autoscaler asks)",
    )
    args = parser.parse_args()
    names = args.set or (["u250", "u500"] if args.quick else list(SETS))
    count = args.instances or (4 if args.quick else 20)
    online = not args.no_online
    idle = not args.no_idle_destinations
    for name in names:
        for slack in args.slack or SLACKS:
            results = []
            started = time.perf_counter()
            for k in range(count):
                results.append(run_instance(name, k, slack, online=online, idle=idle))
            log(f"{name} slack {slack:.0%}: {count} instances in {time.perf_counter() - started:.1f}s")
            line = summary(name, slack, results, online=online)
            extra = {"quick": args.quick} | ({"idle_destinations": idle} if online else {})
            print(json.dumps(line | extra), flush=True)


if __name__ == "__main__":
    main()
