"""``POST /api/v1/jobs/plan``: a dry run of a submission — where the job's tasks would go now and, for the
ones that would wait, what would make them fit. The body is a submission's, admitted the same way (its
400s, the owner's team, quotas, the submission rate)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from corral.api.auth import WriterDep
from corral.api.deps import ServiceDep
from corral.api.models import JobSpec
from corral.api.responses import errors
from corral.autoscale.whatif import SuggestionKind
from corral.scheduler import PendingReason

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])


class PlannedJobModel(BaseModel):
    type: str = Field(description="batch or service")
    tasks: int = Field(description="tasks the job would have at once (batch size, service desired)")
    capacity_group: str
    tier: str
    mode: str = Field(description="the scheduling mode of the group's tier (pack or spread)")


class HostCountModel(BaseModel):
    host_id: str
    tasks: int


class ReasonModel(BaseModel):
    reason: PendingReason
    message: str
    tasks: int = Field(description="how many of the job's tasks wait for this reason")
    rejections: dict[str, int] = Field(description="per filter, the hosts it turned away")


class SuggestionModel(BaseModel):
    kind: SuggestionKind
    message: str
    tasks: int = Field(description="of the tasks it was tried for, how many it lets run")
    tried: int = Field(description="how many tasks it was tried for")
    complete: bool = Field(description="it lets every one of them run")
    with_limit: bool = Field(description="counted as if the capacity group's limit admitted the tasks")
    group: str = Field(description="group_limit: the capacity group")
    rise: dict[str, float] = Field(description="group_limit: per dimension, how much the limit must rise")
    limit: dict[str, float] = Field(description="group_limit: the limit that would do")
    hosts: dict[str, int] = Field(description="more_hosts: new hosts per host group")
    cost: float = Field(description="more_hosts: what they cost (the groups' cost per host)")
    jobs: dict[str, int] = Field(description="after_tasks_finish: per job, how many of its running tasks")
    task_ids: list[str] = Field(description="after_tasks_finish: which tasks (the first 20)")
    on_hosts: list[str] = Field(description="after_tasks_finish: the hosts they free")
    reason: str = Field(description="scheduler_reason: the scheduler's pending reason")
    rejections: dict[str, int] = Field(description="scheduler_reason: per filter, the hosts it turned away")


class PlanModel(BaseModel):
    job: PlannedJobModel
    tasks: int
    placed: int = Field(description="tasks that would be placed now")
    hosts: list[HostCountModel] = Field(description="where: tasks per host, most first (at most 20)")
    other_hosts: int = Field(description="hosts beyond those listed")
    other_tasks: int = Field(description="tasks those hosts would take")
    zones: dict[str, int] = Field(description="tasks per zone")
    unplaced: int = Field(description="tasks that would wait")
    reasons: list[ReasonModel] = Field(
        description="the scheduler's own reasons for the tasks that would wait"
    )
    suggestions: list[SuggestionModel] = Field(description="what would make the waiting tasks fit")
    queued: int = Field(description="tasks of other jobs, already waiting, placed in the same iteration")
    notes: list[str]


@router.post(
    "/plan",
    summary="Plan a job without submitting it: where its tasks would go now, and what would fit the rest",
    response_model=PlanModel,
    responses=errors(400, 403, 413, 429),
)
async def plan(spec: JobSpec, service: ServiceDep, principal: WriterDep) -> dict[str, Any]:
    return await service.plan_job(principal, spec.to_domain())
