"""The fast path for one task of a class: hosts grouped by shape, each group in order of its host part.

A full scan scores every host for every class: for an iteration of many one-task classes, most of its
time. When a class's score is ``separable`` (``Scoring``: the affine scorers, image locality and soft
constraints; no job spreading; zone terms, if any, that do not depend on where the class may go —
``ZoneTerms.flat``: none of the job's tasks placed yet), a host's score is

    ((((host part + jitter) + task part of the host's shape) + image share if the host ran the image)
        + soft share x the soft constraints it meets) + its zone's term

one float32 addition at a time. The host part (weight x utilization now) and the jitter do not depend on
the class; the task part depends on the host only through its totals — its *shape*, of which a fleet has
a handful (its instance types). Rounding is monotone, so among the hosts of one shape that did not run
the image, a host with a larger host part + jitter never scores lower than the same sum with the most
the soft constraints can add to a host of that shape (each static one any of its hosts meets, the job's
rules as met) and the largest zone term: that sum bounds the hosts past the head.

``ShapeIndex`` keeps, for one iteration, the hosts that could take a task of any class queued (schedulable,
no exclusive task, room for the least any of them asks), in order of shape, then host part + jitter
(largest first), then index. A class's best host is found by scoring a few candidates — with the real
filters and the real scorer arithmetic — the head of each shape's order, every host changed since the
order was built (its place there is stale) and every host that ran the class's image; then, per shape,
the first host past the head bounds the score of all the others of that shape (and the most any of them
has free, whether they could take the task at all), and where the bound reaches the best score the head
grows and the candidates are scored again. Every host that could reach the best score is
among the candidates, scored bitwise as the full scan scores it, so the answer is the full scan's,
ties included (the lowest index among equal scores). Candidates are checked for resources and static
constraints all at once; the rules that seldom turn a host away (ports, network, exclusive, unique, zone
balance) only for the best few, one by one in plain Python (``_first_fit``), then all at once.

The order is built once ``WARM`` one-task classes were placed (for fewer, scanning is cheaper) — at the
first one if the tier has that many one-task classes queued (``expect``) — and again once ``REBUILD``
changed hosts are candidates of their own, or when a class asks for less than the order was built for.
With no feasible candidate, or past ``MOST`` candidates, the index gives up: the caller scans.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from corral.scheduler.cluster import Bools, Cluster, Floats, Ints, R
from corral.scheduler.context import EPS, ClassContext
from corral.scheduler.filters import feasible
from corral.scheduler.rows import Rows
from corral.scheduler.scorers import Scoring
from corral.scheduler.snapshot import JobClass, PendingTask

ENABLED = True  # the fast path on (tests and the benchmark turn it off to compare)
HEAD = 32  # hosts of each shape scored first (grows where a shape's best lies deeper)
DEEPEST = 256  # the head a shape keeps for the next classes at most (one class may look deeper)
REBUILD = 128  # changed hosts outside the heads (candidates of their own): past this, order again
MOST = 4096  # candidates: past this many the full scan is as cheap
WARM = 8  # one-task placements an iteration scans in full before it orders hosts (ordering costs ~20 scans)

NEG = np.float32(-np.inf)
_NO_HOSTS: Ints = np.zeros(0, dtype=np.int64)


@dataclass(frozen=True, slots=True)
class Shapes:
    of: Ints  # per host, its shape
    inv_total: Floats  # float32, resource x shape: 1 / total, bitwise as each of the shape's hosts has it


# Fleets seen lately and their shapes (most recent first): forks share their totals, so most iterations
# reuse the groups; a few entries serve the master's fleet and its autoscaler's trial fleets in turn.
_recent: list[tuple[Ints, Shapes]] = []
RECENT = 4


def shapes(cluster: Cluster) -> Shapes:
    """The hosts grouped by their ``inv_total`` column (all the task part reads of a host), bitwise."""
    n = cluster.size
    bits = cluster.inv_total[:, :n].view(np.uint32)
    recent = list(_recent)  # a snapshot: another thread may be scheduling too
    for seen, found in recent:
        if seen.shape == bits.shape and np.array_equal(seen, bits):
            return found
    columns = np.ascontiguousarray(cluster.inv_total[:, :n].T)
    rows = columns.view(np.dtype((np.void, columns.itemsize * R))).ravel()
    _, first, of = np.unique(rows, return_index=True, return_inverse=True)
    found = Shapes(of.ravel().astype(np.int64), np.ascontiguousarray(columns[first].T))
    _recent[:] = [(bits.copy(), found), *recent[: RECENT - 1]]
    return found


def floor(classes: Iterable[tuple[JobClass, list[PendingTask]]]) -> Floats:
    """Per resource, the least free room any of the classes needs on a host (-inf: one asks for none)."""
    asked = [(r.cpu, r.memory_mb, r.disk_mb, r.network_mbps, r.gpu) for r in (c.request for c, _ in classes)]
    if not asked:
        return np.full(R, np.inf)
    a = np.array(asked, dtype=np.float64)
    out: Floats = np.where((a > 0).all(axis=0), a.min(axis=0) - EPS, -np.inf)
    return out


class ShapeIndex:
    """One iteration's host parts and hosts by shape; ``best`` answers for one task of a class."""

    def __init__(self, cluster: Cluster, tiebreak: Floats, changed: list[int]) -> None:
        self.cluster = cluster
        self.tiebreak = tiebreak
        self.changed = changed  # the iteration's hosts changed so far, in order (appended by others)
        self.queue: Iterable[tuple[JobClass, list[PendingTask]]] = ()  # classes to serve next (their floor)
        self.weights: tuple[tuple[int, float], ...] | None = None  # what ``host`` is summed with (none yet)
        self.host: Floats = np.zeros(0, dtype=np.float32)  # per host: host part + jitter, kept current
        self.shapes = Shapes(_NO_HOSTS, np.zeros((R, 0), dtype=np.float32))
        self.tables: dict[int, tuple[Scoring, Floats]] = {}  # per class: its task part per shape, once
        self.floor: Floats = np.full(R, np.inf)  # the order holds hosts with this much free (none yet)
        self.least: list[float] = self.floor.tolist()
        self.hosts: Ints = _NO_HOSTS  # the order: shape, then host part + jitter (largest first), then index
        self.keys: Floats = np.zeros(0, dtype=np.float32)  # host part + jitter of ``hosts`` when ordered
        self.room: Floats = np.zeros((R, 0))  # per resource, the most free from each place in the order on
        self.starts: Ints = _NO_HOSTS  # per shape, where its hosts begin and end in ``hosts``
        self.ends: Ints = _NO_HOSTS
        self.head: Ints = _NO_HOSTS  # per shape, how many of its first hosts are candidates
        self.heads = _Heads.of(self, self.head, self.ends)
        self.in_heads: Bools = np.zeros(0, dtype=bool)  # per host: one of ``heads.hosts``
        self.seen = 0  # how far into ``changed`` the index has caught up
        self.dirty: set[int] = set()  # hosts changed since the order was built
        self.extra: list[int] = []  # those of them not in the heads (candidates of their own)
        self.extra_hosts: Ints = _NO_HOSTS
        self.images: dict[str, Ints] = {}  # image -> the hosts that had run it when first asked
        self.asked = 0  # one-task placements asked for so far
        self.coming = 0  # one-task classes queued when the tier's serving began (``expect``)
        self.pinned: dict[tuple[tuple[str, str], ...], Bools] = {}  # hard attribute constraints -> ``_held``
        # ... -> the heads they narrow (with the heads they were narrowed from)
        self.pinned_heads: dict[tuple[tuple[str, str], ...], tuple[_Heads, _Heads]] = {}
        self.buffer: Ints = np.zeros(64, dtype=np.int64)  # holds ``extra_hosts``
        self.soft_met: dict[tuple[tuple[str, str], ...], Ints] = {}  # soft constraints -> ``_soft``

    def expect(self, classes: Iterable[tuple[JobClass, list[PendingTask]]]) -> None:
        """A tier is about to be served: with ``WARM`` one-task classes or more queued, the order pays
        for itself, so there is no reason to scan the first few in full."""
        self.coming = sum(1 for _, tasks in classes if len(tasks) == 1)

    def affine(self, scoring: Scoring, rows: Rows) -> Floats:
        """The rows' affine score plus jitter (a fresh float32 array): (host part + jitter) + task part
        of the host's shape x (1 + tasks ahead) + constant. The placement scores every row this way, so
        the fast path's few candidates score bitwise as in a full scan."""
        table = self._table(scoring)
        sel = rows.sel
        task: Floats = table.take(self.shapes.of if isinstance(sel, slice) else self.shapes.of[sel])
        if isinstance(rows.extra, np.ndarray):
            task *= (1 + rows.extra).astype(np.float32)
        elif rows.extra:
            task *= np.float32(1 + rows.extra)
        if scoring.constant:
            task += np.float32(scoring.constant)
        task += self.host[rows.sel]
        return task

    def best(
        self, ctx: ClassContext, scoring: Scoring, zones: tuple[Ints, Floats] | None = None
    ) -> int | None:
        """The host a full scan would pick for one task of the class; None when the index cannot tell
        cheaply (then the caller scans). Only for a ``separable`` score; ``zones``: its zone terms (each
        host's slot, each slot's term), when they add anything."""
        if not ENABLED or self.cluster.size == 0 or not scoring.separable:
            return None
        self.asked += 1
        if self.asked <= WARM and self.coming < WARM:  # a few among many larger ones: not worth an order
            return None
        table = self._table(scoring)
        if scoring.constant:
            table = table + np.float32(scoring.constant)
        if not all(map(operator.ge, ctx.need.tolist(), self.least)):
            self._order(np.minimum(np.minimum(self.floor, ctx.need), floor(self.queue)))
        elif len(self.extra) >= REBUILD:
            self._order(self.floor)
        extra = [self.extra_hosts] if self.extra else []
        if ctx.image is not None:
            extra.append(self._image(ctx))
        # Pinned to some hosts: shapes with none of them are out of the question.
        heads = self._pinned(ctx) if ctx.static_masks else self.heads
        of, host = self.shapes.of, self.host
        # What the soft constraints and the zone terms may add to a host past the heads, at most.
        soft = self._soft(ctx, scoring)
        most = NEG if zones is None else zones[1].max()
        while True:
            cand = np.concatenate((heads.hosts, *extra)) if extra else heads.hosts
            if cand.size == 0 or cand.size > MOST:
                return None
            s = table.take(of.take(cand))
            s += host.take(cand)
            scoring.finish(s, Rows(ctx, cand))
            if zones is not None:  # as the placement adds them to its local scores
                s += zones[1].take(zones[0].take(cand))
            b = _first_fit(ctx, cand, s)
            if b < 0:
                return None  # nothing feasible in the heads (a pinned or a large class): scan
            top = s[b]
            grow = heads.short(ctx, table, top, soft, most)
            if grow is None:
                break
            head = heads.head.copy()
            head[grow] *= 2
            heads = _Heads.of(self, head, heads.ends)
        if heads.head is not self.head and not ctx.static_masks:  # not one pinned class's depth
            self._deepen(heads.head)
        equal = s == top
        if np.count_nonzero(equal) > 1:  # equal scores: the lowest index that passes every filter, as the
            tied = sorted(cand.take(equal.nonzero()[0]).tolist())  # full scan's argmax picks
            return int(next(h for h in tied if _fits(ctx, h)))
        return int(cand[b])

    def _soft(self, ctx: ClassContext, scoring: Scoring) -> Floats | None:
        """Per shape, the most the class's soft constraints add to a host of that shape (as ``finish``
        adds it): the static ones a host of the shape meets (any host, worked out once per set of soft
        constraints), the job's rules (``unique_host``, ``exclusive_host``) as met. None: no soft term."""
        if not (ctx.soft_static or ctx.soft_unique or ctx.soft_exclusive):
            return None
        key = tuple(sorted(ctx.cls.soft.items()))
        met = self.soft_met.get(key)
        if met is None:
            count = self.shapes.inv_total.shape[1]
            met = np.full(count, ctx.soft_unique + ctx.soft_exclusive, dtype=np.int64)
            for mask in ctx.soft_static:
                met += np.bincount(self.shapes.of[mask[: self.cluster.size]], minlength=count) > 0
            self.soft_met[key] = met
        total = len(ctx.soft_static) + ctx.soft_unique + ctx.soft_exclusive + ctx.soft_zone_balance
        return scoring.soft_part(met, total)

    def _pinned(self, ctx: ClassContext) -> _Heads:
        """The heads of the shapes with a host the class's hard attribute constraints allow (worked out
        once per set of constraints while the heads stay as they are)."""
        key = tuple(sorted((name, ctx.cls.hard[name]) for name in ctx.static_masks))
        found = self.pinned_heads.get(key)
        if found is None or found[0] is not self.heads:
            held = self._held(key, ctx)
            found = self.pinned_heads[key] = (
                self.heads,
                _Heads.of(self, self.head, np.where(held, self.ends, self.starts)),
            )
        return found[1]

    def _table(self, scoring: Scoring) -> Floats:
        """The class's task part per shape, worked out once (every row of the class reads the same
        numbers); the host parts current for its weights."""
        self._sync(scoring)
        found = self.tables.get(id(scoring))
        if found is None:
            found = self.tables[id(scoring)] = (scoring, scoring.task_table(self.shapes.inv_total))
        return found[1]

    def _sync(self, scoring: Scoring) -> None:
        """The host parts for the class's weights, current: summed anew for other weights (the order
        with them: none until asked), else caught up with the hosts changed since."""
        if scoring.host_dims == self.weights:
            self._catch_up(scoring)
            return
        n = self.cluster.size
        self.shapes = shapes(self.cluster)
        self.tables, self.pinned = {}, {}  # (the same numbers again, but per these shapes)
        self.host = scoring.host_part(self.cluster.util, slice(0, n), n)
        self.host += self.tiebreak[:n]
        self.weights = scoring.host_dims
        self.seen = len(self.changed)
        self.floor = np.full(R, np.inf)  # no order yet
        self.least = self.floor.tolist()
        self.in_heads = np.zeros(n, dtype=bool)
        self.dirty, self.extra, self.extra_hosts = set(), [], _NO_HOSTS
        self.pinned_heads, self.soft_met = {}, {}

    def _held(self, key: tuple[tuple[str, str], ...], ctx: ClassContext) -> Bools:
        """Per shape, whether any of its hosts meets the class's hard attribute constraints ``key`` (they
        hold for the whole iteration: worked out once per set of constraints)."""
        found = self.pinned.get(key)
        if found is None:
            count = self.shapes.inv_total.shape[1]
            found = self.pinned[key] = np.bincount(self.shapes.of[ctx.static], minlength=count) > 0
        return found

    def _image(self, ctx: ClassContext) -> Ints:
        """The hosts that ran the class's image: as when first asked since the order was built (a host
        that ran it since has changed, so it is a candidate anyway)."""
        found = self.images.get(ctx.cls.image)
        if found is None:
            found = self.images[ctx.cls.image] = _NO_HOSTS if ctx.image is None else ctx.image.nonzero()[0]
        return found

    def _catch_up(self, scoring: Scoring) -> None:
        """Score the host part of the hosts changed since; they are candidates until the next order."""
        fresh = self.changed[self.seen :]
        if not fresh:
            return
        self.seen = len(self.changed)
        util = self.cluster.util
        if len(fresh) == 1:  # one host placed on: float32 scalars, summed as the columns are
            h = fresh[0]
            self.host[h] = scoring.host_part(util, h, 1) + self.tiebreak[h]
        else:
            idx = np.array(sorted(set(fresh)), dtype=np.int64)
            part = scoring.host_part(util, idx, idx.size)
            part += self.tiebreak[idx]
            self.host[idx] = part
        added = False
        for h in fresh:
            if h not in self.dirty:
                self.dirty.add(h)
                if not self.in_heads[h]:
                    self.extra.append(h)
                    added = True
        if added:
            self._extra_hosts()

    def _extra_hosts(self) -> None:
        """``extra`` as an array: written into a buffer as it grows (one host a class, mostly)."""
        k, known = len(self.extra), self.extra_hosts.size
        if k > self.buffer.size:
            self.buffer = np.zeros(max(2 * k, 64), dtype=np.int64)
            known = 0
        if known < k and self.extra_hosts.base is self.buffer:
            self.buffer[known:k] = self.extra[known:]
        else:
            self.buffer[:k] = self.extra
        self.extra_hosts = self.buffer[:k]

    def _deepen(self, head: Ints) -> None:
        """Keep a deeper head where the class needed one: the next classes likely need it too."""
        self._heads(np.minimum(np.maximum(self.head, head), DEEPEST))
        self.extra = [h for h in self.extra if not self.in_heads[h]]
        self.extra_hosts = _NO_HOSTS
        self._extra_hosts()

    def _heads(self, head: Ints) -> None:
        self.in_heads[self.heads.hosts] = False
        self.head = head
        self.heads = _Heads.of(self, head, self.ends)
        self.in_heads[self.heads.hosts] = True

    def _order(self, least: Floats) -> None:
        """Order the hosts with at least ``least`` free (and schedulable, without an exclusive task)."""
        c, n = self.cluster, self.cluster.size
        live = c.schedulable[:n] & (c.exclusive[:n] == 0)
        live &= (c.free[:, :n] >= least[:, None]).all(axis=0)
        idx = np.flatnonzero(live)
        shape = self.shapes.of[idx]
        # By shape, then host part + jitter, largest first (float64 holds both exactly), then index.
        order = np.argsort(shape * 4.0 - self.host[idx], kind="stable")
        self.hosts = idx[order]
        self.keys = self.host[self.hosts]
        count = self.shapes.inv_total.shape[1]
        bounds = np.searchsorted(shape[order], np.arange(count + 1))
        self.starts, self.ends = bounds[:-1], bounds[1:]
        free = c.free[:, self.hosts]
        for a, b in zip(self.starts.tolist(), self.ends.tolist(), strict=True):
            if b > a:  # the most free at or after each place, within the shape
                free[:, a:b] = np.maximum.accumulate(free[:, a:b][:, ::-1], axis=1)[:, ::-1]
        self.room = free
        self.in_heads = np.zeros(n, dtype=bool)
        self.head = self.head if self.head.size == count else np.full(count, HEAD, dtype=np.int64)
        self.heads = _Heads.of(self, self.head, self.ends)
        self.in_heads[self.heads.hosts] = True
        self.floor = least
        self.least = least.tolist()
        self.dirty = set()
        self.extra = []
        self.extra_hosts = _NO_HOSTS
        self.images = {}  # a host that ran an image since the lists were made is no longer a changed one


