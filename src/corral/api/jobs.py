"""``/api/v1/jobs``: submit, read, list, kill, resize, enable and disable jobs."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Response

from corral.api.auth import PrincipalDep, WriterDep
from corral.api.deps import ServiceDep
from corral.api.models import CapacityModel, EnabledModel, JobSpec, RollbackModel
from corral.api.responses import errors
from corral.domain.codec import to_json
from corral.domain.errors import ValidationError
from corral.domain.states import JobState, JobType
from corral.store.protocol import JobQuery

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])
JSON = "application/json"
RETRIED: dict[int | str, dict[str, Any]] = {
    200: {"description": "A retry: the job an earlier request with this Idempotency-Key made"}
}
IDEMPOTENCY_HELP = (
    "any unique string per request (e.g. a UUID): a retry with the same key and body returns the job the "
    "first request made (200) instead of making another; the same key with another body is refused (409)"
)


@router.post(
    "",
    status_code=201,
    summary="Submit a job",
    response_model=dict[str, Any],
    responses=errors(400, 409, 413, 429) | RETRIED,
)
async def submit(
    spec: JobSpec,
    service: ServiceDep,
    principal: WriterDep,
    idempotency_key: Annotated[str | None, Header(description=IDEMPOTENCY_HELP)] = None,
) -> Response:
    done = await service.submit(principal, spec.to_domain(), idempotency_key or "")
    # Encoded here, once: the busiest route need not have FastAPI validate and walk a dict it built.
    return Response(to_json(done.job), status_code=201 if done.created else 200, media_type=JSON)


@router.post(
    "/red-black",
    status_code=201,
    summary="Red/black deploy: the next job of the spec's job group (sequence + 1) beside the active one, "
    "which is disabled once the new one is healthy",
    responses=errors(400, 403, 409, 413, 429),
)
async def deploy_red_black(spec: JobSpec, service: ServiceDep, principal: WriterDep) -> dict[str, Any]:
    return await service.deploy_red_black(principal, spec.to_domain())


@router.get("", summary="List jobs (active and finished), in creation order", responses=errors(400))
async def list_jobs(
    service: ServiceDep,
    principal: PrincipalDep,
    owner: str | None = None,
    application: str | None = None,
    capacity_group: str | None = None,
    type: JobType | None = None,
    state: Annotated[list[JobState] | None, Query()] = None,
    label: Annotated[list[str] | None, Query(description="key=value; repeat to require several")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    after: Annotated[str | None, Query(description="the page after this job id (from `next`)")] = None,
    order: Annotated[Literal["oldest", "newest"], Query(description="creation order")] = "oldest",
) -> dict[str, Any]:
    labels = {}
    for item in label or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValidationError("invalid_label_filter", f"label filter {item!r} is not key=value", "label")
        labels[key] = value
    query = JobQuery(
        owner=owner,
        application=application,
        capacity_group=capacity_group,
        job_type=type,
        states=frozenset(state or ()),
        labels=labels,
        after_id=after,
        limit=limit,
        newest_first=order == "newest",
    )
    items, after_id = await service.list_jobs(principal, query)
    return {"items": items, "next": after_id}


@router.get("/{job_id}", summary="Get a job", responses=errors(404))
async def get_job(job_id: str, service: ServiceDep, principal: PrincipalDep) -> dict[str, Any]:
    return await service.get_job(principal, job_id)


@router.post("/{job_id}/kill", summary="Kill a job and all its tasks", responses=errors(404, 409))
async def kill_job(job_id: str, service: ServiceDep, principal: WriterDep) -> dict[str, Any]:
    return await service.kill_job(principal, job_id)


@router.put(
    "/{job_id}/capacity",
    summary="Resize a service job within its min and max",
    responses=errors(400, 404, 409, 413, 429),
)
async def resize(
    job_id: str, capacity: CapacityModel, service: ServiceDep, principal: WriterDep
) -> dict[str, Any]:
    return await service.resize(principal, job_id, capacity.to_domain())


@router.put(
    "/{job_id}/enabled", summary="Enable or disable a service job", responses=errors(400, 404, 409, 413)
)
async def set_enabled(
    job_id: str, body: EnabledModel, service: ServiceDep, principal: WriterDep
) -> dict[str, Any]:
    return await service.set_enabled(principal, job_id, body.enabled)


@router.put(
    "/{job_id}/spec",
    summary="Update a service: a new container makes a new version, rolled out by the job's update strategy",
    responses=errors(400, 403, 404, 409, 413),
)
async def update_job(job_id: str, spec: JobSpec, service: ServiceDep, principal: WriterDep) -> dict[str, Any]:
    return await service.update_job(principal, job_id, spec.to_domain())


@router.post("/{job_id}/promote", summary="Promote a rollout's canaries", responses=errors(404, 409))
async def promote(job_id: str, service: ServiceDep, principal: WriterDep) -> dict[str, Any]:
    return await service.promote(principal, job_id)


@router.post(
    "/{job_id}/rollback",
    summary="Roll back to an earlier version (default: the last healthy one)",
    responses=errors(400, 404, 409),
)
async def rollback(
    job_id: str, body: RollbackModel, service: ServiceDep, principal: WriterDep
) -> dict[str, Any]:
    return await service.rollback(principal, job_id, body.to)


@router.get("/{job_id}/versions", summary="A job's versions, newest first", responses=errors(404))
async def job_versions(job_id: str, service: ServiceDep, principal: PrincipalDep) -> dict[str, Any]:
    return {"items": await service.job_versions(principal, job_id)}


@router.get(
    "/{job_id}/rollout",
    summary="The rollout: per version tasks, placed and ready, and what it waits for",
    responses=errors(404),
)
async def rollout(job_id: str, service: ServiceDep, principal: PrincipalDep) -> dict[str, Any]:
    return await service.rollout(principal, job_id)
