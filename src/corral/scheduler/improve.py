"""The packing pass: after a pack-mode tier is served, re-pack what it placed onto as few hosts as it can.

Serving the queue puts each class where it fits best at that moment — at best best-fit decreasing,
which uses a host or two more than needed (about 1 % on uniform sizes). This iteration's tasks are not
running yet, so moving them is free: the pass models them as items on bins (``repack.py``), lets the
search free bins (first aiming at the bound outright, ``complete.py``), and moves the tasks for real.

What may move: the tier's tasks placed this iteration whose job's rules do not depend on where its
other tasks are (no unique/exclusive host, zone balance, job spreading or soft constraint). A tier with
a zone-balanced job is left as it is: each of its tasks went to a zone with room then, which moving
other tasks could change after the fact. Where such a
task may go is then its host's room (resources, ports, addresses) and the job's static constraints,
which the bins model. The real filters check every move again as it is applied; if one says no, the
whole re-pack is undone and the iteration keeps what the queue decided. Tasks of such jobs the tier left
pending for room go into the re-pack too, so a better packing places them.

When: pack mode only, when the tier placed at least ``MIN_TASKS`` movable tasks and either opened more
hosts than the lower bound or left movable tasks pending for room; bounded by ``WORK`` (moves weighed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from corral.domain.capacity import DEFAULT_GROUP
from corral.scheduler.cluster import Bools, Cluster, Floats, Ints
from corral.scheduler.context import EPS, ClassContext
from corral.scheduler.explain import explain
from corral.scheduler.filters import feasible
from corral.scheduler.placement import ClassPlacer
from corral.scheduler.plan import Assignment, Pending, PendingReason
from corral.scheduler.queue import Bucket
from corral.scheduler.repack import Bins, binding, repack
from corral.scheduler.rows import Rows
from corral.scheduler.snapshot import JobClass

MIN_TASKS = 16  # fewer tasks than this: best fit is as good as it gets, not worth a look
# The search's budget in ``repack`` units (~30 ns each): per task on a host the tier opened (the packing
# it improves), at least, at most (~50 ms).
WORK = (16_000, 150_000, 1_500_000)
HOLES = 256  # at most this many other hosts with room are offered to the search (the roomiest)
ROOM = {PendingReason.NO_CAPACITY, PendingReason.NO_PORTS, PendingReason.NO_NETWORK}


class Iteration(Protocol):
    """What the pass reads and changes of an iteration in progress (``schedule._Iteration``)."""

    cluster: Cluster
    tiebreak: Floats
    assignments: list[Assignment]
    pending: list[Pending]
    changed: list[int]
    placers: dict[str, ClassPlacer]


@dataclass(slots=True)
class _Item:
    cls: JobClass
    ctx: ClassContext
    at: int  # index in ``assignments`` (-1: pending, index in ``pending`` is ``waiting``)
    waiting: int = -1
    host: int = -1


@dataclass(slots=True)
class _Glance:
    """The tier's movable tasks as columns: a quick look before anything is built."""

    ctxs: list[ClassContext]  # their classes
    at: Ints  # each task's host
    rows: Floats  # each task's request (task x resource)
    lifted: Floats  # what they hold on each host (resource x host)
    opened: Bools  # hosts holding nothing else (emptying one frees it)


