"""Packing a target number of bins outright: bin completion, the bins filled one at a time.

The overflow search in ``repack.py`` frees a bin by pushing items around a packing it is given; near the
bound, where almost every bin must end up full to the last unit, it wanders on plateaus. Korf's bin
completion aims at the target instead: fill the bins one at a time, each with the largest item left and
a set of others that leaves no room for any item still waiting (a *maximal* completion: adding an item
never hurts), trying first the sets that waste least. The room all the target bins offer beyond what the
items need is the *slack budget*; a bin that wastes more than what is left of it cannot be part of a
packing into the target, so the search backtracks there (Martello and Toth's bound, used as a prune).
A packing the bound allows is found early in a descent or, mostly, not at all: a descent that fails is
lost among the last bins, where backtracking on rarely helps. So descents are short (a few checks per
item) and several, each of another width (how many of a bin's least wasteful sets it tries), then the
same again with ties shuffled: their sum of checks bounds the work. One that runs out hands back the
descent that placed the most items, a start for the overflow search in ``repack.py``.

Items of one kind and the same size are one group with a count, so equal items are never tried in two
orders. Every column must fit; the budget is kept per column.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from corral.scheduler.cluster import Ints

if TYPE_CHECKING:  # repack calls this module
    from corral.scheduler.repack import Bins

EPS = 1e-9
TIE = 1e-7  # wastes this close are equal (rounding in the rooms)

# Each check (does this group fit what is left of the bin) costs this many of ``repack``'s work units.
CHECK = 15
SETUP = 2  # checks a bin costs beyond its scans (its lists, the bisection)
# Descents: the widths tried in turn (then again, ties shuffled), each with this many checks per item.
WIDTHS = (1, 3, 8, 2, 12, 5)
PER_ITEM = 60
LEAST = 2_000  # checks a descent may make, at least


@dataclass(frozen=True, slots=True)
class Completed:
    """What the descents found: a packing into the target (``where``), else the one that placed the most
    items (``nearest``, -1 for the rest); the bins they fill (``bins``), and the work spent."""

    where: Ints | None
    nearest: Ints | None
    bins: Ints
    spent: int


def complete(bins: Bins, target: int, work: int, rng: np.random.Generator) -> Completed:
    """Where each item goes so that only ``target`` emptiable bins are used (and every bin that is not
    emptiable keeps within its room), within ``work``.

    Descents of the ``WIDTHS`` in turn (the ``width`` least wasteful completions of each bin are tried,
    the rest dropped: a narrow search backtracks sooner, higher up), each cut short after ``PER_ITEM``
    checks per item; from the second round on, ties in waste are shuffled by ``rng``."""
    search = _Completion(bins, target)
    chosen = np.array(search.order, dtype=np.int64)
    if not search.possible():
        return Completed(None, None, chosen, 0)
    limit = max(LEAST, PER_ITEM * len(bins.size))
    spent, k = 0, 0
    while spent + CHECK * limit // 2 <= work:
        width = WIDTHS[k % len(WIDTHS)]
        where = search.run(width, min(limit, (work - spent) // CHECK), rng if k >= len(WIDTHS) else None)
        spent += (SETUP + search.checks) * CHECK  # never nothing: a descent with no bins is over at once
        if where is not None:
            return Completed(where, None, chosen, spent)
        k += 1
    if not search.nearest:
        return Completed(None, None, chosen, spent)
    nearest, chosen = search.where(search.nearest)
    return Completed(None, nearest, chosen, spent)


class _Completion:
    def __init__(self, bins: Bins, target: int) -> None:
        self.bins = bins
        self.width = 1
        self.limit = 0
        self.checks = 0
        self.rng: np.random.Generator | None = None
        self.nearest: list[list[int]] = []  # the completions of the descent that placed the most items
        self.most = 0
        dims = bins.cap.shape[1]
        self.dims = range(dims)
        # The bins to fill: every bin that is not emptiable (its room is there anyway), the least roomy
        # first (the largest item that fits the hole, or nothing), then the roomiest ``target`` emptiable
        # ones (those in use first), the roomiest first.
        room = bins.cap.sum(axis=1)
        holes = np.flatnonzero(~bins.emptiable)
        emptiable = np.flatnonzero(bins.emptiable)
        pick = emptiable[np.lexsort((-room[emptiable], bins.count[emptiable] == 0))][:target]
        chosen = np.concatenate([holes[np.argsort(room[holes], kind="stable")], pick])
        self.order = [int(b) for b in chosen]
        # Groups: items of one kind and one size, the largest first.
        key = np.concatenate([bins.kind[:, None].astype(np.float64), np.round(bins.size, 9)], axis=1)
        uniq, group_of, counts = np.unique(key, axis=0, return_inverse=True, return_counts=True)
        group_of = group_of.reshape(-1)
        sizes = bins.size[np.unique(group_of, return_index=True)[1]]  # exact, not the rounded key
        by_size = np.argsort(-sizes.sum(axis=1), kind="stable")
        rank = np.empty_like(by_size)
        rank[by_size] = np.arange(by_size.size)
        self.group_of = rank[group_of]
        self.size = [tuple(float(x) for x in sizes[g]) for g in by_size]
        self.kind = [int(uniq[g, 0]) for g in by_size]
        self.counts = [int(counts[g]) for g in by_size]
        self.left = list(self.counts)
        self.total = [sum(x) for x in self.size]
        self.below = [-x for x in self.total]  # ascending, for bisect
        self.single = dims == 1
        self.usable: dict[int, list[bool]] = {}
        self.items = [np.flatnonzero(self.group_of == g) for g in range(by_size.size)]
        self.cap = [tuple(float(x) for x in bins.cap[b]) for b in self.order]
        budget = bins.cap[chosen].sum(axis=0) - bins.size.sum(axis=0)
        self.budget = [float(x) for x in budget]

    def possible(self) -> bool:
        return all(x >= -EPS for x in self.budget)

    def run(self, width: int, limit: int, rng: np.random.Generator | None) -> Ints | None:
        """One descent: ``width`` completions a bin at most, ``limit`` checks; ties shuffled by ``rng``."""
        self.width, self.limit, self.checks, self.rng = width, limit, 0, rng
        self.left = list(self.counts)
        # One frame per bin filled: its completions (as group counts) and the one being tried.
        frames: list[tuple[list[tuple[float, list[int]]], int]] = []
        budget = list(self.budget)
        placed, everything = 0, len(self.bins.size)
        while True:
            level = len(frames)
            if placed == everything:
                return self.where([options[tried][1] for options, tried in frames])[0]
            if placed > self.most:
                self.most = placed
                self.nearest = [options[tried][1] for options, tried in frames]
                self.checks += level // 8
            if level < len(self.order) and self.checks < self.limit:
                options = self._completions(self.order[level], self.cap[level], budget)
                frames.append((options, -1))
            elif not frames:
                return None
            # Next option of the deepest frame that has one; frames out of options are dropped.
            while frames:
                options, tried = frames[-1]
                if tried >= 0:
                    self._take(options[tried][1], budget, self.cap[len(frames) - 1], -1)
                    placed -= len(options[tried][1])
                if self.checks >= self.limit or tried + 1 >= len(options):
                    frames.pop()
                    if self.checks >= self.limit and not frames:
                        return None
                    continue
                frames[-1] = (options, tried + 1)
                self._take(options[tried + 1][1], budget, self.cap[len(frames) - 1], 1)
                placed += len(options[tried + 1][1])
                break
            else:
                return None

    def _take(self, picked: list[int], budget: list[float], cap: tuple[float, ...], sign: int) -> None:
        """Put a completion in its bin (``sign`` 1) or take it out (-1): counts and budget."""
        waste = list(cap)
        for g in picked:
            self.left[g] -= sign
            for d in self.dims:
                waste[d] -= self.size[g][d]
        for d in self.dims:
            budget[d] -= sign * waste[d]

    def _completions(
        self, b: int, cap: tuple[float, ...], budget: list[float]
    ) -> list[tuple[float, list[int]]]:
        """The maximal sets of waiting items the bin can hold wasting no more than the budget, the least
        wasteful first (at most ``width``); each holds the largest item the bin can take."""
        ok = self._usable(b)
        size, left, below, dims, n = self.size, self.left, self.below, self.dims, len(self.size)
        room = list(cap)
        total = sum(room)
        # Groups are in order of size (summed over columns): one that fits has a sum no larger than
        # the room's, so the scan starts where the sums drop below it (in one column, exactly the fits).
        k = scan = bisect.bisect_left(below, -total - EPS)
        while k < n and not (left[k] > 0 and ok[k] and self._fits(size[k], room)):
            k += 1
        self.checks += SETUP + k - scan
        if k == n:  # nothing fits: the bin stays empty, its room wasted
            return [(total, [])] if all(cap[d] <= budget[d] + EPS for d in dims) else []
        found: list[tuple[float, list[int]]] = []
        picked: list[int] = []
        # Depth-first over the groups in order (a group may be taken again while it has items left):
        # ``stack`` holds where each level resumes its scan; the first level takes the largest item.
        stack = [k]
        while True:
            if k < n:
                left[k] -= 1
                picked.append(k)
                for d in dims:
                    room[d] -= size[k][d]
                total -= self.total[k]
                stack[-1] = k  # resume here after this branch, then move past it
                stack.append(k)
            else:
                # A leaf: nothing more fits from the scan's start on; maximal if nothing at all fits.
                if all(room[d] <= budget[d] + EPS for d in dims) and self._maximal(ok, room):
                    found.append((total, list(picked)))
                    if len(found) >= self.width:
                        break
                stack.pop()
                if len(stack) == 1 or self.checks >= self.limit:
                    break
                k = picked.pop()
                left[k] += 1
                for d in dims:
                    room[d] += size[k][d]
                total += self.total[k]
                stack[-1] += 1
            k = scan = max(stack[-1], bisect.bisect_left(below, -total - EPS))
            while k < n and not (left[k] > 0 and ok[k] and self._fits(size[k], room)):
                k += 1
            self.checks += 1 + k - scan
        for k in picked:  # put back what the last set took
            left[k] += 1
        if self.rng is not None and len(found) > 1:
            found = [found[int(j)] for j in self.rng.permutation(len(found))]
        found.sort(key=lambda option: round(option[0] / TIE))  # ties: the order found (larger items first)
        found = found[: self.width]
        if not self.bins.emptiable[b] and all(cap[d] <= budget[d] + EPS for d in dims):
            found.append((sum(cap), []))  # a hole may also stay as it is, last
        return found

    def _usable(self, b: int) -> list[bool]:
        """Which groups may go to bin ``b`` (worked out once a bin)."""
        ok = self.usable.get(b)
        if ok is None:
            allowed = self.bins.allowed[:, b].tolist()
            ok = self.usable[b] = [bool(allowed[g]) for g in self.kind]
        return ok

    def _fits(self, size: tuple[float, ...], room: list[float]) -> bool:
        """Whether an item fits the room; in one column the scan's start has already made sure."""
        return self.single or all(size[d] <= room[d] + EPS for d in self.dims)

    def _maximal(self, ok: list[bool], room: list[float]) -> bool:
        for k in range(len(self.size) - 1, -1, -1):  # the smallest first: the likeliest to fit
            self.checks += 1
            if self.left[k] > 0 and ok[k]:
                return not all(self.size[k][d] <= room[d] + EPS for d in self.dims)
        return True

    def where(self, picked: list[list[int]]) -> tuple[Ints, Ints]:
        """The items' bins when the ``k``-th bin in order holds the groups ``picked[k]`` (-1: none), and
        the bins that stand for those in order.

        Items of a group are interchangeable: a bin takes those it holds already first. So are bins with
        the same room and the same kinds allowed (emptiable ones): each set goes to the bin alike that
        holds most of it, so that few tasks move."""
        bins = self.bins
        on: dict[tuple[int, int], list[int]] = {}  # (bin, group) -> its items there
        holders: dict[int, list[int]] = {}  # group -> bins holding some of it
        for i, (b, g) in enumerate(zip(bins.where.tolist(), self.group_of.tolist(), strict=True)):
            if (b, g) not in on:
                on[b, g] = []
                holders.setdefault(g, []).append(b)
            on[b, g].append(i)
        picked = picked + [[] for _ in range(len(picked), len(self.order))]
        home = self._alike(picked, on, holders)
        where = np.full(len(bins.size), -1, dtype=np.int64)
        rest: list[tuple[int, int]] = []
        for b, groups in zip(home, picked, strict=True):
            for g in groups:  # an item of the group already there, else one from elsewhere (below)
                there = on.get((b, g))
                if there:
                    where[there.pop()] = b
                else:
                    rest.append((b, g))
        for b, g in rest:
            where[int(next(i for i in self.items[g] if where[i] < 0))] = b
        return where, np.array(home, dtype=np.int64)

    def _alike(
        self, picked: list[list[int]], on: dict[tuple[int, int], list[int]], holders: dict[int, list[int]]
    ) -> list[int]:
        """A bin for each set: of the emptiable bins alike (same room, same kinds allowed) not yet given
        one, the one holding most of the set; the bin in order if none holds any."""
        bins = self.bins
        kinds = np.ascontiguousarray(bins.allowed.T)
        cls: dict[int, bytes] = {}
        free: dict[bytes, list[int]] = {}
        for b in np.flatnonzero(bins.emptiable).tolist():
            cls[b] = np.round(bins.cap[b], 9).tobytes() + kinds[b].tobytes()  # alike to the last bits
            free.setdefault(cls[b], []).append(b)
        taken: set[int] = set()
        home: list[int] = []
        for level, groups in enumerate(picked):
            b = self.order[level]
            if b in cls:
                need: dict[int, int] = {}
                for g in groups:
                    need[g] = need.get(g, 0) + 1
                best, most = -1, 0
                for c in {c for g in need for c in holders.get(g, ())}:
                    if cls.get(c) == cls[b] and c not in taken:
                        held = sum(min(n, len(on.get((c, g), ()))) for g, n in need.items())
                        if held > most:
                            best, most = c, held
                if best < 0:
                    best = b if b not in taken else next(c for c in free[cls[b]] if c not in taken)
                b = best
            taken.add(b)
            home.append(b)
        return home