TRIES = 8  # candidates checked one by one for the rules before the rest are checked all at once


def _first_fit(ctx: ClassContext, cand: Ints, s: Floats) -> int:
    """Where in ``cand`` the best score ``s`` of a host that passes every filter is (-1: none); the others'
    scores set to -inf as far as it looked. Resources and the static constraints turn most hosts away:
    they are checked for all at once; the rules (ports, network, exclusive, unique) seldom do: checked
    for the best few, one by one, and then for all at once."""
    # ``fits_resources`` (numpy's reductions called directly: the methods add a Python call each).
    ok: Bools = np.logical_and.reduce(ctx.cluster.free.take(cand, axis=1) >= ctx.need[:, None], axis=0)
    ok &= ctx.static.take(cand)
    np.putmask(s, ~ok, NEG)
    for _ in range(TRIES):
        b = int(s.argmax())
        if s[b] == NEG:
            return -1
        if _fits(ctx, int(cand[b])):
            return b
        s[b] = NEG
    np.putmask(s, ~feasible(Rows(ctx, cand)), NEG)
    b = int(s.argmax())
    return -1 if s[b] == NEG else b


def _fits(ctx: ClassContext, h: int) -> bool:
    """``feasible`` for host ``h`` but resources and static constraints (``_first_fit`` has checked those),
    in plain Python: the same rules as ``filters``, for one host."""
    c, cls = ctx.cluster, ctx.cls
    if (ctx.exclusive or c.exclusive_tasks) and (
        c.exclusive[h] != 0 or (ctx.exclusive and c.task_count[h] != 0)
    ):
        return False
    if ctx.unique and ctx.job_on_host[h] != 0:
        return False
    if ctx.zone_balance and ctx.zone.size:
        z = int(ctx.zone[h])
        count = int(ctx.zone_count[z]) if z >= 0 else 0
        if not (count <= ctx.zone_least and count < ctx.zone_limit):
            return False
    if cls.ports and c.ports_free[h] < cls.ports:
        return False
    if cls.sg_code is not None:
        room = c.sg_room.get(cls.sg_code)
        if c.iface_addrs[h] <= 0 and (room is None or room[h] <= 0):
            return False
    return True