class Pass:
    """Started before a pack-mode tier is served (to know where its results begin), run after."""

    def __init__(self, it: Iteration, buckets: list[Bucket]) -> None:
        self.it = it
        self.first = len(it.assignments)
        self.first_pending = len(it.pending)
        self.buckets = {b.group.name: b for b in buckets}
        self.classes = [pair for b in buckets for pair in b.classes]  # before serving empties them
        self.over_limit: dict[int, JobClass] = {}  # pending tasks past their group's limit, by index

    def run(self) -> bool:
        """Re-pack the tier's movable tasks; True when it moved or placed any."""
        it = self.it
        if len(it.assignments) - self.first < MIN_TASKS or self._zone_balanced():
            return False
        glance = self._glance()
        if glance is None:
            return False
        waiting = self._waiting(glance)
        if waiting is None or (not waiting and not self._worth_a_look(glance)):
            return False
        items = self._items(waiting)
        if len(items) < MIN_TASKS:
            return False
        return _Repack(it, self, items).run()

    def _zone_balanced(self) -> bool:
        """Whether a job of the tier balances its tasks over zones: where each of them went depended on
        which zones had room then, so moving other tasks now could undo the balance it was judged by."""
        for cls, _ in self.classes:
            placer = self.it.placers.get(cls.job_id)
            if placer is not None and placer.ctx.zone_balance:
                return True
        return False

    def _glance(self) -> _Glance | None:
        it = self.it
        c, n = it.cluster, it.cluster.size
        kinds: dict[str, int] = {}
        ctxs: list[ClassContext] = []
        hosts: list[int] = []
        kind: list[int] = []
        for a in it.assignments[self.first :]:
            job = a.footprint.job_id if a.footprint is not None else ""
            if job not in kinds:
                placer = it.placers.get(job)
                kinds[job] = -1
                if placer is not None and movable(placer.ctx):
                    kinds[job] = len(ctxs)
                    ctxs.append(placer.ctx)
            if kinds[job] >= 0:
                hosts.append(c.index[a.host_id])
                kind.append(kinds[job])
        if not hosts:
            return None
        at = np.array(hosts, dtype=np.int64)
        rows = np.stack([ctx.req for ctx in ctxs])[np.array(kind, dtype=np.int64)]
        lifted = np.zeros((rows.shape[1], n))
        np.add.at(lifted.T, at, rows)
        on_host = np.bincount(at, minlength=n)
        opened = (on_host > 0) & (c.task_count[:n] == on_host)
        return _Glance(ctxs, at, rows, lifted, opened)

    def _waiting(self, glance: _Glance) -> list[int] | None:
        """The tier's tasks left pending for room that a re-pack could place: of jobs whose task would
        fit some host once the movable tasks on it are lifted. None when a task left pending for room
        cannot move (the re-pack could make room it would then have to be offered)."""
        it = self.it
        waiting = [k for k in range(self.first_pending, len(it.pending)) if it.pending[k].reason in ROOM]
        if not waiting:
            return waiting
        c, n = it.cluster, it.cluster.size
        room = c.free[:, :n] + glance.lifted
        job_of = {t.task_id: cls for cls, tasks in self.classes for t in tasks}
        hopeful: dict[str, bool] = {}
        out: list[int] = []
        for k in waiting:
            cls = job_of[it.pending[k].task_id]
            placer = it.placers.get(cls.job_id)
            if placer is None or not movable(placer.ctx):
                return None
            if cls.job_id not in hopeful:
                ctx = placer.ctx
                fits = np.all(room >= ctx.req[:, None] - EPS, axis=0) & ctx.static & (c.exclusive[:n] == 0)
                hopeful[cls.job_id] = bool(fits.any())
            if hopeful[cls.job_id]:
                out.append(k)
        return out

    def _worth_a_look(self, glance: _Glance) -> bool:
        """Whether the hosts the tier opened are more than their load needs, counting the room other
        hosts in use offer."""
        c, n = self.it.cluster, self.it.cluster.size
        opened = glance.opened
        if not opened.any():
            return False
        req = np.stack([ctx.req for ctx in glance.ctxs])
        smallest = np.where(req > 0, req, np.inf).min(axis=0)
        smallest[~np.isfinite(smallest)] = 0.0
        free = c.free[:, :n]
        used = c.total[:, :n] - free
        allowed = np.logical_or.reduce([ctx.static for ctx in glance.ctxs]) & (c.exclusive[:n] == 0)
        holes = allowed & (c.task_count[:n] > 0) & ~opened & np.all(free >= smallest[:, None] - EPS, axis=0)
        # Room elsewhere: what the tier's movable tasks hold on hosts it did not open, and the holes —
        # each for as much of the opened hosts' mix of resources as fits in it (a hole with cpu but no
        # memory takes nothing).
        mix = used[:, opened].sum(axis=1)
        dims = mix > EPS
        fits = (free[dims][:, holes] / mix[dims][:, None]).min(axis=0) if dims.any() else np.zeros(0)
        room = mix * float(fits.sum()) + glance.rows[~opened[glance.at]].sum(axis=0)
        need = mix - room
        totals = -np.sort(-c.total[:, :n][:, opened], axis=1)
        bound = 0
        for d in np.flatnonzero(need > EPS):
            covered = np.cumsum(totals[d])
            bound = max(bound, min(int(np.searchsorted(covered, need[d] - EPS)) + 1, covered.size))
        return int(np.count_nonzero(opened)) > bound

    def _items(self, waiting: list[int]) -> list[_Item]:
        """The movable tasks: placed, then pending (up to what their group's limit allows)."""
        it = self.it
        items: list[_Item] = []
        for k in range(self.first, len(it.assignments)):
            a = it.assignments[k]
            placer = it.placers.get(a.footprint.job_id) if a.footprint is not None else None
            if placer is not None and movable(placer.ctx):
                items.append(_Item(placer.ctx.cls, placer.ctx, k, host=it.cluster.index[a.host_id]))
        if not waiting:
            return items
        job_of = {t.task_id: cls for cls, tasks in self.classes for t in tasks}
        room: dict[str, int] = {}
        for k in waiting:
            cls = job_of[it.pending[k].task_id]
            ctx = it.placers[cls.job_id].ctx
            if cls.job_id not in room:
                room[cls.job_id] = self.bucket(cls).limit_room(ctx.req)
            if room[cls.job_id] > 0:  # beyond its group's limit a task stays pending whatever the room
                room[cls.job_id] -= 1
                items.append(_Item(cls, ctx, -1, k))
            else:
                self.over_limit[k] = cls
        return items

    def bucket(self, cls: JobClass) -> Bucket:
        return self.buckets.get(cls.group) or self.buckets[DEFAULT_GROUP]


