"""Consolidation: which hosts could be emptied — every task on them placed elsewhere by the real
scheduler — so that a cluster autoscaler can drain and remove them. Purely computational: it works on
forks of the cluster it is given and never changes it.

Each proposal is a trial: a fork with the hosts to empty made unschedulable and their tasks' footprints
released, and ``schedule()`` in pack mode placing those tasks as one batch. The real scheduler decides,
so hard constraints, ports, security groups and exclusive/unique rules hold; a task it leaves pending
sinks the proposal, and its explanation becomes the reason the host is kept.

Choosing what to empty (least-loaded first; idle hosts cost nothing):

1. Idle candidates: removable as they are.
2. With an idle host to build on and at most ``target.HOSTS`` busy candidates: a step toward the
   *target*, the batch packer's packing of all their tasks at once, when it needs fewer hosts than are
   busy (``target.py``). Chunks of the least-loaded hosts stop a host or two short of it: the hosts
   they leave are nearly full and only regrouping tasks across most of them closes the gap. The step
   keeps hosts already on target and empties others into target hosts built where there is room now
   (holes of hosts on target, idle hosts); each call takes the next step, and the steps end at the
   target. When a step is taken, the strategies below wait for the next call (their moves would go
   where the target has other tasks).
3. One host at a time, least-loaded first, into the holes other busy hosts have (idle hosts take nothing
   in these trials: filling one would save nothing). Cheap and safe, but after online placement most
   holes are smaller than any task, so this alone stops early.
4. Then a chunk: the next least-loaded hosts emptied together, their tasks re-packed as one batch into
   the holes and onto idle hosts — the batch packer (largest first, then ``improve.py``) needs fewer
   hosts for them than they occupy now. A chunk counts what it saves: hosts emptied less idle hosts
   filled. The larger the chunk the more room it gathers, up to what the idle hosts and holes can
   hold, so the largest chunk that places is searched for (halving), and a few just below it tried;
   the one that saves most wins. If none saves a host, one that packs its tasks much tighter (the sum
   of the busy hosts' squared fill rises by ``TIGHTER``) is still taken: its least-filled host is what
   the next call frees. Such a chunk moves tasks for no host now — the price of settling later.

Idle hosts are the room a re-pack needs: the tighter the fleet, the less consolidation can do (with no
idle host, only hosts whose tasks fit in the holes of others). Every trial costs one ``schedule()`` and
there are at most ``TRIALS`` of them; a target step costs one batch ``schedule()``, a bounded greedy
and one small ``schedule()`` per destination (``target.py``). So a call is bounded. The same inputs and
seed give the same answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from corral.domain.capacity import Tier
from corral.scheduler import target
from corral.scheduler.cluster import Bools, Cluster, Placement
from corral.scheduler.plan import Plan
from corral.scheduler.profile import Mode, Profile
from corral.scheduler.schedule import schedule
from corral.scheduler.snapshot import JobClass, PendingTask, Snapshot

TRIALS = 40  # trials per call: one-host trials up to half of them, then chunk trials
CHUNKS = 4  # chunk sizes tried: the largest the limit and the room allow, and the next smaller ones
TIGHTER = 0.05  # a chunk that saves no host must raise the busy hosts' sum of squared fill this much


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
    reuse: bool = False,
) -> Consolidation:
    """Up to ``limit`` candidate hosts to empty, where each of their tasks would go, and why the other
    candidates stay. ``cluster`` is not changed. Tasks never move onto an emptied or unschedulable host;
    they may move onto a schedulable idle host (make unschedulable the idle hosts you mean to remove).
    ``reuse``: the caller keeps the hosts it empties, idle and schedulable, for later calls (a step
    toward the target may then fill more idle hosts than it frees when later steps pay that back)."""
    plan = _Planner(cluster, jobs, residents, profile, now, seed, reuse)
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
    if not plan.toward_target(busy, limit):
        plan.one_by_one(busy, limit)
        plan.chunk([h for h in busy if h not in plan.emptied], limit)
    for host_id in busy:
        if host_id not in plan.emptied and host_id not in plan.kept:
            plan.kept[host_id] = _limit(limit) if len(plan.emptied) >= limit else plan.untried()
    return Consolidation(tuple(plan.emptied), dict(plan.moves), dict(plan.kept))


def _tightness(cluster: Cluster) -> float:
    """How tightly the busy hosts are packed: the sum of their squared fill (cpu and memory shares)."""
    n = cluster.size
    total = cluster.total[:2, :n]
    share = np.divide(total - cluster.free[:2, :n], total, out=np.zeros_like(total), where=total > 0)
    return float((share.mean(axis=0) ** 2).sum())


def _limit(limit: int) -> str:
    return f"limit reached: at most {limit} host{'s' if limit != 1 else ''} emptied at once"


@dataclass(slots=True)
class _Trial:
    hosts: list[str]
    plan: Plan
    cluster: Cluster  # the trial's fork: the hosts' tasks released, the plan applied if it placed all
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
        reuse: bool,
    ) -> None:
        self.original = cluster
        self.jobs = jobs
        self.residents = residents
        self.profile = Profile({Tier.CRITICAL: Mode.PACK, Tier.FLEX: Mode.PACK}, profile.weights)
        self.now = now
        self.seed = seed
        self.reuse = reuse
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

    def toward_target(self, busy: list[str], limit: int) -> bool:
        """One step toward the batch packer's packing of the busy hosts' tasks (``target.py``); True if
        taken. Only with an idle host to begin target hosts on (without one, a step could only pour
        hosts into holes, as the one-host trials do) and at most ``target.HOSTS`` busy hosts (a target
        that leaves hosts out would change with every call)."""
        n = self.work.size
        if not (self.open[:n] & (self.work.task_count[:n] == 0)).any():
            return False
        if len(busy) > target.HOSTS or any(self.moved_onto(h) is not None for h in busy):
            return False
        room = limit - len(self.emptied)  # the step's own bounds (``target.py``), not ``TRIALS``
        found = target.step(
            self.work,
            self.open,
            self.jobs,
            self.residents,
            busy,
            self.profile,
            limit=room,
            now=self.now,
            reuse=self.reuse,
        )
        if found is None:
            return False
        found.cluster.schedulable = self.original.schedulable
        self.work = found.cluster
        self.empty(list(found.hosts), found.moves)
        why = f"regrouping tasks onto {found.saving} fewer hosts empties other hosts first"
        for host_id in busy:
            if host_id not in self.emptied:
                self.kept[host_id] = why
        return True

    def one_by_one(self, busy: list[str], limit: int) -> None:
        """Least-loaded first, each host alone into the holes of busy hosts."""
        for host_id in busy:
            if len(self.emptied) >= limit:
                return
            if self.trials >= TRIALS // 2:
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
                self.kept[host_id] = f"{tasks} on no other busy host: {trial.plan.pending[0].message}"

    def chunk(self, rest: list[str], limit: int) -> None:
        """The next least-loaded hosts emptied together onto holes and idle hosts. The larger the chunk,
        the more room its re-pack gathers, up to what the other hosts can hold: the largest chunk that
        places (found by halving) and the next smaller ones are tried; the one that saves most hosts
        (emptied less idle hosts filled) wins — or, if none saves one, one that packs them tighter."""
        rest = [h for h in rest if self.moved_onto(h) is None]
        largest = min(limit - len(self.emptied), len(rest), self.fits(rest))
        if largest < 2:
            return
        tried: dict[int, _Trial] = {}
        low, high = 1, largest + 1  # chunks of ``low`` hosts place (one host alone was tried); ``high`` not
        k = largest
        while high - low > 1 and self.trials < TRIALS:
            tried[k] = self.trial(rest[:k], idle=True)
            low, high = (k, high) if tried[k].placed else (low, k)
            k = (low + high) // 2 if high <= largest else high - 1
        for k in range(low - 1, max(low - CHUNKS, 1), -1):
            if self.trials >= TRIALS:
                break
            if k not in tried:
                tried[k] = self.trial(rest[:k], idle=True)
        before = _tightness(self.work)
        best: tuple[int, float, int] | None = None
        why: dict[str, str] = {}
        for k, trial in sorted(tried.items(), reverse=True):
            saved = k - trial.opened
            tighter = _tightness(trial.cluster) - before if trial.placed else 0.0
            # Freeing as many hosts as it fills is still worth it when it packs them tighter: the
            # least-loaded host it leaves is then freed by a later round.
            worth = trial.placed and (saved > 0 or (saved == 0 and tighter > TIGHTER))
            if worth and (best is None or (saved, tighter) > best[:2]):
                best = (saved, tighter, k)
            together = f"emptied with the {k - 1} next least-loaded host{'s' if k != 2 else ''}"
            for host_id in rest[:k]:
                if not trial.placed:
                    why[host_id] = f"{together}, their tasks do not all fit: {trial.plan.pending[0].message}"
                elif saved <= 0:
                    why[host_id] = f"{together}, their tasks would fill as many idle hosts as that frees"
        if best is not None:
            self.accept(tried[best[2]])
        for host_id, reason in why.items():
            if host_id not in self.emptied:
                self.kept.setdefault(host_id, reason)

    def fits(self, rest: list[str]) -> int:
        """The most of the least-loaded hosts whose load the other hosts could hold, all told (room on
        busy hosts and idle ones): a larger chunk cannot be placed."""
        c, n = self.work, self.work.size
        free = np.where(self.open[:n], c.free[:, :n], 0.0)
        hosts = [c.index[h] for h in rest]
        load = np.cumsum((c.total[:, hosts] - c.free[:, hosts]).T, axis=0)
        room = free.sum(axis=1) - np.cumsum(free[:, hosts].T, axis=0)
        return int(np.count_nonzero(np.all(load <= room + 1e-9, axis=1)))

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
        if not plan.pending:
            for a in plan.assignments:
                if a.footprint is None:  # the scheduler always says what it charged; never guess
                    raise ValueError(f"assignment of {a.task_id} without a footprint")
                fork.assign(fork.index[a.host_id], a.footprint)
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
        fork.schedulable = self.original.schedulable  # restored; ``open`` keeps what is emptied
        self.work = fork
        self.empty(trial.hosts, {a.task_id: a.host_id for a in trial.plan.assignments})
