"""The scheduler's pure core: ``schedule(snapshot, profile, rng) -> Plan``.

It decides where pending tasks go and, for each task it leaves pending, why. It never does I/O and
never keeps time: the snapshot carries ``now``, and randomness comes in as ``rng``. The cluster is kept
as arrays (``cluster.py``); filters and scorers work on whole columns (``filters/``, ``scorers/``);
tasks of one job are placed as one class (``placement.py``) in queue order (``queue.py``).
"""

from corral.scheduler.cluster import Cluster, HostSpec, Placement
from corral.scheduler.plan import Assignment, Pending, PendingReason, Plan
from corral.scheduler.profile import Mode, Profile, Weights
from corral.scheduler.schedule import schedule
from corral.scheduler.snapshot import JobClass, PendingTask, Snapshot

__all__ = [
    "Assignment",
    "Cluster",
    "HostSpec",
    "JobClass",
    "Mode",
    "Pending",
    "PendingReason",
    "PendingTask",
    "Placement",
    "Plan",
    "Profile",
    "Snapshot",
    "Weights",
    "schedule",
]