def movable(ctx: ClassContext) -> bool:
    """Whether a task of the class may go to any host with room its static constraints allow."""
    return not (
        ctx.unique
        or ctx.exclusive
        or ctx.zone_balance
        or ctx.soft_unique
        or ctx.soft_exclusive
        or ctx.soft_zone_balance
        or ctx.soft_static
        or ctx.job_dependent
        or ctx.zone.size
    )


class _Repack:
    def __init__(self, it: Iteration, owner: Pass, items: list[_Item]) -> None:
        self.it = it
        self.owner = owner
        self.items = items
        self.c = it.cluster

    def run(self) -> bool:
        c = self.c
        n = c.size
        hosts = np.array([i.host for i in self.items], dtype=np.int64)
        placed = hosts >= 0
        on_host = np.bincount(hosts[placed], minlength=n)
        touched = np.flatnonzero(on_host)
        opened = touched[c.task_count[touched] == on_host[touched]]  # it holds only movable tasks
        waiting = int(np.count_nonzero(~placed))
        if not waiting and opened.size == 0:
            return False
        columns = _Columns(c, self.items)
        others = self._others(opened, on_host, columns)
        bins = np.concatenate([opened, others])
        if bins.size == 0:
            return False
        index = np.full(n, -1, dtype=np.int64)
        index[bins] = np.arange(bins.size)
        where = np.where(placed, index[np.maximum(hosts, 0)], -1)
        keep = ~placed | (where >= 0)  # tasks on hosts left out of the search stay where they are
        self.items = [i for i, k in zip(self.items, keep.tolist(), strict=True) if k]
        hosts, where, size = hosts[keep], where[keep], columns.size[keep]
        cap = columns.free(bins)
        np.add.at(cap, where[where >= 0], size[where >= 0])  # a bin's room: free, and what it can move
        jobs = {i.cls.job_id: i.ctx for i in self.items}
        kinds = {job: k for k, job in enumerate(jobs)}
        kind = np.array([kinds[i.cls.job_id] for i in self.items], dtype=np.int64)
        allowed = np.stack([_allowed(c, ctx, bins) for ctx in jobs.values()])
        emptiable = np.arange(bins.size) < opened.size
        columns_kept = binding(size, cap)
        state = Bins(cap[:, columns_kept], emptiable, size[:, columns_kept], kind, allowed, where)
        bound = _bound(state)
        before = (waiting, state.used())
        if not waiting and before[1] <= bound:
            return False
        if waiting and np.any(state.size[where < 0].sum(axis=0) > (state.cap - state.load).sum(axis=0) + EPS):
            return False  # more is waiting than all the room there is: nothing to gain
        rng = np.random.default_rng(self.it.tiebreak[:4].view(np.uint32) if n >= 4 else 0)
        per_task, least, most = WORK
        opened_tasks = int(np.count_nonzero(emptiable[where[where >= 0]])) + waiting
        repack(state, rng, work=min(most, max(least, per_task * opened_tasks)), bound=bound)
        after = (int(np.count_nonzero(state.where < 0)), state.used())
        if after >= before:
            return False
        target = np.where(state.where >= 0, bins[np.maximum(state.where, 0)], -1)
        return self._apply([int(h) for h in target])

    def _others(self, opened: Ints, on_host: Ints, columns: _Columns) -> Ints:
        """The other hosts in use the search may fill: room for the smallest task once the movable
        tasks on them are lifted; the roomiest ``HOLES`` of them."""
        c = self.c
        n = c.size
        ok = (c.task_count[:n] > 0) & (c.exclusive[:n] == 0)
        ok &= np.logical_or.reduce([ctx.static for ctx in {id(i.ctx): i.ctx for i in self.items}.values()])
        ok[opened] = False
        free = columns.free(np.arange(n))
        placed = np.flatnonzero([i.host >= 0 for i in self.items])
        np.add.at(free, [self.items[k].host for k in placed], columns.size[placed])
        ok &= np.all(free >= columns.size.min(axis=0) - EPS, axis=1)
        found = np.flatnonzero(ok)
        if found.size > HOLES:
            room = free[found].sum(axis=1)
            found = np.sort(found[np.argpartition(-room, HOLES)[:HOLES]])
        return found

    def _apply(self, target: list[int]) -> bool:
        """Move the tasks to their new hosts, each checked by the real filters; all or nothing."""
        it, c = self.it, self.c
        moving = [k for k, i in enumerate(self.items) if target[k] != i.host and target[k] >= 0]
        lifted = [
            (i.host, it.assignments[i.at].footprint) for i in (self.items[k] for k in moving) if i.host >= 0
        ]
        released = [(h, footprint) for h, footprint in lifted if footprint is not None]
        if len(released) < len(lifted):  # the scheduler always says what it charged; never guess
            return False
        for h, footprint in released:
            c.release(h, footprint)
        landed: list[tuple[int, Assignment]] = []
        for k in moving:
            item, h = self.items[k], target[k]
            assignment = _land(c, item.ctx, h, self._task_id(item))
            if assignment is None:
                for host, a in reversed(landed):
                    if a.footprint is not None:
                        c.release(host, a.footprint)
                for host, footprint in released:
                    c.assign(host, footprint)
                # Undone, yet release/assign round trips may move a host's free and util by the last bit:
                # the placers and the shape index look at these hosts again.
                it.changed.extend(h for h, _ in landed)
                it.changed.extend(h for h, _ in released)
                return False
            landed.append((h, assignment))
        placed: set[int] = set()
        for k, (h, assignment) in zip(moving, landed, strict=True):
            item = self.items[k]
            if item.at >= 0:
                it.assignments[item.at] = assignment
            else:
                it.assignments.append(assignment)
                placed.add(item.waiting)
                self.owner.bucket(item.cls).usage += item.ctx.req
            it.changed.append(h)
            if item.host >= 0:
                it.changed.append(item.host)
        if placed or self.owner.over_limit:
            self._explain_again(placed)
        return True

    def _task_id(self, item: _Item) -> str:
        if item.at >= 0:
            return self.it.assignments[item.at].task_id
        return self.it.pending[item.waiting].task_id

    def _explain_again(self, placed: set[int]) -> None:
        """Drop the pending entries of tasks now placed; explain the rest of their jobs anew (a task
        past its group's limit whose job placed all the limit allowed: the limit)."""
        it = self.it
        again = {i.cls.job_id: i.ctx for i in self.items if i.at < 0 and i.waiting not in placed}
        fresh = {job: explain(ctx) for job, ctx in again.items()}
        job_of = {i.waiting: i.cls.job_id for i in self.items if i.at < 0}
        job_of |= {k: cls.job_id for k, cls in self.owner.over_limit.items()}
        limits = {cls.job_id: self.owner.bucket(cls).group.name for cls in self.owner.over_limit.values()}
        kept: list[Pending] = []
        for k, p in enumerate(it.pending):
            if k in placed:
                continue
            job = job_of.get(k)
            if job in fresh:
                reason, message, rejections = fresh[job]
                p = Pending(p.task_id, reason, message, rejections, p.hosts)
            elif job in limits:
                p = Pending(
                    p.task_id, PendingReason.GROUP_LIMIT, f"capacity group `{limits[job]}` at its limit"
                )
            kept.append(p)
        it.pending[:] = kept


