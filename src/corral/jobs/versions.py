"""A service's versions, as pure functions from the job to the job that results: update, promote, roll back.

An update that changes the container adds a numbered version and starts a rollout to it; one that changes
only how the job is updated or disrupted (its strategy, its budget, its labels) changes the job in place. A
rollback is a rollout to an earlier version. Each raises ConflictError (stable code) when it cannot apply.
"""

from __future__ import annotations

from dataclasses import replace

from corral.domain.errors import ConflictError, ValidationError
from corral.domain.job import Job, JobDescriptor, JobEvent, JobVersion
from corral.domain.rollout import Rollout, RolloutPhase, UpdateStrategy, VersionOutcome
from corral.domain.states import JobState

MAX_VERSIONS_KEPT = 20
DEFAULT_STRATEGY = UpdateStrategy()
IMMUTABLE = ("owner", "application", "capacity_group", "job_group")


def strategy_of(job: Job) -> UpdateStrategy:
    return job.descriptor.update_strategy or DEFAULT_STRATEGY


def versions_of(job: Job) -> tuple[JobVersion, ...]:
    """The job's versions, oldest first; a job never updated has one, its submitted container."""
    if job.versions:
        return job.versions
    return (JobVersion(1, job.descriptor.container, job.created_at, job.submitted_by, "submitted"),)


def update(job: Job, new: JobDescriptor, now: float, by: str = "") -> tuple[Job, bool]:
    """The job after ``new`` replaces its descriptor, and whether a new version (and a rollout) began."""
    _require_service(job, "be updated")
    old = job.descriptor
    if new.service is None:
        raise ValidationError("job_type_immutable", "a service job stays a service job", "service")
    for name in IMMUTABLE:
        if getattr(new, name) != getattr(old, name):
            raise ValidationError(
                "immutable_field", f"{name} cannot change in an update: submit a new job instead", name
            )
    assert old.service is not None
    # Capacity and enabled are changed by resize and enable/disable, never by an update's file.
    service = replace(new.service, capacity=old.service.capacity, enabled=old.service.enabled)
    descriptor = replace(new, service=service)
    if descriptor == old:
        return job, False
    if descriptor.container == old.container:
        return _record(replace(job, descriptor=descriptor), now, f"updated (no new version){_by(by)}"), False
    return _new_version(job, descriptor, now, by, "update"), True


def rollback(job: Job, to: int | None, now: float, by: str = "") -> Job:
    """Roll back to version ``to`` (default: the last healthy version before the current one)."""
    _require_service(job, "be rolled back")
    kept = versions_of(job)
    if to is None:
        earlier = [v for v in kept if v.number < job.version and v.outcome is not VersionOutcome.FAILED]
        healthy = [v for v in earlier if v.outcome is VersionOutcome.HEALTHY]
        choices = healthy or earlier
        if not choices:
            raise ConflictError("no_earlier_version", f"job {job.id} has no earlier version to roll back to")
        to = choices[-1].number
    target = next((v for v in kept if v.number == to), None)
    if target is None:
        numbers = ", ".join(str(v.number) for v in kept)
        raise ConflictError("unknown_version", f"job {job.id} keeps versions {numbers}, not {to}", "to")
    if to == job.version:
        raise ConflictError("already_current", f"version {to} is already the current version of {job.id}")
    descriptor = replace(job.descriptor, container=target.container)
    return _new_version(job, descriptor, now, by, f"rollback to version {to}")


def promote(job: Job, now: float, by: str = "") -> Job:
    """Let a rollout waiting on its canaries roll on."""
    _require_service(job, "be promoted")
    rollout = job.rollout
    if rollout is None or rollout.phase is not RolloutPhase.CANARY:
        raise ConflictError("no_canaries", f"job {job.id} has no rollout waiting on canaries")
    promoted = replace(rollout, phase=RolloutPhase.ROLLING, promoted=True, progress_at=now, detail="")
    return _record(replace(job, rollout=promoted), now, f"version {rollout.to_version} promoted{_by(by)}")


