"""``corral task ...`` and ``corral why``: list, show and kill tasks, and explain pending ones."""

import sys
from typing import Annotated

import typer

from corral.cli.context import api_errors, settings
from corral.cli.output import TASK_COLUMNS, ago, console, emit_json, styled, table, task_summary
from corral.cli.plans import show_ranking

app = typer.Typer(help="Inspect and kill tasks.", no_args_is_help=True)


@app.command("ls")
def list_tasks(
    ctx: typer.Context,
    job: Annotated[str | None, typer.Option(help="only this job's tasks")] = None,
    state: Annotated[list[str] | None, typer.Option(help="task state (repeatable)")] = None,
    host: Annotated[str | None, typer.Option(help="only tasks on this host")] = None,
    all_tasks: Annotated[bool, typer.Option("--all", "-a", help="include finished tasks")] = False,
    limit: Annotated[int, typer.Option(help="at most this many")] = 500,
) -> None:
    """List tasks (live ones unless --all or --state)."""
    s = settings(ctx)
    live = ["Accepted", "Launched", "StartInitiated", "Started", "KillInitiated", "Disconnected"]
    states = state or ([] if all_tasks else live)
    with api_errors():
        tasks = list(s.client().paged("/api/v1/tasks", limit=limit, job=job, host=host, state=states or None))
    if s.json:
        emit_json(tasks)
    else:
        table(f"tasks ({len(tasks)})", TASK_COLUMNS, (task_summary(t) for t in tasks))


@app.command()
def show(ctx: typer.Context, task_id: str) -> None:
    """Show a task: where it runs, its history, and why it ended or waits."""
    s = settings(ctx)
    with api_errors():
        task = s.client().get(f"/api/v1/tasks/{task_id}")
    if s.json:
        emit_json(task)
        return
    index = "" if task["index"] is None else f" index {task['index']}"
    console.print(
        f"[bold]task {task['id']}[/bold]  job {task['job_id']}{index}  state {styled(task['state'])}"
    )
    console.print(
        f"  host {task.get('host_id') or '-'}  ports {task.get('ports') or '-'}  retry {task['attempt']}"
    )
    if task.get("reason"):
        code = "" if task.get("exit_code") is None else f" (exit {task['exit_code']})"
        console.print(f"  finished: {task['reason']}{code} — {task.get('reason_detail', '')}")
    if task.get("pending"):
        console.print(f"  pending: {task['pending']['message']}")
    for event in task.get("history", []):
        why = " ".join(x for x in (event.get("reason") or "", event.get("detail") or "") if x)
        where = f" on {event['host']}" if event.get("host") else ""
        console.print(f"  [dim]{ago(event['at'])}[/dim] {event['state']}{where} {why}")


@app.command()
def kill(
    ctx: typer.Context,
    task_id: str,
    shrink: Annotated[bool, typer.Option(help="service jobs: lower desired instead of replacing")] = False,
) -> None:
    """Kill a task. A service job replaces it (unless --shrink); a batch job runs its index again."""
    s = settings(ctx)
    with api_errors():
        task = s.client().post(f"/api/v1/tasks/{task_id}/kill", shrink=str(shrink).lower())
    if s.json:
        emit_json(task)
    else:
        console.print(f"task [bold]{task['id']}[/bold] killing: state={task['state']}")


@app.command()
def logs(
    ctx: typer.Context,
    task_id: str,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="keep streaming until the task ends")
    ] = False,
    tail: Annotated[int | None, typer.Option(help="only the last N lines")] = None,
) -> None:
    """Print a task's output (stdout and stderr), fetched from its host through the master."""
    s = settings(ctx)
    try:
        with api_errors():
            for text in s.client().stream_text(
                f"/api/v1/tasks/{task_id}/logs", follow=str(follow).lower(), tail=tail
            ):
                sys.stdout.write(text)
                sys.stdout.flush()
    except KeyboardInterrupt:
        pass


def why(ctx: typer.Context, task_id: str) -> None:
    """Why a task is pending, or why it is on its host (the best other hosts for it now, scorer by scorer)."""
    s = settings(ctx)
    with api_errors():
        placement = s.client().get(f"/api/v1/tasks/{task_id}/placement")
    if s.json:
        emit_json(placement)
        return
    pending = placement.get("pending")
    if placement["state"] != "Accepted":
        console.print(f"task {task_id} is {placement['state']} on host {placement.get('host_id') or '-'}")
        if placement.get("ranking"):
            show_ranking(placement["ranking"])
    elif pending is None:
        console.print(f"task {task_id} is waiting for its first scheduling iteration")
    else:
        console.print(f"task {task_id} is pending: [bold]{pending['message']}[/bold]")
        for name, count in sorted(pending.get("rejections", {}).items(), key=lambda kv: -kv[1]):
            console.print(f"  {name}: {count:,} host{'' if count == 1 else 's'} rejected")