class _Columns:
    """The dimensions a re-pack must respect, scaled so a unit weighs about the same in each: the
    resources the items ask for, ports if any item asks for some, one column of addresses per
    security-group set the items use."""

    def __init__(self, c: Cluster, items: Sequence[_Item]) -> None:
        self.c = c
        req = np.stack([i.ctx.req for i in items])
        self.dims = [int(d) for d in np.flatnonzero(req.max(axis=0) > 0)]
        ports = np.array([i.cls.ports for i in items], dtype=np.float64)
        self.ports = bool(ports.any())
        self.sgs = sorted({i.cls.sg_code for i in items if i.cls.sg_code is not None})
        n = c.size
        scale = [max(float(c.total[d, :n].mean()), EPS) for d in self.dims]
        if self.ports:
            scale.append(max(float((c.port_high[:n] - c.port_low[:n] + 1).mean()), 1.0))
        per = max(float((c.addr_per_if[:n] * c.if_count[:n]).mean()), 1.0)
        scale += [per] * len(self.sgs)
        self.scale = np.array(scale)
        columns = [req[:, self.dims]]
        if self.ports:
            columns.append(ports[:, None])
        if self.sgs:
            sg = np.array([-1 if i.cls.sg_code is None else i.cls.sg_code for i in items])
            columns.append((sg[:, None] == np.array(self.sgs)[None, :]).astype(np.float64))
        self.raw = np.concatenate(columns, axis=1)
        self.size: Floats = self.raw / self.scale

    def free(self, hosts: Ints) -> Floats:
        """What the hosts have free now, scaled (hosts x columns)."""
        c = self.c
        columns = [c.free[self.dims][:, hosts].T]
        if self.ports:
            columns.append(c.ports_free[hosts][:, None].astype(np.float64))
        for sg in self.sgs:
            room = c.sg_room.get(sg)
            free = c.iface_addrs[hosts] + (room[hosts] if room is not None else 0)
            columns.append(free[:, None].astype(np.float64))
        out: Floats = np.concatenate(columns, axis=1) / self.scale
        return out