def _new_version(job: Job, descriptor: JobDescriptor, now: float, by: str, note: str) -> Job:
    kept = list(versions_of(job))
    interrupted = job.rollout is not None and job.rollout.phase.active
    outcome = VersionOutcome.SUPERSEDED if interrupted else VersionOutcome.HEALTHY
    kept = [
        replace(v, outcome=outcome) if v.number == job.version and v.outcome is VersionOutcome.CURRENT else v
        for v in kept
    ]
    number = max(v.number for v in kept) + 1
    kept.append(JobVersion(number, descriptor.container, now, by, note))
    if len(kept) > MAX_VERSIONS_KEPT:  # the oldest go first, never the one tasks may still run
        kept = [v for v in kept if v.number >= job.version][-MAX_VERSIONS_KEPT:] or kept[-MAX_VERSIONS_KEPT:]
    canaries = strategy_of(replace(job, descriptor=descriptor)).rolling.canaries
    rollout = Rollout(
        from_version=job.version,
        to_version=number,
        started_at=now,
        phase=RolloutPhase.CANARY if canaries > 0 else RolloutPhase.ROLLING,
        progress_at=now,
        by=by,
    )
    changed = replace(job, descriptor=descriptor, version=number, versions=tuple(kept), rollout=rollout)
    return _record(changed, now, f"version {number} ({note}){_by(by)}: rollout from version {job.version}")


def _require_service(job: Job, what: str) -> None:
    if job.state is not JobState.ACCEPTED:
        raise ConflictError("job_not_active", f"job {job.id} is {job.state.value}: it cannot {what}")
    if job.descriptor.service is None:
        raise ConflictError("not_a_service_job", f"only service jobs can {what}; {job.id} is a batch job")


def _by(who: str) -> str:
    return f" by {who}" if who else ""


def _record(job: Job, now: float, message: str) -> Job:
    return replace(job, updated_at=now, history=(*job.history, JobEvent(now, job.state, message)))


def revert(job: Job, why: str, now: float) -> Job:
    """The job after its rollout's version failed: back to the version it came from (or the last healthy
    one), the failed version kept and marked failed, and a rollout back under way."""
    rollout = job.rollout
    assert rollout is not None
    failed = rollout.to_version
    kept = versions_of(job)
    source = next((v for v in kept if v.number == rollout.from_version), None)
    if source is None or source.outcome is VersionOutcome.FAILED:
        healthy = [v for v in kept if v.number != failed and v.outcome is VersionOutcome.HEALTHY]
        source = healthy[-1] if healthy else source
    if source is None:
        return stop(job, why, now)
    marked = tuple(
        replace(v, outcome=VersionOutcome.FAILED)
        if v.number == failed
        else replace(v, outcome=VersionOutcome.CURRENT)
        if v.number == source.number
        else v
        for v in kept
    )
    back = Rollout(
        from_version=failed,
        to_version=source.number,
        started_at=now,
        phase=RolloutPhase.ROLLING,
        progress_at=now,
        revert_of=failed,
        detail=why,
        by="auto-revert",
    )
    descriptor = replace(job.descriptor, container=source.container)
    changed = replace(job, descriptor=descriptor, version=source.number, versions=marked, rollout=back)
    return _record(changed, now, f"version {failed} failed ({why}): reverting to version {source.number}")


def stop(job: Job, why: str, now: float) -> Job:
    """The rollout failed and is not reverted: it stops where it is, for an operator."""
    rollout = job.rollout
    assert rollout is not None
    version = rollout.to_version
    kept = tuple(
        replace(v, outcome=VersionOutcome.FAILED) if v.number == version else v for v in versions_of(job)
    )
    ended = replace(rollout, phase=RolloutPhase.FAILED, ended_at=now, detail=why)
    return _record(
        replace(job, versions=kept, rollout=ended), now, f"rollout to version {version} failed: {why}"
    )


def succeed(job: Job, now: float) -> Job:
    rollout = job.rollout
    assert rollout is not None
    version = rollout.to_version
    kept = tuple(
        replace(v, outcome=VersionOutcome.HEALTHY) if v.number == version else v for v in versions_of(job)
    )
    ended = replace(rollout, phase=RolloutPhase.SUCCEEDED, ended_at=now, detail="")
    what = "rollback" if rollout.revert_of is not None else "rollout"
    return _record(replace(job, versions=kept, rollout=ended), now, f"{what} to version {version} complete")
