"""The queue: tiers, then capacity-group buckets in dominant-resource-share order, then jobs (oldest
first), then tasks (by index). Critical is served strictly before flex; within a tier the group
furthest below its guarantee goes next, for as many tasks as keep it there (DRF against guarantees).
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from corral.domain.capacity import DEFAULT_GROUP, CapacityGroup, Tier, default_group
from corral.domain.resources import Resources
from corral.scheduler.cluster import Floats, vector
from corral.scheduler.snapshot import JobClass, PendingTask, Snapshot

INF = math.inf


@dataclass(slots=True)
class Bucket:
    group: CapacityGroup
    usage: Floats
    guarantee: Floats
    limit: Floats | None  # 0 in a dimension: that dimension is not limited
    classes: deque[tuple[JobClass, list[PendingTask]]] = field(default_factory=deque)

    def key(self, cluster_total: Floats) -> tuple[float, float, str]:
        return (_share(self.usage, self.guarantee), _share(self.usage, cluster_total), self.group.name)

    def limit_room(self, req: Floats) -> int:
        """Tasks of size ``req`` the group may still place under its hard limit."""
        if self.limit is None:
            return 1 << 30
        dims = (self.limit > 0) & (req > 0)
        if not dims.any():
            return 1 << 30
        room = (self.limit[dims] - self.usage[dims] + 1e-9) / req[dims]
        return max(0, int(np.floor(room.min())))

    def turn_length(self, req: Floats, rival: tuple[float, float, str] | None, cluster_total: Floats) -> int:
        """Tasks this group places before its share passes the rival's (DRF interleaving)."""
        if rival is None:
            return 1 << 30
        own = self.key(cluster_total)
        levels = ((own[0], self.guarantee, rival[0]), (own[1], cluster_total, rival[1]))
        for own_share, base, rival_share in levels:
            if own_share != rival_share:
                if own_share > rival_share:
                    return 1
                if math.isinf(rival_share):
                    return 1 << 30
                dims = (base > 0) & (req > 0)
                if not dims.any():
                    continue
                allowed = (rival_share * base[dims] - self.usage[dims]) / req[dims]
                return max(1, int(np.floor(allowed.min())) + 1)
        return 1


def _share(usage: Floats, base: Floats) -> float:
    dims = base > 0
    if not dims.any():
        return INF
    return float((usage[dims] / base[dims]).max())


def buckets_by_tier(snapshot: Snapshot, tasks: list[PendingTask]) -> dict[Tier, list[Bucket]]:
    """The ready tasks, grouped by job (in job order) and by capacity group (unknown groups: default)."""
    by_job: dict[str, list[PendingTask]] = {}
    for task in tasks:
        if task.job_id in snapshot.jobs:
            by_job.setdefault(task.job_id, []).append(task)
    classes = sorted((snapshot.jobs[j] for j in by_job), key=lambda c: (c.created_at, c.job_id))
    buckets: dict[str, Bucket] = {}
    for cls in classes:
        name = cls.group if cls.group in snapshot.groups or cls.group == DEFAULT_GROUP else DEFAULT_GROUP
        bucket = buckets.get(name)
        if bucket is None:
            group = snapshot.groups.get(name) or default_group()
            usage = snapshot.usage.get(name)
            bucket = buckets[name] = Bucket(
                group,
                vector(usage) if usage is not None else np.zeros(5),
                vector(group.guarantee),
                vector(group.limit) if group.limit is not None else None,
            )
        bucket.classes.append((cls, sorted(by_job[cls.job_id], key=lambda t: (t.order, t.task_id))))
    out: dict[Tier, list[Bucket]] = {}
    for bucket in buckets.values():
        out.setdefault(bucket.group.tier, []).append(bucket)
    return out


def pack_order(buckets: list[Bucket], free: Floats, cluster_total: Floats) -> bool:
    """In pack mode, order the jobs that will all be placed anyway largest first.

    Within a bucket, the jobs at the head of its fair order (oldest first) whose demand — with all the
    tier's other buckets ask — fits in what is free are placed this iteration whatever their order, so
    no one waits longer if they go largest first: big tasks before small ones leave small holes that
    small tasks fill (best-fit decreasing; the packing pass, ``improve.py``, then tightens it). The
    jobs after that prefix keep their fair order behind it, so when room is short the oldest jobs
    still come first, and DRF still decides between groups. Returns whether any bucket was reordered.
    """
    # Each class's request (class x resource) and demand (x its tasks); running totals per bucket, added
    # one class after another (``cumsum``), as the head below grows.
    requests = [
        np.array([_row(cls.request) for cls, _ in b.classes], dtype=np.float64).reshape(-1, len(free))
        for b in buckets
    ]
    counts = [np.array([len(tasks) for _, tasks in b.classes], dtype=np.float64) for b in buckets]
    running = [np.cumsum(r * c[:, None], axis=0) for r, c in zip(requests, counts, strict=True)]
    totals = [run[-1] if run.shape[0] else np.zeros_like(free) for run in running]
    everything = sum(totals, np.zeros_like(free))
    share = np.divide(1.0, cluster_total, out=np.zeros_like(cluster_total), where=cluster_total > 0)
    reordered = False
    for bucket, request, run, total in zip(buckets, requests, running, totals, strict=True):
        room = free - (everything - total) + 1e-9
        fits = (run <= room).all(axis=1)
        head = int(fits.argmin()) if not fits.all() else len(fits)  # the first class that would not fit
        if head < 2:
            continue
        classes = list(bucket.classes)
        largest = (request[:head] * share).max(axis=1).tolist()
        order = sorted(range(head), key=lambda i: (-largest[i], classes[i][0].created_at))
        bucket.classes = deque([classes[i] for i in order] + classes[head:])
        reordered = True
    return reordered


def _row(r: Resources) -> tuple[float, int, int, int, int]:
    return (r.cpu, r.memory_mb, r.disk_mb, r.network_mbps, r.gpu)


class TierQueue:
    """Buckets of one tier in DRF order; ``next()`` gives the bucket to serve and its rival's key."""

    def __init__(self, buckets: list[Bucket], cluster_total: Floats) -> None:
        self.total = cluster_total
        self.buckets = buckets
        # One bucket has no rival: no shares to compute, no heap to keep.
        self.single = len(buckets) == 1
        self.heap = (
            [((0.0, 0.0, ""), 0)]
            if self.single
            else [(b.key(cluster_total), i) for i, b in enumerate(buckets)]
        )
        heapq.heapify(self.heap)

    def next(self) -> tuple[Bucket, tuple[float, float, str] | None] | None:
        if not self.heap:
            return None
        _, i = heapq.heappop(self.heap)
        rival = self.heap[0][0] if self.heap else None
        return self.buckets[i], rival

    def put_back(self, bucket: Bucket) -> None:
        if bucket.classes and self.single:
            self.heap.append(((0.0, 0.0, ""), 0))
        elif bucket.classes:
            i = self.buckets.index(bucket)
            heapq.heappush(self.heap, (bucket.key(self.total), i))