def _allowed(c: Cluster, ctx: ClassContext, bins: Ints) -> Bools:
    out: Bools = ctx.static[bins] & (c.exclusive[bins] == 0)
    return out


def _bound(state: Bins) -> int:
    """Fewest emptiable bins the items could need: what the other bins cannot hold, in the largest."""
    need = state.size.sum(axis=0) - state.cap[~state.emptiable].sum(axis=0)
    caps = np.sort(state.cap[state.emptiable], axis=0)[::-1]
    bound = 0
    for d in range(state.cap.shape[1]):
        if need[d] <= EPS:
            continue
        covered = np.cumsum(caps[:, d])
        bound = max(bound, min(int(np.searchsorted(covered, need[d] - EPS)) + 1, len(covered)))
    return bound


def _land(c: Cluster, ctx: ClassContext, h: int, task_id: str) -> Assignment | None:
    """Place one task of the class on host ``h`` if the filters allow it (as the class placer does)."""
    if not feasible(Rows(ctx, np.array([h], dtype=np.int64)))[0]:
        return None
    cls = ctx.cls
    ports = c.pick_ports(h, cls.ports) if cls.ports else ()
    interface = address = None
    if cls.sg_code is not None:
        picked = c.pick_address(h, cls.sg_code)
        if picked is None:
            return None
        interface, address = picked
    footprint = cls.footprint(ports, interface, address)
    c.assign(h, footprint, ctx.req)
    ctx.place_one(h)
    return Assignment(task_id, c.ids[h], ports, interface, address, footprint)
