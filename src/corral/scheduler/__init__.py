"""The scheduler's pure core: ``schedule(snapshot, profile, rng) -> Plan``.

It decides where pending tasks go and, for each task it leaves pending, why. It never does I/O and
never keeps time: the snapshot carries ``now``, and randomness comes in as ``rng``.
"""

from corral.scheduler.plan import Assignment, Pending, PendingReason, Plan
from corral.scheduler.profile import Profile
from corral.scheduler.schedule import schedule
from corral.scheduler.snapshot import HostOffer, Snapshot, TaskRequest

__all__ = [
    "Assignment",
    "HostOffer",
    "Pending",
    "PendingReason",
    "Plan",
    "Profile",
    "Snapshot",
    "TaskRequest",
    "schedule",
]
