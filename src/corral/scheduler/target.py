"""The packing consolidation steers toward, and the next step toward it. Purely computational: it works
on forks of the cluster it is given and never changes it.

Emptying the least-loaded hosts into holes and idle hosts frees hosts while an online packing is loose,
but stops a host or two above what a batch packing of the same tasks needs: the hosts left are nearly
full, each with a hole a little too small for any task, and no handful of them packs into fewer. Closing
that gap means regrouping tasks across most hosts. So the *target* is the batch packer's packing of every
movable task at once (``schedule()`` in pack mode on a fork with them all released, as if pending); when
it needs fewer hosts than are busy, a call takes one step toward it:

- A host holding a subset of a target host's tasks, and alike (same resources, ports, interfaces and
  attributes), is *on target*: it stays, and the rest of that target host's tasks come to it (its hole
  is exactly what they need). Tasks are told apart by job only.
- Every other movable host is emptied in some step. Its tasks go to target hosts realized on hosts that
  stay: on target, busy and not movable, or idle (one per target host *begun*; holding a subset of it,
  it is on target in the next call).
- A step empties one host at a time, the one whose tasks begin the fewest target hosts first, while the
  idle hosts and the limit allow, and is cut where it frees the most hosts (emptied less begun). Only
  when no cut frees one, and the caller keeps what it empties (``reuse``), is the whole step taken if
  the steps after it, filling the hosts each one frees, empty every host off target: the idle hosts it
  fills are paid back on the way. Without ``reuse`` no step fills more idle hosts than it frees.

Each destination's tasks are then placed by the real ``schedule()`` with only that host schedulable, so
constraints, ports and security groups hold; if one does not place, there is no step.

The target does not depend on the seed, so successive calls aim at the same packing while the tasks stay
the same: hosts on target stay on target, every step empties hosts that are not, and the steps end.
Cost: one batch ``schedule()`` of the movable tasks (at most ``HOSTS`` hosts' worth), the greedy steps
(hosts off target x hosts emptied x tasks per host), and one small ``schedule()`` per destination, at most
``PLACE_WORK`` / hosts of them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from corral.scheduler.cluster import Bools, Cluster, Ints, Placement
from corral.scheduler.profile import Profile
from corral.scheduler.schedule import schedule
from corral.scheduler.snapshot import JobClass, PendingTask, Snapshot

HOSTS = 512  # more movable hosts than this: no target (its cost grows with them)
PLACE_WORK = 1_000_000  # a step's destinations x hosts in the cluster, at most (~0.15 s at 10,000 hosts)
AHEAD = 8  # steps looked ahead to see a step that fills more idle hosts than it frees pay back


class Resident(Protocol):
    """A task on a host that may move (``consolidate.Resident``)."""

    @property
    def task_id(self) -> str: ...
    @property
    def job_id(self) -> str: ...
    @property
    def footprint(self) -> Placement: ...


@dataclass(frozen=True, slots=True)
class Step:
    hosts: tuple[str, ...]  # to empty, in the order chosen
    moves: Mapping[str, str]  # task id -> host id, for every task on those hosts
    opened: int  # idle hosts it fills
    saving: int  # hosts the target needs fewer than are busy now
    cluster: Cluster  # a fork with the step made (its schedulable mask is the one given)


def step(
    cluster: Cluster,
    schedulable: Bools,
    jobs: Mapping[str, JobClass],
    residents: Mapping[str, Sequence[Resident]],
    movable: Sequence[str],
    profile: Profile,
    *,
    limit: int,
    now: float,
    reuse: bool = False,
) -> Step | None:
    """One step toward the target packing of the ``movable`` hosts' tasks (least-loaded first), emptying
    at most ``limit`` hosts; None when the target saves nothing or there is no step. Tasks go only to
    ``schedulable`` hosts that are not emptied. ``reuse``: the hosts emptied stay, idle and schedulable,
    for later calls."""
    if limit <= 0 or not movable or len(movable) > HOSTS:
        return None
    target = _target(cluster, schedulable, jobs, residents, movable, profile, now)
    if target is None:
        return None
    where, saving = target
    chosen, moves, opened = _Steps(cluster, schedulable, residents, movable, where).plan(limit, reuse)
    if not chosen:
        return None
    fork = _place(cluster, schedulable, jobs, residents, chosen, moves, profile, now)
    if fork is None:
        return None
    ids = cluster.ids
    return Step(tuple(chosen), {t: ids[h] for t, h in moves.items()}, opened, saving, fork)


def _target(
    cluster: Cluster,
    schedulable: Bools,
    jobs: Mapping[str, JobClass],
    residents: Mapping[str, Sequence[Resident]],
    movable: Sequence[str],
    profile: Profile,
    now: float,
) -> tuple[dict[str, int], int] | None:
    """Each movable task's host in the target packing and the hosts it saves; None if it saves none."""
    fork = cluster.fork()
    fork.schedulable = schedulable.copy()
    released: list[tuple[str, str]] = []
    for host_id in movable:
        h = fork.index[host_id]
        for r in residents[host_id]:
            fork.release(h, r.footprint)
            released.append((r.task_id, r.job_id))
    released.sort()  # the same tasks give the same target, wherever they are now
    tasks = [PendingTask(t, j, 0.0, (jobs[j].created_at, k)) for k, (t, j) in enumerate(released)]
    snapshot = Snapshot(now, fork, {j: jobs[j] for _, j in released}, tasks)
    plan = schedule(snapshot, profile, np.random.default_rng(0))
    if plan.pending:
        return None
    n = cluster.size
    where = {a.task_id: fork.index[a.host_id] for a in plan.assignments}
    used = fork.task_count[:n] > 0
    used[list(where.values())] = True
    saving = int(np.count_nonzero(cluster.task_count[:n] > 0)) - int(np.count_nonzero(used))
    return (where, saving) if saving > 0 else None


