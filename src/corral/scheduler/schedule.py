"""``schedule(snapshot, profile, rng) -> Plan``: one scheduling iteration, purely computational.

It forks the snapshot's cluster, serves the queue (tiers, DRF buckets, jobs, tasks), places each job's
tasks as a class, and explains every task it leaves pending. The same snapshot, profile and seed give
the same plan.
"""

from __future__ import annotations

import numpy as np

from corral.domain.capacity import TIER_ORDER
from corral.scheduler.cluster import vector
from corral.scheduler.context import build_context
from corral.scheduler.explain import explain
from corral.scheduler.placement import ClassPlacer
from corral.scheduler.plan import Assignment, Pending, PendingReason, Plan
from corral.scheduler.profile import Mode, Profile
from corral.scheduler.queue import TierQueue, buckets_by_tier, pack_order
from corral.scheduler.snapshot import PendingTask, Snapshot

JITTER = 1e-6  # breaks exact ties between equally good hosts, reproducibly for a given seed (float32 scores)


def schedule(snapshot: Snapshot, profile: Profile, rng: np.random.Generator) -> Plan:
    cluster = snapshot.cluster.fork()
    n = cluster.size
    tiebreak = (rng.random(n, dtype=np.float32) * JITTER).astype(np.float32)
    assignments: list[Assignment] = []
    pending: list[Pending] = []
    ready: list[PendingTask] = []
    for task in snapshot.tasks:
        if task.ready_at > snapshot.now:
            wait = task.ready_at - snapshot.now
            pending.append(
                Pending(task.task_id, PendingReason.NOT_READY, f"retry delay: ready in {wait:.1f}s")
            )
        else:
            ready.append(task)
    schedulable = cluster.schedulable[:n]
    cluster_total = cluster.total[:, :n][:, schedulable].sum(axis=1) if n else np.zeros(5)
    changed: list[int] = []  # hosts changed by this iteration, in order (placers catch up on resume)
    seen: dict[str, int] = {}  # placer -> how far into ``changed`` it has caught up
    placers: dict[str, ClassPlacer] = {}
    tiers = buckets_by_tier(snapshot, ready)
    for tier in TIER_ORDER:
        weights = profile.for_tier(tier)
        buckets = tiers.get(tier, [])
        if buckets and profile.modes.get(tier) is Mode.PACK:
            free = cluster.free[:, :n][:, schedulable].sum(axis=1) if n else np.zeros(5)
            pack_order(buckets, free, cluster_total)
        queue = TierQueue(buckets, cluster_total)
        while (turn := queue.next()) is not None:
            bucket, rival = turn
            cls, tasks = bucket.classes[0]
            req = vector(cls.request)
            room = bucket.limit_room(req)
            if room == 0:
                message = f"capacity group `{bucket.group.name}` at its limit"
                pending.extend(Pending(t.task_id, PendingReason.GROUP_LIMIT, message) for t in tasks)
                bucket.classes.popleft()
                queue.put_back(bucket)
                continue
            placer = placers.get(cls.job_id)
            if placer is None:
                ctx = build_context(
                    cluster,
                    cls,
                    need_zones=weights.job_spread_zone > 0,
                    job_spread=weights.job_spread_host > 0,
                )
                placer = placers[cls.job_id] = ClassPlacer(ctx, weights, tiebreak)
            else:
                placer.catch_up(changed[seen[cls.job_id] :])
            count = min(len(tasks), room, bucket.turn_length(req, rival, cluster_total))
            landed = placer.place(count)
            for task, spot in zip(tasks, landed, strict=False):
                assignments.append(
                    Assignment(task.task_id, cluster.ids[spot.host], spot.ports, spot.interface, spot.address)
                )
                changed.append(spot.host)
            seen[cls.job_id] = len(changed)
            bucket.usage += req * len(landed)
            rest = tasks[len(landed) :]
            if len(landed) < count:
                reason, message, rejections = explain(placer.ctx)
                pending.extend(Pending(t.task_id, reason, message, rejections, n) for t in rest)
                bucket.classes.popleft()
            elif not rest:
                bucket.classes.popleft()
            else:
                bucket.classes[0] = (cls, rest)
            queue.put_back(bucket)
    return Plan(tuple(assignments), tuple(pending))
