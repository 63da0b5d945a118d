"""``corral job update|history|promote|rollback|status``: change a service over time and watch it change."""

from typing import Annotated, Any

import typer

from corral.cli.context import api_errors, settings
from corral.cli.output import ago, console, emit_json, table


def register(app: typer.Typer) -> None:
    app.command()(update)
    app.command()(history)
    app.command()(promote)
    app.command()(rollback)
    app.command()(status)
    app.command()(deploy)


def update(
    ctx: typer.Context,
    job_id: str,
    file: Annotated[str, typer.Option("-f", "--file", help="the job's new spec (YAML or JSON; - for stdin)")],
) -> None:
    """Update a service from a file: a new container is a new version, rolled out by its update strategy.

    Capacity and enabled stay as they are (use resize, enable, disable)."""
    from corral.cli.jobs import _load

    s = settings(ctx)
    docs = _load(file)
    if len(docs) != 1:
        raise typer.BadParameter(
            f"{file} holds {len(docs)} documents; an update takes one", param_hint="--file"
        )
    with api_errors():
        job = s.client().put(f"/api/v1/jobs/{job_id}/spec", docs[0])
    if s.json:
        emit_json(job)
    elif job.get("rollout_started"):
        r = job["rollout"]
        console.print(
            f"job [bold]{job_id}[/bold]: version {r['to_version']} rolling out from version "
            f"{r['from_version']} ({r['phase']}); follow it with `corral job status {job_id}`"
        )
    else:
        console.print(f"job [bold]{job_id}[/bold] updated; the container did not change, so no new version")


def deploy(
    ctx: typer.Context,
    file: Annotated[str, typer.Option("-f", "--file", help="the service's spec, with a job_group")],
    red_black: Annotated[
        bool,
        typer.Option("--red-black", help="Titus's red/black: the next job of the job group beside the old"),
    ] = False,
) -> None:
    """Deploy a service. --red-black starts the next job of its job group (sequence + 1) beside the active
    one, disables the old one once the new one is healthy, and keeps it: `corral job rollback NEW` brings it
    back. Without --red-black, use `corral job update` (a rolling update of the same job)."""
    from corral.cli.jobs import _load

    if not red_black:
        raise typer.BadParameter("give --red-black (a rolling update is `corral job update JOB -f FILE`)")
    s = settings(ctx)
    docs = _load(file)
    if len(docs) != 1:
        raise typer.BadParameter(
            f"{file} holds {len(docs)} documents; a deploy takes one", param_hint="--file"
        )
    with api_errors():
        job = s.client().post("/api/v1/jobs/red-black", docs[0])
    if s.json:
        emit_json(job)
        return
    rb = job.get("red_black")
    if rb is None:
        console.print(f"job [bold]{job['id']}[/bold] deployed (the first of its job group)")
    else:
        console.print(
            f"job [bold]{job['id']}[/bold] deploying beside job {rb['previous']}; the old one is disabled "
            f"once this one is healthy (`corral job rollback {job['id']}` brings it back)"
        )


def history(ctx: typer.Context, job_id: str) -> None:
    """A job's versions, newest first: who made each, why, and how it went."""
    s = settings(ctx)
    with api_errors():
        items = s.client().get(f"/api/v1/jobs/{job_id}/versions")["items"]
    if s.json:
        emit_json(items)
        return
    rows = (
        (
            ("* " if v["current"] else "  ") + str(v["number"]),
            v["image"],
            v["outcome"],
            v.get("by") or "-",
            v.get("note") or "",
            ago(v["at"]),
        )
        for v in items
    )
    table(f"versions of {job_id}", ("VERSION", "IMAGE", "OUTCOME", "BY", "NOTE", "AT"), rows)


def promote(ctx: typer.Context, job_id: str) -> None:
    """Promote a rollout's canaries: the rest of the job rolls to the new version."""
    _post(ctx, f"/api/v1/jobs/{job_id}/promote", None, "promoted")


def rollback(
    ctx: typer.Context,
    job_id: str,
    to: Annotated[
        int | None, typer.Option("--to", help="the version (default: the last healthy one)")
    ] = None,
) -> None:
    """Roll a service back to an earlier version (a new version with that container, rolled out)."""
    _post(ctx, f"/api/v1/jobs/{job_id}/rollback", {"to": to}, "rolling back")


def status(ctx: typer.Context, job_id: str) -> None:
    """The rollout: per version its tasks, placed and ready, and what the rollout waits for."""
    s = settings(ctx)
    with api_errors():
        data = s.client().get(f"/api/v1/jobs/{job_id}/rollout")
    if s.json:
        emit_json(data)
        return
    r = data.get("rollout")
    if r is None:
        console.print(f"job [bold]{job_id}[/bold] at version {data['version']}: never updated")
    else:
        kind = "rollback" if r.get("revert_of") else "rollout"
        console.print(
            f"job [bold]{job_id}[/bold] {kind} {r['from_version']} -> {r['to_version']}: "
            f"[bold]{r['phase']}[/bold] (started {ago(r['started_at'])})"
        )
    console.print(f"  desired {data['desired']}; waiting for: {data['waiting_for']}")
    rows = (
        (v["version"], v["desired"], v["tasks"], v["placed"], v["ready"], v["healthy"])
        for v in data["versions"]
    )
    table("tasks by version", ("VERSION", "DESIRED", "TASKS", "PLACED", "READY", "HEALTHY"), rows)


def _post(ctx: typer.Context, path: str, body: Any, verb: str) -> None:
    s = settings(ctx)
    with api_errors():
        job = s.client().post(path, body)
    if s.json:
        emit_json(job)
        return
    r = job.get("rollout") or {}
    console.print(f"job [bold]{job['id']}[/bold] {verb}: version {job['version']} ({r.get('phase', '-')})")