def shapes(cluster: Cluster) -> Ints:
    """Hosts alike for any task (resources, ports, interfaces, attributes) share a number."""
    n = cluster.size
    rows = [
        cluster.total[:, :n],
        cluster.port_low[None, :n],
        cluster.port_high[None, :n],
        cluster.if_count[None, :n],
        cluster.addr_per_if[None, :n],
        *(cluster.attrs[k][None, :n] for k in sorted(cluster.attrs)),
    ]
    key = np.vstack([r.astype(np.float64) for r in rows]).T
    _, ids = np.unique(key, axis=0, return_inverse=True)
    return np.asarray(ids).reshape(n)


Made = tuple[str, dict[str, int], list[int]]  # a host emptied, its tasks' target hosts, those it begins


@dataclass(slots=True)
class _State:
    """Where a sequence of steps has got to: target hosts realized, what each still misses, idle room."""

    realized: set[int]  # target hosts with a host: on target, busy and staying, or begun on an idle host
    missing: dict[int, Counter[str]]  # per target host, how many tasks of each job it still misses
    needing: dict[str, set[int]]  # job -> target hosts that miss one of its tasks
    room: Counter[int]  # idle hosts by shape
    left: list[str]  # hosts off target not emptied yet, least-loaded first


class _Steps:
    """Target hosts (by their host index in the target) matched to hosts now, and the greedy step."""

    def __init__(
        self,
        cluster: Cluster,
        schedulable: Bools,
        residents: Mapping[str, Sequence[Resident]],
        movable: Sequence[str],
        where: Mapping[str, int],
    ) -> None:
        self.cluster = cluster
        self.residents = residents
        self.where = where
        # Each destination costs a ``schedule()`` over the whole cluster: a step has at most so many.
        self.destinations = max(1, PLACE_WORK // max(cluster.size, 1))
        self.job = {r.task_id: r.job_id for h in movable for r in residents[h]}
        self.hosts_with: dict[str, list[str]] = {}  # job -> movable hosts holding one of its tasks
        for host_id in movable:
            for job_id in dict.fromkeys(r.job_id for r in residents[host_id]):
                self.hosts_with.setdefault(job_id, []).append(host_id)
        n = cluster.size
        self.shape = shapes(cluster)
        content: dict[int, Counter[str]] = {}
        for host_id in movable:
            for r in residents[host_id]:
                content.setdefault(where[r.task_id], Counter())[r.job_id] += 1
        index = cluster.index
        moving = {index[h] for h in movable}
        busy = cluster.task_count[:n] > 0
        # A target host on a busy host that stays (not movable) is realized there; others anywhere alike.
        self.host_of: dict[int, int] = {b: b for b in content if busy[b] and b not in moving}
        self.demand = content
        on_target = self._match([h for h in movable if schedulable[index[h]]])  # others take no task
        self.bad = [h for h in movable if h not in on_target]  # to be emptied, least-loaded first
        self.needing: dict[str, set[int]] = {}  # job -> target hosts still missing one of its tasks
        for b, wanted in self.demand.items():
            for job_id, count in wanted.items():
                if count > 0:
                    self.needing.setdefault(job_id, set()).add(b)
        idle = np.flatnonzero(schedulable[:n] & ~busy).tolist()
        self.idle: dict[int, list[int]] = {}  # shape -> idle hosts, in index order
        for h in idle:
            self.idle.setdefault(int(self.shape[h]), []).append(h)

    def _match(self, movable: Sequence[str]) -> set[str]:
        """Movable hosts on target keep their tasks: matched one to one with a target host that holds
        their tasks and more (its own first, then the most specific hosts first)."""
        index, content, shape = self.cluster.index, self.demand, self.shape
        held = {h: Counter(r.job_id for r in self.residents[h]) for h in movable}
        taken: set[int] = set()
        on_target: set[str] = set()

        def subset(host_id: str, b: int) -> bool:
            return all(content[b][j] >= c for j, c in held[host_id].items())

        for host_id in movable:
            b = index[host_id]
            if b in content and b not in self.host_of and subset(host_id, b):
                self.host_of[b] = b
                taken.add(b)
                on_target.add(host_id)
        by_job: dict[str, list[int]] = {}
        for b in sorted(content):
            if b not in self.host_of:
                for job_id in content[b]:
                    by_job.setdefault(job_id, []).append(b)
        for host_id in sorted(movable, key=lambda h: (-len(self.residents[h]), h)):
            if host_id in on_target:
                continue
            h = index[host_id]
            rarest = min(held[host_id], key=lambda j: (len(by_job.get(j, ())), j))
            fits = [
                b
                for b in by_job.get(rarest, ())
                if b not in taken and shape[b] == shape[h] and subset(host_id, b)
            ]
            if fits:
                b = min(fits, key=lambda b: (content[b].total(), b))
                self.host_of[b] = h
                taken.add(b)
                on_target.add(host_id)
        for b, h in self.host_of.items():
            if b in taken:
                content[b] = content[b] - held[self.cluster.ids[h]]
        return on_target

    def plan(self, limit: int, reuse: bool) -> tuple[list[str], dict[str, int], int]:
        """The hosts to empty, where their tasks go, and the idle hosts that fills: the greedy step cut
        where it frees the most hosts, if it frees any. Else a step that frees none is taken only if the
        steps after it empty every host off target (``_completes``): with ``reuse``, the whole step;
        without, the longest cut that fills as many idle hosts as it frees."""
        state = self.state()
        done = self._step(state, limit)
        cuts = [(0, 0)]  # (hosts freed, hosts emptied) after each host of the step
        begun = 0
        for k, (_, _, new) in enumerate(done, 1):
            begun += len(new)
            cuts.append((k - begun, k))
        freed, count = max(cuts)
        if freed > 0:
            done = done[:count]
        elif reuse and done and self._completes(state, done, limit, reuse):
            pass
        elif count > 0:
            state = self.state()
            done = self._step(state, count)  # the same cut, its state after
            if not self._completes(state, done, limit, reuse):
                return [], {}, 0
        else:
            return [], {}, 0
        moves: dict[str, int] = {}
        opened = 0
        for _, assigned, new in done:
            for b in new:
                pool = self.idle[int(self.shape[b])]
                self.host_of[b] = b if b in pool else pool[0]
                pool.remove(self.host_of[b])
                opened += 1
            moves.update({task_id: self.host_of[b] for task_id, b in assigned.items()})
        return [host_id for host_id, _, _ in done], moves, opened

    def state(self) -> _State:
        missing = {b: Counter(wanted) for b, wanted in self.demand.items()}
        needing = {j: set(bins) for j, bins in self.needing.items()}
        room = Counter({s: len(pool) for s, pool in self.idle.items()})
        return _State(set(self.host_of), missing, needing, room, list(self.bad))

    def _completes(self, state: _State, done: Sequence[Made], limit: int, reuse: bool) -> bool:
        """Whether steps after ``done`` (made on ``state`` already) empty every host off target within
        ``AHEAD`` steps, with the idle hosts left (and, with ``reuse``, those each step empties)."""
        for _ in range(AHEAD):
            if reuse:
                state.room.update(int(self.shape[self.cluster.index[h]]) for h, _, _ in done)
            if not state.left:
                return True
            done = self._step(state, limit)
            if not done:
                return False
        return not state.left

    def _step(self, state: _State, limit: int) -> list[Made]:
        """Empty, one at a time, the host whose tasks begin the fewest target hosts on idle hosts (the
        least-loaded at a tie), each task to a target host realized or begun already where one misses
        its job; until the limit, or no host left fits the idle hosts. ``state`` is changed."""
        done: list[Made] = []
        found: dict[str, tuple[dict[str, int], list[int]] | None] = {}
        stale = set(state.left)
        reach: set[int] = set()  # target hosts the step's tasks go to
        while len(done) < limit and state.left:
            for host_id in stale:
                found[host_id] = self._assign(host_id, state)
            best: tuple[int, int, dict[str, int], list[int]] | None = None  # (begun, place in left, ...)
            for k, host_id in enumerate(state.left):
                f = found[host_id]
                if f is None or (best is not None and len(f[1]) >= best[0]) or not self._fits(f[1], state):
                    continue
                if len(reach.union(f[0].values())) > self.destinations:
                    continue
                best = (len(f[1]), k, *f)
                if not f[1]:
                    break
            if best is None:
                break
            _, k, assigned, new = best
            host_id = state.left.pop(k)
            del found[host_id]
            reach.update(assigned.values())
            state.realized.update(new)
            state.room.subtract(int(self.shape[b]) for b in new)
            for task_id, b in assigned.items():
                job_id = self.job[task_id]
                state.missing[b][job_id] -= 1
                if state.missing[b][job_id] == 0:
                    state.needing[job_id].discard(b)
            done.append((host_id, assigned, new))
            jobs = {j for b in {*new, *assigned.values()} for j in self.demand[b]}
            left = set(state.left)
            stale = {h for j in jobs for h in self.hosts_with.get(j, ()) if h in left}
        return done

    def _fits(self, new: Sequence[int], state: _State) -> bool:
        wanted = Counter(int(self.shape[b]) for b in new)
        return all(state.room[s] >= count for s, count in wanted.items())

    def _assign(self, host_id: str, state: _State) -> tuple[dict[str, int], list[int]] | None:
        """A target host for each of the host's tasks — one realized already where it can, its own
        first — and the target hosts it begins; None if a task has no place left."""
        taken: Counter[tuple[int, str]] = Counter()
        new: list[int] = []
        assigned: dict[str, int] = {}
        for r in self.residents[host_id]:
            j = r.job_id
            own = self.where[r.task_id]
            options = [b for b in state.needing.get(j, ()) if state.missing[b][j] > taken[b, j]]
            if not options:
                return None

            def rank(b: int, own: int = own) -> tuple[bool, bool, int, int]:
                return (b not in state.realized and b not in new, b != own, -state.missing[b].total(), b)

            b = min(options, key=rank)
            if b not in state.realized and b not in new:
                new.append(b)
            taken[b, j] += 1
            assigned[r.task_id] = b
        return assigned, new


def _place(
    cluster: Cluster,
    schedulable: Bools,
    jobs: Mapping[str, JobClass],
    residents: Mapping[str, Sequence[Resident]],
    chosen: Sequence[str],
    moves: Mapping[str, int],
    profile: Profile,
    now: float,
) -> Cluster | None:
    """The step made on a fork, each destination's tasks placed by the real scheduler with only that
    host schedulable; None if a task does not place."""
    fork = cluster.fork()
    arriving: dict[int, list[Resident]] = {}
    for host_id in chosen:
        h = fork.index[host_id]
        for r in residents[host_id]:
            fork.release(h, r.footprint)
            arriving.setdefault(moves[r.task_id], []).append(r)
    mask = fork.schedulable
    only = np.zeros_like(mask)
    try:
        for h, coming in sorted(arriving.items()):
            only[h] = schedulable[h]
            fork.schedulable = only
            tasks = [
                PendingTask(r.task_id, r.job_id, 0.0, (jobs[r.job_id].created_at, k))
                for k, r in enumerate(coming)
            ]
            snapshot = Snapshot(now, fork, {r.job_id: jobs[r.job_id] for r in coming}, tasks)
            plan = schedule(snapshot, profile, np.random.default_rng(h))
            only[h] = False
            if plan.pending:
                return None
            for a in plan.assignments:
                if a.footprint is None:  # the scheduler always says what it charged; never guess
                    raise ValueError(f"assignment of {a.task_id} without a footprint")
                fork.assign(h, a.footprint)
    finally:
        fork.schedulable = mask
    return fork
