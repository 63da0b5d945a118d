"""``corral host ...``: the fleet."""

import time
from typing import Annotated

import typer

from corral.cli.context import api_errors, settings
from corral.cli.output import ago, console, emit_json, styled, table

app = typer.Typer(help="Inspect hosts.", no_args_is_help=True)


@app.command("ls")
def list_hosts(ctx: typer.Context) -> None:
    """List hosts with their capacity and what is allocated."""
    s = settings(ctx)
    with api_errors():
        hosts = s.client().get("/api/v1/hosts")["items"]
    if s.json:
        emit_json(hosts)
        return
    rows = []
    for h in hosts:
        total, used = h["resources"], h["allocated"]
        attrs = h["attributes"]
        rows.append(
            (
                h["id"],
                styled(h["state"])
                + (" [yellow]draining[/yellow]" if h["draining"] else "")
                + (" [red]quarantined[/red]" if h.get("quarantined") else ""),
                attrs["zone"],
                attrs["instance_type"],
                f"{used['cpu']:g}/{total['cpu']:g}",
                f"{used['memory_mb']}/{total['memory_mb']}",
                h["tasks"],
                h["runtime"],
                ago(h["last_heartbeat"]),
            )
        )
    table(
        f"hosts ({len(hosts)})",
        ("ID", "STATE", "ZONE", "TYPE", "CPU", "MEMORY MB", "TASKS", "RUNTIME", "SEEN"),
        rows,
    )


@app.command()
def show(ctx: typer.Context, host_id: str) -> None:
    """Show a host: its state, health, quarantine, capacity and what is allocated."""
    s = settings(ctx)
    with api_errors():
        h = s.client().get(f"/api/v1/hosts/{host_id}")
    if s.json:
        emit_json(h)
        return
    attrs = h["attributes"]
    console.print(f"[bold]host {h['id']}[/bold]  state {styled(h['state'])}  runtime {h['runtime']}")
    console.print(f"  zone {attrs['zone']}  type {attrs['instance_type']}  group {attrs['host_group']}")
    health = "healthy" if h["healthy"] else f"[red]unhealthy[/red]: {h.get('health_detail', '')}"
    console.print(f"  health {health}  draining {'yes' if h['draining'] else 'no'}  tasks {h['tasks']}")
    if h.get("quarantined_until") is not None:
        left = max(0.0, h["quarantined_until"] - time.time())
        console.print(
            f"  [red]quarantined[/red] for {left:.0f}s more: {h.get('quarantine_detail', '')}"
            f"  (lift early: corral host unquarantine {h['id']})"
        )
    total, used = h["resources"], h["allocated"]
    console.print(
        f"  cpu {used['cpu']:g}/{total['cpu']:g}  memory {used['memory_mb']}/{total['memory_mb']} MB"
        f"  seen {ago(h['last_heartbeat'])}"
    )


@app.command()
def drain(
    ctx: typer.Context,
    host_id: Annotated[str | None, typer.Argument(help="the host (or --group)")] = None,
    status: Annotated[bool, typer.Option("--status", help="say what each remaining task waits for")] = False,
    deadline: Annotated[
        float | None, typer.Option("--deadline", help="seconds batch tasks may finish before they move")
    ] = None,
    group: Annotated[
        str | None, typer.Option("--group", help="drain a host group, a partition at a time")
    ] = None,
    partition: Annotated[str, typer.Option("--partition", help="each partition's share, e.g. 20%")] = "20%",
    resume: Annotated[bool, typer.Option("--resume", help="resume the group's drain")] = False,
    cancel: Annotated[bool, typer.Option("--cancel", help="cancel the group's drain")] = False,
) -> None:
    """Drain a host: no new tasks; service tasks move make-before-break (a replacement ready elsewhere
    before each stops) within their disruption budgets; batch tasks finish until the deadline, then rerun
    elsewhere. With --group, a host group drains a partition at a time, each empty before the next."""
    if group is not None:
        _drain_group(ctx, group, partition, deadline, status, resume, cancel)
        return
    if host_id is None:
        raise typer.BadParameter("name a host, or a host group with --group")
    if status:
        _drain_status(ctx, host_id)
        return
    s = settings(ctx)
    with api_errors():
        body = {"deadline_s": deadline} if deadline is not None else None
        host = s.client().post(f"/api/v1/hosts/{host_id}/drain", body)
    if s.json:
        emit_json(host)
    else:
        console.print(
            f"host [bold]{host_id}[/bold] draining; follow it with `corral host drain --status {host_id}`"
        )


def _drain_group(
    ctx: typer.Context,
    group: str,
    partition: str,
    deadline: float | None,
    status: bool,
    resume: bool,
    cancel: bool,
) -> None:
    s = settings(ctx)
    path = f"/api/v1/hosts/groups/{group}/drain"
    with api_errors():
        client = s.client()
        if status:
            data = client.get(path)
        elif resume or cancel:
            data = client.post(f"{path}/{'resume' if resume else 'cancel'}")
        else:
            try:
                percent = float(partition.rstrip("%"))
            except ValueError:
                raise typer.BadParameter(
                    f"{partition!r} is not a percentage", param_hint="--partition"
                ) from None
            data = client.post(path, {"partition_percent": percent, "deadline_s": deadline})
    if s.json:
        emit_json(data)
        return
    console.print(f"host group [bold]{group}[/bold]: {data['describe']}")
    rows = (
        (
            ("> " if p["index"] == data["current"] else "  ") + str(p["index"] + 1),
            ", ".join(p["hosts"]),
            sum(p["tasks_remaining"].values()),
        )
        for p in data["partitions"]
    )
    table("partitions", ("PARTITION", "HOSTS", "TASKS LEFT"), rows)


def _drain_status(ctx: typer.Context, host_id: str) -> None:
    s = settings(ctx)
    with api_errors():
        data = s.client().get(f"/api/v1/hosts/{host_id}/drain")
    if s.json:
        emit_json(data)
        return
    state = "draining" if data["draining"] else "not draining"
    console.print(f"host [bold]{host_id}[/bold] {state}: {data['remaining']} tasks remain")
    rows = (
        (
            t["task_id"],
            t["job_id"],
            t["state"],
            t["kind"],
            t["detail"] + (f" — {t['replacement_pending']}" if t.get("replacement_pending") else ""),
        )
        for t in data["tasks"]
    )
    table(f"tasks on {host_id}", ("TASK", "JOB", "STATE", "WAITS FOR", "DETAIL"), rows)


@app.command()
def undrain(ctx: typer.Context, host_id: str) -> None:
    """Let a drained host take new tasks again."""
    _drain(ctx, host_id, "undrain")


@app.command()
def unquarantine(ctx: typer.Context, host_id: str) -> None:
    """Lift a host's quarantine (after repeated system errors) before its time is up."""
    s = settings(ctx)
    with api_errors():
        host = s.client().post(f"/api/v1/hosts/{host_id}/unquarantine")
    if s.json:
        emit_json(host)
    else:
        console.print(f"host [bold]{host_id}[/bold] released from quarantine")


def _drain(ctx: typer.Context, host_id: str, action: str) -> None:
    s = settings(ctx)
    with api_errors():
        host = s.client().post(f"/api/v1/hosts/{host_id}/{action}")
    if s.json:
        emit_json(host)
    else:
        state = "draining" if host["draining"] else "taking new tasks"
        console.print(f"host [bold]{host_id}[/bold] {state}")
