"""``/api/v1/tasks``: read, list and kill tasks, and ask why one is pending."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from corral.api.auth import PrincipalDep, WriterDep, check_job, check_read, may_read
from corral.api.deps import master_of
from corral.api.views import task_view
from corral.control.master import Master
from corral.domain.auth import Principal
from corral.domain.codec import to_builtins
from corral.domain.errors import ConflictError
from corral.domain.states import TaskState
from corral.domain.task import Task
from corral.store.protocol import TaskQuery

router = APIRouter(prefix="/api/v1/tasks", tags=["tasks"])
MasterDep = Annotated[Master, Depends(master_of)]


@router.get("", summary="List tasks, in creation order")
async def list_tasks(
    master: MasterDep,
    principal: PrincipalDep,
    job: str | None = None,
    state: Annotated[list[TaskState] | None, Query()] = None,
    host: str | None = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 100,
    after: str | None = None,
) -> dict[str, Any]:
    query = TaskQuery(job_id=job, states=frozenset(state or ()), host_id=host, after_id=after, limit=limit)
    page = await master.queries.list_tasks(query)
    items = page.items
    if master.config.read_scope == "team" and not principal.is_admin:
        teams = {j: (await master.queries.get_job(j)).team for j in {t.job_id for t in items}}
        items = [t for t in items if may_read(master, principal, teams[t.job_id])]
    return {"items": [task_view(master, t) for t in items], "next": page.next_after}


async def _readable(master: Master, principal: Principal, task_id: str) -> Task:
    task = await master.queries.get_task(task_id)
    if master.config.read_scope == "team" and not principal.is_admin:
        check_read(master, principal, await master.queries.get_job(task.job_id))
    return task


@router.get("/{task_id}", summary="Get a task, with its history and, if pending, why")
async def get_task(task_id: str, master: MasterDep, principal: PrincipalDep) -> dict[str, Any]:
    return task_view(master, await _readable(master, principal, task_id))


@router.get("/{task_id}/placement", summary="Why a task is where it is, or why it is still pending")
async def placement(task_id: str, master: MasterDep, principal: PrincipalDep) -> dict[str, Any]:
    task = await _readable(master, principal, task_id)
    out: dict[str, Any] = {"task_id": task.id, "state": task.state.value, "host_id": task.host_id}
    out["ready_at"] = task.ready_at
    if task.state is TaskState.ACCEPTED:
        pending = master.scheduler.explain(task.id)
        out["pending"] = to_builtins(pending) if pending is not None else None
    return out


@router.post("/{task_id}/kill", summary="Kill a task; a service job replaces it unless shrink=true")
async def kill_task(
    task_id: str, master: MasterDep, principal: WriterDep, shrink: bool = False
) -> dict[str, Any]:
    task = await master.queries.get_task(task_id)
    check_job(principal, await master.queries.get_job(task.job_id))
    if task.id not in master.state.tasks or task.is_finished:
        raise ConflictError("task_finished", f"task {task_id} has already finished")
    killed = master.jobs.kill_task(task_id, shrink, by=principal.name)
    await master.writer.flush()
    return task_view(master, killed)


@router.get(
    "/{task_id}/logs",
    summary="A task's output (stdout and stderr), from its host; follow=true streams until it ends",
    response_class=StreamingResponse,
)
async def logs(
    task_id: str,
    master: MasterDep,
    principal: PrincipalDep,
    tail: Annotated[int | None, Query(ge=0, description="only the last N lines")] = None,
    follow: bool = False,
) -> StreamingResponse:
    task = await _readable(master, principal, task_id)
    lines = await master.hub.open_logs(task, tail, follow)
    return StreamingResponse(lines, media_type="text/plain; charset=utf-8")
