"""Consolidation: which hosts could be emptied — every task on them placed elsewhere by the real
scheduler — so that a cluster autoscaler can drain and remove them. Purely computational: it works on
forks of the cluster it is given and never changes it.

Each proposal is a trial: a fork with the hosts to empty made unschedulable and their tasks' footprints
released, and ``schedule()`` in pack mode placing those tasks as one batch. The real scheduler decides,
so hard constraints, ports, security groups and exclusive/unique rules hold; a task it leaves pending
sinks the proposal, and its explanation becomes the reason the host is kept.

Choosing what to empty (least-loaded first; idle hosts cost nothing):

1. Idle candidates: removable as they are.
2. One host at a time, least-loaded first, into the holes other busy hosts have (idle hosts take nothing
   in these trials: filling one would save nothing). Cheap and safe, but after online placement most
   holes are smaller than any task, so this alone stops early.
3. Then a chunk: the next least-loaded hosts emptied together, their tasks re-packed as one batch into
   the holes and onto idle hosts — the batch packer (largest first, then ``improve.py``) needs fewer
   hosts for them than they occupy now. A chunk counts what it saves: hosts emptied less idle hosts
   filled. A few chunk sizes are tried; the one that saves most wins.

Every trial costs one ``schedule()``, and there are at most ``TRIALS`` of them, so a call is bounded. The
same inputs and seed give the same answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from corral.domain.capacity import Tier
from corral.scheduler.cluster import Bools, Cluster, Placement
from corral.scheduler.plan import Plan
from corral.scheduler.profile import Mode, Profile
from corral.scheduler.schedule import schedule
from corral.scheduler.snapshot import JobClass, PendingTask, Snapshot

TRIALS = 40  # trials per call: one-host trials while this lasts, minus what the chunk trials need
CHUNKS = 4  # chunk sizes tried (the largest the limit allows, then halves)


@dataclass(frozen=True, slots=True)
class Resident:
    """A task on a host that consolidation may move."""

    task_id: str
    job_id: str  # its class in ``jobs``
    footprint: Placement  # what it holds on its host now (released in the trial)


@dataclass(frozen=True, slots=True)
class Consolidation:
    emptied: tuple[str, ...]  # host ids that can be emptied, in the order chosen
    moves: Mapping[str, str]  # task id -> host id it would go to (every resident of an emptied host)
    kept: Mapping[str, str]  # candidate host id -> why it cannot be emptied (one plain sentence)


def consolidate(
    cluster: Cluster,
    jobs: Mapping[str, JobClass],
    residents: Mapping[str, Sequence[Resident]],
    candidates: Sequence[str],
    profile: Profile,
    *,
    limit: int,
    now: float = 0.0,
    seed: int = 0,
) -> Consolidation:
    """Up to ``limit`` candidate hosts to empty, where each of their tasks would go, and why the other
    candidates stay. ``cluster`` is not changed. Tasks never move onto an emptied or unschedulable host;
    they may move onto a schedulable idle host (make unschedulable the idle hosts you mean to remove)."""
    plan = _Planner(cluster, jobs, residents, profile, now, seed)
    busy: list[str] = []
    for host_id in dict.fromkeys(candidates):  # each once, in the caller's order
        why = plan.unfit(host_id)
        if why is not None:
            plan.kept[host_id] = why
        elif residents.get(host_id):
            busy.append(host_id)
        elif len(plan.emptied) < limit:
            plan.empty([host_id], {})
        else:
            plan.kept[host_id] = _limit(limit)
    busy.sort(key=plan.load_key)
    plan.one_by_one(busy, limit)
    plan.chunk([h for h in busy if h not in plan.emptied], limit)
    for host_id in busy:
        if host_id not in plan.emptied and host_id not in plan.kept:
            plan.kept[host_id] = _limit(limit) if len(plan.emptied) >= limit else plan.untried()
    return Consolidation(tuple(plan.emptied), dict(plan.moves), dict(plan.kept))


def _limit(limit: int) -> str:
    return f"limit reached: at most {limit} host{'s' if limit != 1 else ''} emptied at once"


@dataclass(slots=True)
class _Trial:
    hosts: list[str]
    plan: Plan
    cluster: Cluster  # the trial's fork, tasks released (the plan not yet applied)
    opened: int = 0  # idle hosts the plan fills

    @property
    def placed(self) -> bool:
        return not self.plan.pending


class _Planner:
    def __init__(
        self,
        cluster: Cluster,
        jobs: Mapping[str, JobClass],
        residents: Mapping[str, Sequence[Resident]],
        profile: Profile,
        now: float,
        seed: int,
    ) -> None:
        self.original = cluster
        self.jobs = jobs
        self.residents = residents
        self.profile = Profile({Tier.CRITICAL: Mode.PACK, Tier.FLEX: Mode.PACK}, profile.weights)
        self.now = now
        self.seed = seed
        self.work = cluster.fork()  # the state once the moves chosen so far are made
        self.open: Bools = cluster.schedulable.copy()  # schedulable and not emptied
        self.emptied: list[str] = []
        self.moves: dict[str, str] = {}
        self.kept: dict[str, str] = {}
        self.trials = 0

    def unfit(self, host_id: str) -> str | None:
        """Why a candidate cannot be emptied whatever the room elsewhere, or None."""
        h = self.original.index.get(host_id)
        if h is None:
            return "not a registered host"
        tasks = self.residents.get(host_id, ())
        unknown = next((r for r in tasks if r.job_id not in self.jobs), None)
        if unknown is not None:
            return f"task {unknown.task_id}'s job {unknown.job_id} is unknown"
        held = int(self.original.task_count[h])
        if held != len(tasks):
            return f"it holds {held} task{'s' if held != 1 else ''}, of which {len(tasks)} may move"
        return None

    def load_key(self, host_id: str) -> tuple[float, int, str]:
        """Least-loaded first: the share of cpu and memory in use, then fewer tasks."""
        c, h = self.original, self.original.index[host_id]
        used = [float(1.0 - c.free[d, h] / c.total[d, h]) for d in (0, 1) if c.total[d, h] > 0]
        return (sum(used) / max(len(used), 1), len(self.residents.get(host_id, ())), host_id)

    def untried(self) -> str:
        return f"not tried: at most {TRIALS} trial placements per call"

    # -- strategies -------------------------------------------------------------------------------

    def one_by_one(self, busy: list[str], limit: int) -> None:
        """Least-loaded first, each host alone into the holes of busy hosts."""
        for host_id in busy:
            if len(self.emptied) >= limit:
                return
            if self.trials >= TRIALS - CHUNKS:
                return
            why = self.moved_onto(host_id)
            if why is not None:
                self.kept[host_id] = why
                continue
            trial = self.trial([host_id], idle=False)
            if trial.placed:
                self.accept(trial)
            else:
                count = len(self.residents[host_id])
                tasks = f"its {count} tasks fit" if count != 1 else "its task fits"
                self.kept[host_id] = f"{tasks} nowhere else: {trial.plan.pending[0].message}"

    def chunk(self, rest: list[str], limit: int) -> None:
        """The next least-loaded hosts emptied together onto holes and idle hosts: the size that saves
        most hosts (emptied less idle hosts filled), if any saves one."""
        rest = [h for h in rest if self.moved_onto(h) is None]
        room = min(limit - len(self.emptied), len(rest))
        sizes: list[int] = []
        k = room
        while k >= 2 and len(sizes) < CHUNKS:
            sizes.append(k)
            k //= 2
        best: _Trial | None = None
        why: dict[str, str] = {}
        for k in sizes:  # largest first: a smaller chunk that saves as much wins (fewer moves)
            if self.trials >= TRIALS:
                break
            trial = self.trial(rest[:k], idle=True)
            saved = k - trial.opened
            if trial.placed and saved > 0 and (best is None or saved >= len(best.hosts) - best.opened):
                best = trial
            together = f"emptied with the {k - 1} next least-loaded host{'s' if k != 2 else ''}"
            for host_id in rest[:k]:
                if not trial.placed:
                    why[host_id] = f"{together}, their tasks do not all fit: {trial.plan.pending[0].message}"
                elif saved <= 0:
                    why[host_id] = f"{together}, their tasks would fill as many idle hosts as that frees"
        if best is not None:
            self.accept(best)
        for host_id, reason in why.items():
            if host_id not in self.emptied:
                self.kept.setdefault(host_id, reason)

    def moved_onto(self, host_id: str) -> str | None:
        """Why a host cannot be emptied any more: it takes tasks moved off another."""
        h = self.work.index[host_id]
        if int(self.work.task_count[h]) != len(self.residents.get(host_id, ())):
            return "it takes tasks moved off a host that is emptied"
        return None

    # -- trials -----------------------------------------------------------------------------------

    def trial(self, hosts: list[str], *, idle: bool) -> _Trial:
        """The hosts' tasks placed by the real scheduler with the hosts unschedulable (and idle hosts
        too, unless ``idle``)."""
        self.trials += 1
        fork = self.work.fork()
        n = fork.size
        schedulable = self.open.copy()
        for host_id in hosts:
            schedulable[fork.index[host_id]] = False
        if not idle:
            schedulable &= fork.task_count > 0
        fork.schedulable = schedulable
        tasks: list[PendingTask] = []
        for host_id in hosts:
            h = fork.index[host_id]
            for k, r in enumerate(self.residents[host_id]):
                fork.release(h, r.footprint)
                tasks.append(PendingTask(r.task_id, r.job_id, 0.0, (self.jobs[r.job_id].created_at, k)))
        job_ids = {t.job_id for t in tasks}
        snapshot = Snapshot(self.now, fork, {j: self.jobs[j] for j in job_ids}, tasks)
        plan = schedule(snapshot, self.profile, np.random.default_rng([self.seed, self.trials]))
        idle_before = self.work.task_count[:n] == 0
        filled = {fork.index[a.host_id] for a in plan.assignments}
        opened = sum(1 for h in filled if idle_before[h])
        return _Trial(hosts, plan, fork, opened)

    def empty(self, hosts: list[str], moves: Mapping[str, str]) -> None:
        for host_id in hosts:
            self.open[self.work.index[host_id]] = False
            self.emptied.append(host_id)
            self.kept.pop(host_id, None)
        self.moves.update(moves)

    def accept(self, trial: _Trial) -> None:
        """Make the trial's moves in the working state."""
        fork = trial.cluster
        for a in trial.plan.assignments:
            footprint = a.footprint
            if footprint is None:  # the scheduler always says what it charged; never guess
                raise ValueError(f"assignment of {a.task_id} without a footprint")
            fork.assign(fork.index[a.host_id], footprint)
        fork.schedulable = self.original.schedulable  # restored; ``open`` keeps what is emptied
        self.work = fork
        self.empty(trial.hosts, {a.task_id: a.host_id for a in trial.plan.assignments})
