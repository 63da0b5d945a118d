"""Admission: what a principal may submit, and how fast — the seeds' "expect bad actors".

Checked before a job is accepted, in this order: the submission rate (a token bucket per principal),
the owner address against the team, the team's quotas (active jobs and tasks), and the global cap on
pending tasks that keeps the queue from exhausting the master's memory (429 ``queue_full``, as
Kubernetes' priority and fairness answers a full queue). A refused submission changes nothing; accepted
work is never dropped to make room.
"""

from __future__ import annotations

from dataclasses import dataclass

from corral.control.auth import Authority
from corral.control.clock import Clock
from corral.control.config import MasterConfig
from corral.control.state import ClusterState
from corral.domain.auth import Principal, Team
from corral.domain.errors import Forbidden, Throttled
from corral.domain.job import Capacity, Job, JobDescriptor
from corral.domain.validation import validate_descriptor


def demand(descriptor: JobDescriptor) -> int:
    """How many tasks a job asks to have at once."""
    if descriptor.service is not None:
        return descriptor.service.capacity.desired
    return descriptor.batch.size if descriptor.batch is not None else 1


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float


class RateLimiter:
    """Token buckets keyed by principal: ``rate`` per second, holding at most ``burst``."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str, rate: float, burst: int) -> float:
        """0 if a token was taken; otherwise the seconds until one will be there."""
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(burst), now)
        bucket.tokens = min(float(burst), bucket.tokens + (now - bucket.stamp) * rate)
        bucket.stamp = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / rate if rate > 0 else 3600.0


class Admission:
    def __init__(self, state: ClusterState, auth: Authority, config: MasterConfig, clock: Clock) -> None:
        self.state = state
        self.auth = auth
        self.config = config
        self.limiter = RateLimiter(clock)

    def submission(self, principal: Principal, descriptor: JobDescriptor) -> None:
        """Raise Throttled or Forbidden if this submission may not be accepted now."""
        team = self.auth.teams.get(principal.team)
        self._rate(principal, team)  # first: a flood of invalid jobs is a flood too
        validate_descriptor(descriptor)  # then: quotas are about jobs that could run
        if (
            not principal.is_admin
            and team is not None
            and not team.accepts_owner(descriptor.owner.team_email)
        ):
            raise Forbidden(
                f"owner {descriptor.owner.team_email!r} is not an address of team {team.name!r} "
                f"({', '.join(team.emails)})",
                "owner_not_in_team",
                "owner.team_email",
            )
        tasks = demand(descriptor)
        if team is not None:
            self._quota(team, new_jobs=1, new_tasks=tasks)
        self._pending(tasks)

    def resize(self, principal: Principal, job: Job, capacity: Capacity) -> None:
        old = demand(job.descriptor)
        grow = capacity.desired - old
        if grow <= 0:
            return
        team = self.auth.teams.get(job.team)
        if team is not None:
            self._quota(team, new_jobs=0, new_tasks=grow)
        self._pending(grow)

    def _rate(self, principal: Principal, team: Team | None) -> None:
        if principal.is_admin and not self.config.rate_limit_admins:
            return
        rate = (team.submit_rate_per_s if team is not None else 0.0) or self.config.submit_rate_per_s
        burst = (team.submit_burst if team is not None else 0) or self.config.submit_burst
        if rate <= 0:
            return
        wait = self.limiter.take(principal.token_id, rate, max(1, burst))
        if wait > 0:
            raise Throttled(
                "rate_limited",
                f"{principal.name} submits faster than {rate:g}/s (burst {burst}); retry in {wait:.1f}s",
                wait,
            )

    def _quota(self, team: Team, new_jobs: int, new_tasks: int) -> None:
        if not team.max_active_jobs and not team.max_active_tasks:
            return
        jobs = [j for j in self.state.jobs.values() if j.is_active and j.team == team.name]
        if team.max_active_jobs and new_jobs and len(jobs) + new_jobs > team.max_active_jobs:
            raise Forbidden(
                f"team {team.name!r} has {len(jobs)} active jobs, its limit is {team.max_active_jobs}",
                "quota_exceeded",
            )
        if team.max_active_tasks:
            tasks = sum(demand(j.descriptor) for j in jobs)
            if tasks + new_tasks > team.max_active_tasks:
                raise Forbidden(
                    f"team {team.name!r} would have {tasks + new_tasks} active tasks, "
                    f"its limit is {team.max_active_tasks}",
                    "quota_exceeded",
                )

    def _pending(self, new_tasks: int) -> None:
        cap = self.config.max_pending_tasks
        pending = self.state.pending_count
        if cap and pending + new_tasks > cap:
            raise Throttled(
                "queue_full",
                f"{pending} tasks are waiting to be placed; accepting {new_tasks} more would pass the "
                f"cap of {cap}. Nothing was accepted; retry when the queue drains.",
                30.0,
            )
