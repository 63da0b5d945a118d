"""``/api/v1/jobs``: submit, read, list, kill, resize, enable and disable jobs."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query

from corral.api.auth import PrincipalDep, WriterDep, check_job, check_read, may_read
from corral.api.deps import master_of
from corral.api.models import CapacityModel, EnabledModel, JobSpec
from corral.api.views import job_view
from corral.control.master import Master
from corral.domain.errors import ConflictError, ValidationError
from corral.domain.job import Job
from corral.domain.states import JobState, JobType
from corral.store.protocol import JobQuery

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])
MasterDep = Annotated[Master, Depends(master_of)]


@router.post("", status_code=201, summary="Submit a job")
async def submit(spec: JobSpec, master: MasterDep, principal: WriterDep) -> dict[str, Any]:
    descriptor = spec.to_domain()
    master.admission.submission(principal, descriptor)
    job = master.jobs.submit(descriptor, team=principal.team, submitted_by=principal.name)
    await master.writer.flush()  # acknowledged only once durable
    return job_view(master, job)


@router.get("", summary="List jobs (active and finished), in creation order")
async def list_jobs(
    master: MasterDep,
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
    page = await master.queries.list_jobs(query)
    items = [job_view(master, j) for j in page.items if may_read(master, principal, j.team)]
    return {"items": items, "next": page.next_after}


@router.get("/{job_id}", summary="Get a job")
async def get_job(job_id: str, master: MasterDep, principal: PrincipalDep) -> dict[str, Any]:
    job = await master.queries.get_job(job_id)
    check_read(master, principal, job)
    return job_view(master, job)


@router.post("/{job_id}/kill", summary="Kill a job and all its tasks")
async def kill_job(job_id: str, master: MasterDep, principal: WriterDep) -> dict[str, Any]:
    check_job(principal, await _known(master, job_id))
    job = master.jobs.kill_job(job_id, by=principal.name)
    await master.writer.flush()
    return job_view(master, job)


@router.put("/{job_id}/capacity", summary="Resize a service job within its min and max")
async def resize(
    job_id: str, capacity: CapacityModel, master: MasterDep, principal: WriterDep
) -> dict[str, Any]:
    known = await _known(master, job_id)
    check_job(principal, known)
    wanted = capacity.to_domain()
    master.admission.resize(principal, known, wanted)
    job = master.jobs.resize(job_id, wanted, by=principal.name)
    await master.writer.flush()
    return job_view(master, job)


@router.put("/{job_id}/enabled", summary="Enable or disable a service job")
async def set_enabled(
    job_id: str, body: EnabledModel, master: MasterDep, principal: WriterDep
) -> dict[str, Any]:
    check_job(principal, await _known(master, job_id))
    job = master.jobs.set_enabled(job_id, body.enabled, by=principal.name)
    await master.writer.flush()
    return job_view(master, job)


async def _known(master: Master, job_id: str) -> Job:
    """404 for a job that never existed; 409 for one that finished and left memory."""
    job = await master.queries.get_job(job_id)
    if job.id not in master.state.jobs:
        raise ConflictError("job_finished", f"job {job_id} has already finished")
    return job
