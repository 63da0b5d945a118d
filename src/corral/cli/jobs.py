"""``corral job ...``: submit, list, show, kill, resize, enable and disable jobs."""

import json
import sys
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer

from corral.cli import plans, versions
from corral.cli.context import api_errors, settings
from corral.cli.output import (
    JOB_COLUMNS,
    TASK_COLUMNS,
    ago,
    console,
    emit_json,
    job_summary,
    table,
    task_summary,
)

app = typer.Typer(help="Submit and manage jobs.", no_args_is_help=True)


def _load(path: str) -> list[Any]:
    import yaml  # here, not at the top: only a submission reads YAML

    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as e:
        raise typer.BadParameter(f"cannot read {path}: {e.strerror or e}", param_hint="--file") from e
    except UnicodeDecodeError as e:
        raise typer.BadParameter(f"{path} is not UTF-8 text: {e}", param_hint="--file") from e
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as e:
        raise typer.BadParameter(f"{path} is not valid YAML or JSON: {e}") from e
    return docs


@app.command()
def submit(
    ctx: typer.Context,
    file: Annotated[
        str,
        typer.Option("-f", "--file", help="job file (YAML or JSON; several YAML documents ok; - for stdin)"),
    ],
) -> None:
    """Submit the job(s) described in a file."""
    s = settings(ctx)
    submitted = []
    with api_errors():
        client = s.client()
        for doc in _load(file):
            # One key per job, the same on every re-send: a retry after a cut connection finds the job
            # the first attempt made instead of making a second one.
            submitted.append(client.post("/api/v1/jobs", doc, idempotency_key=str(uuid.uuid4())))
    if s.json:
        emit_json(submitted if len(submitted) != 1 else submitted[0])
        return
    for job in submitted:
        app_name = job["descriptor"]["application"]
        console.print(f"[green]submitted[/green] job [bold]{job['id']}[/bold] ({app_name}, {job['type']})")


@app.command("ls")
def list_jobs(
    ctx: typer.Context,
    owner: Annotated[str | None, typer.Option(help="owner team email")] = None,
    application: Annotated[str | None, typer.Option("--app", help="application name")] = None,
    capacity_group: Annotated[str | None, typer.Option(help="capacity group")] = None,
    job_type: Annotated[str | None, typer.Option("--type", help="batch or service")] = None,
    state: Annotated[
        list[str] | None, typer.Option(help="Accepted, KillInitiated, Finished (repeatable)")
    ] = None,
    label: Annotated[list[str] | None, typer.Option(help="key=value (repeatable)")] = None,
    all_jobs: Annotated[bool, typer.Option("--all", "-a", help="include finished jobs")] = False,
    limit: Annotated[int, typer.Option(help="at most this many")] = 200,
) -> None:
    """List jobs (active ones unless --all or --state)."""
    s = settings(ctx)
    states = state or ([] if all_jobs else ["Accepted", "KillInitiated"])
    with api_errors():
        jobs = list(
            s.client().paged(
                "/api/v1/jobs",
                limit=limit,
                owner=owner,
                application=application,
                capacity_group=capacity_group,
                type=job_type,
                state=states or None,
                label=label or None,
            )
        )
    if s.json:
        emit_json(jobs)
    else:
        table(f"jobs ({len(jobs)})", JOB_COLUMNS, (job_summary(j) for j in jobs))


@app.command()
def show(ctx: typer.Context, job_id: str) -> None:
    """Show a job: its descriptor, state, history and tasks."""
    s = settings(ctx)
    with api_errors():
        client = s.client()
        job = client.get(f"/api/v1/jobs/{job_id}")
        tasks = list(client.paged("/api/v1/tasks", job=job_id, limit=500))
    if s.json:
        emit_json({**job, "tasks": tasks})
        return
    d = job["descriptor"]
    console.print(f"[bold]job {job['id']}[/bold]  {d['application']}  ({job['type']})  state={job['state']}")
    console.print(f"  owner {d['owner']['team_email']}   capacity group {d['capacity_group']}")
    image = d["container"]["image"]
    console.print(f"  image {image['name']}:{image.get('tag') or image.get('digest') or 'latest'}")
    console.print(f"  command {json.dumps(d['container']['entrypoint'] + d['container']['command'])}")
    if job.get("reason"):
        console.print(f"  finished: {job['reason']} — {job.get('reason_detail', '')}")
    for event in job.get("history", []):
        console.print(f"  [dim]{ago(event['at'])}[/dim] {event['state']} {event['message']}")
    table(f"tasks ({len(tasks)})", TASK_COLUMNS, (task_summary(t) for t in tasks))


def _simple(ctx: typer.Context, method: str, path: str, body: Any, verb: str) -> None:
    s = settings(ctx)
    with api_errors():
        client = s.client()
        job = client.post(path, body) if method == "POST" else client.put(path, body)
    if s.json:
        emit_json(job)
    else:
        console.print(f"job [bold]{job['id']}[/bold] {verb}: state={job['state']}")


@app.command()
def kill(ctx: typer.Context, job_id: str) -> None:
    """Kill a job: all its tasks are killed, then it finishes."""
    _simple(ctx, "POST", f"/api/v1/jobs/{job_id}/kill", None, "killing")


@app.command()
def resize(
    ctx: typer.Context,
    job_id: str,
    desired: Annotated[int | None, typer.Option(help="desired size")] = None,
    min_size: Annotated[int | None, typer.Option("--min", help="minimum size")] = None,
    max_size: Annotated[int | None, typer.Option("--max", help="maximum size")] = None,
) -> None:
    """Resize a service job (omitted bounds stay as they are)."""
    s = settings(ctx)
    with api_errors():
        current = s.client().get(f"/api/v1/jobs/{job_id}")
    service = current["descriptor"].get("service")
    if service is None:
        console.print(f"[red]error[/red] job {job_id} is a batch job; only service jobs resize")
        raise typer.Exit(1)
    c = service["capacity"]
    body = {
        "min": c["min"] if min_size is None else min_size,
        "desired": c["desired"] if desired is None else desired,
        "max": c["max"] if max_size is None else max_size,
    }
    _simple(ctx, "PUT", f"/api/v1/jobs/{job_id}/capacity", body, f"resized to {body}")


@app.command()
def enable(ctx: typer.Context, job_id: str) -> None:
    """Enable a service job: it runs its desired tasks again."""
    _simple(ctx, "PUT", f"/api/v1/jobs/{job_id}/enabled", {"enabled": True}, "enabled")


@app.command()
def disable(ctx: typer.Context, job_id: str) -> None:
    """Disable a service job: its tasks are stopped until it is enabled."""
    _simple(ctx, "PUT", f"/api/v1/jobs/{job_id}/enabled", {"enabled": False}, "disabled")


versions.register(app)
plans.register(app)
