"""Re-packing items on bins: a bounded search that frees bins, on arrays only (no cluster, no tasks).

Bin packing by "fill the fullest host that fits" (best fit, largest first) leaves a host or two more
than needed; the lower bound is usually reachable. This search closes the gap the way the strongest
simple heuristics do (Alvim et al.'s load balancing; Fleszar & Hindi): take the least-filled bin that
could be freed, pour its items into the other bins even where they overflow, then move and swap items
between an overflowing bin and any other (one or two items each way) to drive the total overflow to
zero. A short tabu list (an item may not go straight back to the bin it left) lets it cross plateaus.
Zero overflow: one bin fewer, try the next; overflow left when the budget runs out: undo that try.

Near the bound, where almost every bin must end up full to the last unit, that search wanders on
plateaus; so it first aims at the bound outright (``complete.py``: bin completion, the bins filled one
at a time, short descents of several widths) with a share of the budget. When no descent fills the
bound's bins, the one that placed the most items is a start to balance from (its last items poured
into its bins), or, if that fails too, to fit the rest into a bin or two and go on from there when that
beats the packing it was given.

Sizes have one column per dimension that must fit (resources, ports, addresses), already scaled by the
caller so a unit weighs the same in every column. Every step is counted, so the work is bounded, and
the same input and seed give the same result.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from corral.scheduler.cluster import Bools, Floats, Ints
from corral.scheduler.complete import complete

EPS = 1e-9
TENURE = 7  # steps an item may not go back to the bin it just left
NOISE = 1e-7  # moves this close count as ties, broken at random (reproducibly for a given seed)
OUT_SINGLES = 8  # of a bin with more items, this many (at random) may leave it in one step ...
OUT_PAIRED = 6  # ... and pairs of the first this many
IN_GAPS = 3  # pairs coming back: each item with the next few of its bin
IN_SWAPS = 2048  # at most this many swaps weighed per step (a sample beyond)
STEP = 2_000  # what a step costs beyond its weighing, in the same units (~0.05 ms)
PATIENCE = 100  # steps a try to free one bin may take
TRIES = 8  # failed tries in a row before it gives up ...
FIRST_TRIES = 3  # ... or this many while it has freed no bin ...
FIRST_WORK = 0.5  # ... or this share of the budget
# The search closes the last bin or two between a good packing and the bound. When the bound is far
# below (the room it counts is mostly fragments on hosts in use) it only pours a bin's items where they
# fit, without the search: that is not a gap swaps close, and trying costs the iteration dearly.
DEEP_GAP = 3  # bins over the bound ...
DEEP_SHARE = 0.02  # ... or this share of the bins in use, at most
COMPLETE_SHARE = 0.3  # of the budget, for aiming at the bound outright (``complete``) first


@dataclass(slots=True)
class Bins:
    """Items on bins: what the search changes (``where``) and what it must respect."""

    cap: Floats  # (bins, dims) room each bin offers the items
    emptiable: Bools  # (bins,) the bin holds nothing but these items: emptying it frees the host
    size: Floats  # (items, dims)
    kind: Ints  # (items,) each item's row in ``allowed`` (items of one job share a row)
    allowed: Bools  # (kinds, bins) where each kind of item may go
    where: Ints  # (items,) the item's bin; -1 while it has none
    load: Floats = field(init=False)  # (bins, dims) what the items on each bin take
    count: Ints = field(init=False)  # (bins,) items on each bin

    def __post_init__(self) -> None:
        self.load = np.zeros_like(self.cap)
        self.count = np.zeros(len(self.cap), dtype=np.int64)
        placed = self.where >= 0
        np.add.at(self.load, self.where[placed], self.size[placed])
        np.add.at(self.count, self.where[placed], 1)

    def move(self, i: int, b: int) -> None:
        a = int(self.where[i])
        if a >= 0:
            self.load[a] -= self.size[i]
            self.count[a] -= 1
        if b >= 0:
            self.load[b] += self.size[i]
            self.count[b] += 1
        self.where[i] = b

    def reset(self, where: Ints) -> None:
        self.where = where.copy()
        self.__post_init__()

    def used(self) -> int:
        """Emptiable bins in use: what the search lowers."""
        return int(np.count_nonzero(self.emptiable & (self.count > 0)))


def binding(size: Floats, cap: Floats) -> list[int]:
    """The columns the search must watch. It may leave out a column no bin can overflow (all the items
    together fit in the smallest room: addresses, often ports) and one that overflows only where
    another does (a multiple of it with at least as much room: memory asked in proportion to cpu)."""
    total = size.sum(axis=0)
    keep = [j for j in range(size.shape[1]) if total[j] > cap[:, j].min() + EPS]
    if len(keep) < 2:
        return keep
    # Columns that are multiples of each other have the same shape once scaled to their largest item.
    top = size[:, keep].max(axis=0)
    shape = np.ascontiguousarray(np.round(size[:, keep] / np.where(top > EPS, top, 1.0), 9).T)
    out: list[int] = []
    first: dict[bytes, list[int]] = {}
    for j, g in zip(keep, (row.tobytes() for row in shape), strict=True):
        implied = False
        for i in first.get(g, []):  # an earlier column of the same shape, kept
            r = size[:, j].max() / size[:, i].max()
            if np.all(cap[:, j] >= r * cap[:, i] - EPS):
                implied = True
                break
        if not implied:
            out.append(j)
            first.setdefault(g, []).append(j)
    return out


def repack(bins: Bins, rng: np.random.Generator, *, work: int, bound: int = 0) -> int:
    """Place the unplaced items where they fit, then free bins; returns the steps taken.

    Bounded by ``work``: the moves weighed, times the columns, plus ``STEP`` a step. Stops early once
    only ``bound`` emptiable bins are in use (nothing to gain), and searches only when that is near
    (``DEEP_GAP``). A try to free a bin gets ``PATIENCE`` steps; it gives up after ``TRIES`` failed tries
    in a row — after ``FIRST_TRIES``, or ``FIRST_WORK`` of the budget, while it has freed none (the
    packing is then likely as tight as it gets). When it searches, ``COMPLETE_SHARE`` of the budget goes
    first to packing into ``bound`` bins outright.
    """
    search = _Search(bins, rng, int(work * FIRST_WORK))
    search.place_unplaced()
    gap = bins.used() - bound
    deep = gap <= max(DEEP_GAP, DEEP_SHARE * bins.used())
    if deep and bins.used() > bound:
        done = complete(bins, bound, int(work * COMPLETE_SHARE), rng)
        search.work += done.spent
        search.budget += int(done.spent * FIRST_WORK)  # its share of what is left
        if done.where is not None:
            bins.reset(done.where)
        elif done.nearest is not None:
            search.start_from(done.nearest, done.bins)
    failed: set[int] = set()
    freed = False
    while not search.spent() and bins.used() > bound and len(failed) < (TRIES if freed else FIRST_TRIES):
        victims = np.flatnonzero(bins.emptiable & (bins.count > 0))
        victims = victims[[v not in failed for v in victims.tolist()]]
        if victims.size == 0:
            break
        v = int(victims[np.argmin(bins.load[victims].sum(axis=1))])  # the least filled
        saved = bins.where.copy()
        live = (bins.count > 0) | ~bins.emptiable
        live[v] = False
        if search.pour(np.flatnonzero(bins.where == v), live) and search.balance(
            live, PATIENCE if deep else 0
        ):
            failed.clear()  # the bins around changed: an earlier failure may succeed now
            freed, search.budget = True, work
        else:
            bins.reset(saved)
            failed.add(v)
    search.fit_unplaced()
    return search.steps


class _Search:
    def __init__(self, bins: Bins, rng: np.random.Generator, budget: int) -> None:
        self.bins = bins
        self.rng = rng
        self.steps = 0
        self.work = 0
        self.budget = budget
        m = len(bins.size)
        # Row ``m`` of each is "no item": a set of one item has -1 in its second slot, which indexes it.
        self.size = np.concatenate([bins.size, np.zeros((1, bins.size.shape[1]))])
        self.anywhere = bool(bins.allowed.all())
        self.allowed = np.concatenate([bins.allowed, np.ones((1, len(bins.cap)), dtype=bool)])
        self.kind = np.append(bins.kind, len(bins.allowed))
        self.tabu_until = np.zeros(m + 1, dtype=np.int64)  # an item may not go back before this step ...
        self.tabu_bin = np.full(m + 1, -1, dtype=np.int64)  # ... to the bin it left

    def spent(self) -> bool:
        return self.work >= self.budget

    def place_unplaced(self) -> None:
        """Unplaced items into bins in use (swapping others around if need be), else into new bins."""
        bins = self.bins
        waiting = np.flatnonzero(bins.where < 0)
        if waiting.size == 0:
            return
        saved = bins.where.copy()
        live = (bins.count > 0) | ~bins.emptiable
        if not (self.pour(waiting, live) and self.balance(live, PATIENCE)):
            bins.reset(saved)
            self.fit_unplaced()

    def start_from(self, nearest: Ints, target: Ints) -> None:
        """Start from the completion that placed the most items, if it leads somewhere better: the rest
        poured into the ``target`` bins it filled and balanced, else fitted where they fit best."""
        bins = self.bins
        saved, before = bins.where.copy(), (int(np.count_nonzero(bins.where < 0)), bins.used())
        bins.reset(nearest)
        live = np.zeros(len(bins.cap), dtype=bool)
        live[target] = True
        if self.pour(np.flatnonzero(bins.where < 0), live) and self.balance(live, PATIENCE):
            return
        bins.reset(nearest)
        self.fit_unplaced()
        if (int(np.count_nonzero(bins.where < 0)), bins.used()) >= before:
            bins.reset(saved)

    def fit_unplaced(self) -> None:
        """Each unplaced item, largest first, where it fits best (a bin in use before an idle one)."""
        bins = self.bins
        everywhere = np.ones(len(bins.cap), dtype=bool)
        for i in self._largest_first(np.flatnonzero(bins.where < 0)):
            b = self._best_fit(int(i), everywhere)
            if b >= 0:
                bins.move(int(i), b)

    def _largest_first(self, items: Ints) -> Ints:
        order: Ints = items[np.argsort(-self.bins.size[items].sum(axis=1), kind="stable")]
        return order

    def _best_fit(self, i: int, usable: Bools) -> int:
        """The bin in use that ``i`` fills best (an idle bin only if none fits), or -1."""
        bins = self.bins
        after = bins.load + bins.size[i]
        fits = usable & bins.allowed[bins.kind[i]] & np.all(after <= bins.cap + EPS, axis=1)
        if not fits.any():
            return -1
        in_use = fits & ((bins.count > 0) | ~bins.emptiable)
        pool = in_use if in_use.any() else fits
        slack = np.where(pool, (bins.cap - after).sum(axis=1), np.inf)
        return int(np.argmin(slack))

    def pour(self, items: Ints, live: Bools) -> bool:
        """Move ``items`` into live bins, each where it overflows least (then fills best)."""
        bins = self.bins
        for i in self._largest_first(items):
            ok = live & bins.allowed[bins.kind[i]]
            if not ok.any():
                return False
            after = bins.load + bins.size[i]
            growth = _overflow(after, bins.cap) - _overflow(bins.load, bins.cap)
            slack = np.abs((bins.cap - after).sum(axis=1))
            key = np.where(ok, growth * 1e6 + slack, np.inf)
            bins.move(int(i), int(np.argmin(key)))
        return True

    def balance(self, live: Bools, patience: int) -> bool:
        """Move and swap items among live bins until none overflows (True), or ``patience`` steps or the
        budget run out."""
        bins = self.bins
        best = np.inf
        until = self.steps + patience
        while True:
            over = _overflow(bins.load, bins.cap)
            over[~live] = 0.0
            total = float(over.sum())
            if total <= EPS:
                return True
            if (
                self.steps >= until
                or self.spent()
                or not self._best_move(live, over, total, min(best, total))
            ):
                return False
            best = min(best, total)
            self.steps += 1

    def _best_move(self, live: Bools, over: Floats, total: float, best: float) -> bool:
        """Apply the best move between one overflowing bin and another (False: none is allowed)."""
        bins, step = self.bins, self.steps
        full = np.flatnonzero(over > EPS)
        a = int(full[self.rng.integers(full.size)])
        where = bins.where
        outs = _subsets(np.flatnonzero(where == a), self.rng)
        others = np.flatnonzero(live)
        others = others[others != a]
        placed = np.flatnonzero((where >= 0) & (where != a))
        placed = placed[live[where[placed]]]
        ins, in_bin = _in_sets(where, placed, others, self.rng)
        self.work += STEP + outs.shape[0] * ins.shape[0] * bins.cap.shape[1]
        out_size = self.size[outs].sum(axis=1)
        in_size = self.size[ins].sum(axis=1)
        change = in_size[None, :, :] - out_size[:, None, :]  # what ``a`` gains (and the other bin loses)
        delta = _overflow(bins.load[a] + change, bins.cap[a])
        delta += _overflow(bins.load[in_bin] - change, bins.cap[in_bin])
        delta -= over[a] + over[in_bin]
        ok = np.ones(delta.shape, dtype=bool)
        if not self.anywhere:  # what leaves ``a`` must be allowed where it goes, and the other way
            ok &= self.allowed[self.kind[outs]][:, :, in_bin].all(axis=1)
            ok &= self.allowed[self.kind[ins], a].all(axis=1)[None, :]
        tabu = self.tabu_until > step
        if tabu.any():  # an item going back to the bin it left, unless that beats the best seen
            back = (tabu[outs][:, :, None] & (self.tabu_bin[outs][:, :, None] == in_bin)).any(axis=1)
            back |= (tabu[ins] & (self.tabu_bin[ins] == a)).any(axis=1)[None, :]
            ok &= ~back | (total + delta < best - EPS)
        score = np.where(ok, delta, np.inf)
        low = float(score.min()) if score.size else np.inf
        if not np.isfinite(low):
            return False
        ties = np.flatnonzero(score.ravel() <= low + NOISE)
        o, j = np.unravel_index(int(ties[self.rng.integers(ties.size)]), score.shape)
        b = int(in_bin[j])
        for i in outs[o]:
            if i >= 0:
                self._move(int(i), b, a)
        for i in ins[j]:
            if i >= 0:
                self._move(int(i), a, b)
        return True

    def _move(self, i: int, to: int, left: int) -> None:
        self.bins.move(i, to)
        self.tabu_until[i] = self.steps + TENURE
        self.tabu_bin[i] = left


def _overflow(load: Floats, cap: Floats) -> Floats:
    out: Floats = np.maximum(load - cap, 0.0).sum(axis=-1)
    return out


def _subsets(items: Ints, rng: np.random.Generator) -> Ints:
    """Each item and each pair of them, as rows of two (-1: none); of a bin with many items, some."""
    if items.size > OUT_SINGLES:
        items = rng.permutation(items)[:OUT_SINGLES]
    first, second = _pairs(min(items.size, OUT_PAIRED))
    n, p = items.size, first.size
    out: Ints = np.full((n + p, 2), -1, dtype=np.int64)
    out[:n, 0] = items
    out[n:, 0] = items[first]
    out[n:, 1] = items[second]
    return out


@functools.lru_cache(maxsize=16)
def _pairs(n: int) -> tuple[Ints, Ints]:
    first, second = np.triu_indices(n, 1)
    return first, second


def _in_sets(where: Ints, placed: Ints, others: Ints, rng: np.random.Generator) -> tuple[Ints, Ints]:
    """What may come back into the overflowing bin from each other bin: nothing (a plain move), one of
    its items, or two of them (of bins with many, some pairs); with the bin each set comes from. When
    there are very many, a sample of the swaps."""
    order = placed[np.argsort(where[placed], kind="stable")]
    host = where[order]
    firsts, seconds = [order], [np.full(order.size, -1, dtype=np.int64)]
    for gap in range(1, IN_GAPS + 1):  # items of one bin are adjacent in ``order``
        same = host[gap:] == host[:-gap]
        if not same.any():
            break
        firsts.append(order[:-gap][same])
        seconds.append(order[gap:][same])
    first, second = np.concatenate(firsts), np.concatenate(seconds)
    if first.size > IN_SWAPS:
        pick = np.sort(rng.choice(first.size, IN_SWAPS, replace=False))
        first, second = first[pick], second[pick]
    sets: Ints = np.full((others.size + first.size, 2), -1, dtype=np.int64)
    sets[others.size :, 0] = first
    sets[others.size :, 1] = second
    bins: Ints = np.concatenate([others, where[first]])
    return sets, bins
