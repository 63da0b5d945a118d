"""``schedule(snapshot, profile, rng) -> Plan``: one scheduling iteration, purely computational.

It forks the snapshot's cluster, serves the queue (tiers, DRF buckets, jobs, tasks), places each job's
tasks as a class, and explains every task it leaves pending. The same snapshot, profile and seed give
the same plan.
"""

from __future__ import annotations

import numpy as np

from corral.domain.capacity import TIER_ORDER
from corral.scheduler.cluster import Bools, Cluster, vector
from corral.scheduler.context import build_context
from corral.scheduler.explain import explain
from corral.scheduler.improve import Pass
from corral.scheduler.placement import ClassPlacer
from corral.scheduler.plan import Assignment, Pending, PendingReason, Plan
from corral.scheduler.profile import Mode, Profile, Weights
from corral.scheduler.queue import Bucket, TierQueue, buckets_by_tier, pack_order
from corral.scheduler.shapes import ShapeIndex
from corral.scheduler.snapshot import JobClass, PendingTask, Snapshot

JITTER = 1e-6  # breaks exact ties between equally good hosts, reproducibly for a given seed (float32 scores)


def schedule(snapshot: Snapshot, profile: Profile, rng: np.random.Generator) -> Plan:
    iteration = _Iteration(snapshot.cluster.fork(), rng)
    ready: list[PendingTask] = []
    for task in snapshot.tasks:
        if task.ready_at > snapshot.now:
            iteration.pending.append(_waiting(task, snapshot.now))
        else:
            ready.append(task)
    tiers = buckets_by_tier(snapshot, ready)
    for tier in TIER_ORDER:
        iteration.serve(tiers.get(tier, []), profile.for_tier(tier), profile.modes.get(tier) is Mode.PACK)
    return Plan(tuple(iteration.assignments), tuple(iteration.pending))


def _waiting(task: PendingTask, now: float) -> Pending:
    wait = task.ready_at - now
    if task.backoff_s <= 0:
        return Pending(task.task_id, PendingReason.NOT_READY, f"retry delay: ready in {wait:.1f}s")
    message = (
        f"job crash-looping: {task.job_failures} failures in a row; next attempt not before "
        f"{clock_time(task.ready_at)} (backoff {task.backoff_s:g}s, {wait:.1f}s from now)"
    )
    return Pending(task.task_id, PendingReason.CRASH_LOOP, message)


def clock_time(at: float) -> str:
    """``at`` (seconds since the epoch) as a UTC time of day, worked out without a clock."""
    seconds = int(at) % 86400
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d} UTC"


class _Iteration:
    """One iteration's working state: the forked cluster, the class placers, what was decided."""

    def __init__(self, cluster: Cluster, rng: np.random.Generator) -> None:
        self.cluster = cluster
        n = cluster.size
        self.tiebreak = (rng.random(n, dtype=np.float32) * JITTER).astype(np.float32)
        self.schedulable = cluster.schedulable[:n]
        self.total = cluster.total[:, :n][:, self.schedulable].sum(axis=1) if n else np.zeros(5)
        self.assignments: list[Assignment] = []
        self.pending: list[Pending] = []
        self.changed: list[int] = []  # hosts changed so far, in order (placers catch up on resume)
        self.seen: dict[str, int] = {}  # placer -> how far into ``changed`` it has caught up
        self.placers: dict[str, ClassPlacer] = {}
        self.shapes = ShapeIndex(cluster, self.tiebreak, self.changed)  # one-task placements (``shapes.py``)
        self.masks: dict[tuple[str, str], Bools | None] = {}  # hard/soft attribute masks, per (name, value)

    def serve(self, buckets: list[Bucket], weights: Weights, pack: bool) -> None:
        """Serve one tier's buckets in DRF order until every class is placed or explained."""
        if buckets and pack:
            n = self.cluster.size
            free = self.cluster.free[:, :n][:, self.schedulable].sum(axis=1) if n else np.zeros(5)
            pack_order(buckets, free, self.total)
        self.shapes.expect(pair for b in buckets for pair in b.classes)
        repack = Pass(self, buckets) if buckets and pack else None
        queue = TierQueue(buckets, self.total)
        while (turn := queue.next()) is not None:
            bucket, rival = turn
            self._turn(bucket, rival, weights)
            queue.put_back(bucket)
        if repack is not None:
            repack.run()  # this iteration's tasks onto fewer hosts (they do not run yet: moving is free)

    def _turn(self, bucket: Bucket, rival: tuple[float, float, str] | None, weights: Weights) -> None:
        """Place the bucket's next class for as long as its turn lasts."""
        cls, tasks = bucket.classes[0]
        placer = self.placers.get(cls.job_id)
        room = 1 << 30
        if bucket.limit is not None:
            room = bucket.limit_room(vector(cls.request) if placer is None else placer.ctx.req)
        if room == 0:
            message = f"capacity group `{bucket.group.name}` at its limit"
            self.pending.extend(Pending(t.task_id, PendingReason.GROUP_LIMIT, message) for t in tasks)
            bucket.classes.popleft()
            return
        placer = self._placer(cls, weights) if placer is None else self._resume(placer, cls.job_id)
        self.shapes.queue = bucket.classes  # what is queued sets how little room the index must keep
        req = placer.ctx.req  # the request as a vector, as ``vector(cls.request)`` (built once per class)
        count = len(tasks) if rival is None else bucket.turn_length(req, rival, self.total)
        count = min(len(tasks), room, count)
        landed = placer.place(count)
        ids, changed = self.cluster.ids, self.changed
        for task, spot in zip(tasks, landed, strict=False):
            self.assignments.append(
                Assignment(
                    task.task_id, ids[spot.host], spot.ports, spot.interface, spot.address, spot.footprint
                )
            )
            changed.append(spot.host)
        self.seen[cls.job_id] = len(changed)
        if len(landed) == 1:
            bucket.usage += req  # (x 1: the same sums)
        elif landed:
            bucket.usage += req * len(landed)
        rest = tasks[len(landed) :]
        if len(landed) < count:
            reason, message, rejections = explain(placer.ctx)
            hosts = self.cluster.size
            self.pending.extend(Pending(t.task_id, reason, message, rejections, hosts) for t in rest)
            bucket.classes.popleft()
            placer.close()
        elif not rest:
            bucket.classes.popleft()
            placer.close()  # its scores are done with: their memory serves the next class
        else:
            bucket.classes[0] = (cls, rest)

    def _placer(self, cls: JobClass, weights: Weights) -> ClassPlacer:
        """The class's placer, built on first use."""
        ctx = build_context(
            self.cluster,
            cls,
            need_zones=weights.job_spread_zone > 0,
            job_spread=weights.job_spread_host > 0,
            masks=self.masks,
        )
        placer = self.placers[cls.job_id] = ClassPlacer(ctx, weights, self.tiebreak, self.shapes)
        return placer

    def _resume(self, placer: ClassPlacer, job_id: str) -> ClassPlacer:
        """A class placed before: caught up with other classes' placements since."""
        placer.catch_up(self.changed[self.seen[job_id] :])
        return placer