@dataclass(frozen=True, slots=True)
class _Heads:
    """The first ``head`` hosts of each shape's order (up to ``ends``), and what bounds the rest."""

    head: Ints
    ends: Ints
    hosts: Ints  # the heads, one shape after another
    next_key: Floats  # per shape: host part + jitter of the first host past the head (-inf: none)
    next_room: Floats  # per resource and shape: the most free of any host past the head

    @classmethod
    def of(cls, index: ShapeIndex, head: Ints, ends: Ints) -> _Heads:
        stop = np.minimum(index.starts + head, ends)
        parts = [index.hosts[a:b] for a, b in zip(index.starts.tolist(), stop.tolist(), strict=True)]
        hosts = np.concatenate(parts) if parts else _NO_HOSTS
        more = stop < ends
        if not more.any():
            return cls(head, ends, hosts, np.zeros(0, dtype=np.float32), np.zeros((R, 0)))
        at = np.minimum(stop, index.hosts.size - 1)
        return cls(head, ends, hosts, np.where(more, index.keys[at], NEG), index.room[:, at])

    def short(
        self, ctx: ClassContext, task: Floats, top: np.float32, soft: Floats | None, most: np.float32
    ) -> Ints | None:
        """The shapes whose heads are too short to be sure of ``top`` (the best score among the
        candidates): a host past the head might reach it and have the room. None: the heads do.
        ``soft``, ``most``: the most the soft constraints (per shape) and the zone terms may add."""
        if not self.next_key.size:
            return None
        # The bound, added up as a host's score is: rounding is monotone, image hosts are candidates.
        bound = self.next_key + task
        if soft is not None:
            bound += soft
        if most != NEG:
            bound += most
        could = bound >= top
        if not np.logical_or.reduce(could):
            return None
        could &= (self.next_room >= ctx.need[:, None]).all(axis=0)
        return np.flatnonzero(could) if could.any() else None
