"""Titus's red/black deploy: the next job of a job group comes up beside the old one; once all its tasks are
healthy for ``min_healthy_s`` the old job is disabled (kept, for a fast rollback). A new job whose tasks fail,
turn unhealthy or make no progress for ``progress_deadline_s`` is disabled instead, and the old serves on.

Pure and level-triggered, like the rest of the reconcilers: the new job's record says where the deploy is.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from corral.domain.errors import ConflictError
from corral.domain.job import Job
from corral.domain.readiness import ready_since
from corral.domain.rollout import RedBlack, RedBlackPhase
from corral.domain.task import Task
from corral.jobs import commands, versions
from corral.jobs.actions import Action, ChangeJob, SetEnabled
from corral.jobs.service import active_tasks
from corral.jobs.update import task_failure

_DIGITS = re.compile(r"(\d+)\Z")


def next_sequence(sequence: str) -> str:
    """``v001`` -> ``v002``, ``9`` -> ``10``, ``""`` -> ``1``: the trailing number + 1, its width kept."""
    match = _DIGITS.search(sequence)
    if match is None:
        return sequence + "1"
    digits = match.group(1)
    return sequence[: match.start()] + str(int(digits) + 1).zfill(len(digits))


def reconcile_red_black(job: Job, tasks: Sequence[Task], now: float) -> tuple[list[Action], float | None]:
    deploy = job.red_black
    spec = job.descriptor.service
    if deploy is None or deploy.phase is not RedBlackPhase.DEPLOYING or spec is None:
        return [], None
    rolling = versions.strategy_of(job).rolling
    desired = spec.capacity.desired if spec.enabled else 0
    checks = job.descriptor.container.health
    healthy_at = sorted(
        at + rolling.min_healthy_s for t in active_tasks(tasks) if (at := ready_since(t, checks)) is not None
    )
    healthy = sum(1 for at in healthy_at if at <= now)
    if healthy >= desired:
        done = _end(job, deploy, RedBlackPhase.DONE, now, f"healthy: job {deploy.previous} disabled")
        return [ChangeJob(done), SetEnabled(deploy.previous, False, f"red/black deploy of {job.id}")], None
    last = max([deploy.started_at, *(at for at in healthy_at if at <= now)])
    failure = task_failure(tasks, deploy.started_at)
    if failure is None and now >= last + rolling.progress_deadline_s:
        failure = f"no progress for {now - last:.0f}s (progress_deadline_s): {healthy} of {desired} healthy"
    if failure is not None:
        failed = _end(job, deploy, RedBlackPhase.FAILED, now, f"{failure}; job {deploy.previous} serves on")
        return [ChangeJob(commands.set_enabled(failed, False, now, "the failed red/black deploy"))], None
    upcoming = [at for at in healthy_at if at > now]
    return [], min([*upcoming, last + rolling.progress_deadline_s])


def _end(job: Job, deploy: RedBlack, phase: RedBlackPhase, now: float, detail: str) -> Job:
    ended = replace(deploy, phase=phase, ended_at=now, detail=detail)
    return commands.record(replace(job, red_black=ended), now, f"red/black deploy {phase.value}: {detail}")


def start(new: Job, previous: Job, now: float) -> Job:
    """``new`` as the red/black successor of ``previous`` (both service jobs of one job group)."""
    deploy = RedBlack(previous=previous.id, started_at=now)
    return commands.record(
        replace(new, red_black=deploy), now, f"red/black deploy replacing job {previous.id}"
    )


def roll_back(job: Job, now: float, by: str = "") -> Job:
    """Back to the job this one replaced: this one is disabled (the shell enables the previous one)."""
    deploy = job.red_black
    if deploy is None or deploy.phase is RedBlackPhase.ROLLED_BACK:
        raise ConflictError(
            "not_red_black", f"job {job.id} is not a red/black deploy that can be rolled back"
        )
    who = f" by {by}" if by else ""
    ended = _end(job, deploy, RedBlackPhase.ROLLED_BACK, now, f"job {deploy.previous} enabled again{who}")
    return commands.set_enabled(ended, False, now, by or "a red/black rollback")


def deployed_after(job: Job, candidates: Sequence[Job]) -> Job | None:
    """The active service job of ``job``'s application, stack and detail that it would replace: the one with
    the highest sequence (None: a first deploy)."""
    group = job.descriptor.job_group
    if group is None:
        return None
    same = [
        j
        for j in candidates
        if j.is_active
        and j.id != job.id
        and j.descriptor.service is not None
        and j.descriptor.application == job.descriptor.application
        and j.descriptor.job_group is not None
        and (j.descriptor.job_group.stack, j.descriptor.job_group.detail) == (group.stack, group.detail)
    ]
    return max(same, key=lambda j: (j.created_at, j.id), default=None)
