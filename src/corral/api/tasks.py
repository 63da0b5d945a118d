"""``/api/v1/tasks``: read, list and kill tasks, read their logs, and ask why one is pending."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from corral.api.auth import PrincipalDep, WriterDep
from corral.api.deps import ServiceDep
from corral.api.models import PlacementModel
from corral.api.responses import errors
from corral.domain.states import TaskState
from corral.store.protocol import TaskQuery

router = APIRouter(prefix="/api/v1/tasks", tags=["tasks"])


@router.get("", summary="List tasks, in creation order", responses=errors(400))
async def list_tasks(
    service: ServiceDep,
    principal: PrincipalDep,
    job: str | None = None,
    state: Annotated[list[TaskState] | None, Query()] = None,
    host: str | None = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 100,
    after: str | None = None,
) -> dict[str, Any]:
    query = TaskQuery(job_id=job, states=frozenset(state or ()), host_id=host, after_id=after, limit=limit)
    items, after_id = await service.list_tasks(principal, query)
    return {"items": items, "next": after_id}


@router.get("/{task_id}", summary="Get a task, with its history and, if pending, why", responses=errors(404))
async def get_task(task_id: str, service: ServiceDep, principal: PrincipalDep) -> dict[str, Any]:
    return await service.get_task(principal, task_id)


@router.get(
    "/{task_id}/placement",
    summary="Why a task is where it is (its host against the best others now), or why it is still pending",
    response_model=PlacementModel,
    response_model_exclude_unset=True,
    responses=errors(400, 404),
)
async def placement(
    task_id: str,
    service: ServiceDep,
    principal: PrincipalDep,
    top: Annotated[int, Query(ge=0, le=100, description="other hosts to rank beside the task's own")] = 5,
) -> dict[str, Any]:
    return await service.placement(principal, task_id, top)


@router.post(
    "/{task_id}/kill",
    summary="Kill a task; a service job replaces it unless shrink=true",
    responses=errors(400, 404, 409),
)
async def kill_task(
    task_id: str, service: ServiceDep, principal: WriterDep, shrink: bool = False
) -> dict[str, Any]:
    return await service.kill_task(principal, task_id, shrink)


@router.get(
    "/{task_id}/logs",
    summary="A task's output (stdout and stderr), from its host; follow=true streams until it ends",
    response_class=StreamingResponse,
    responses=errors(400, 404, 409),
)
async def logs(
    task_id: str,
    service: ServiceDep,
    principal: PrincipalDep,
    tail: Annotated[int | None, Query(ge=0, description="only the last N lines")] = None,
    follow: bool = False,
) -> StreamingResponse:
    lines = await service.logs(principal, task_id, tail, follow)
    return StreamingResponse(lines, media_type="text/plain; charset=utf-8")
