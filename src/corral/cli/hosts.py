"""``corral host ...``: the fleet."""

from __future__ import annotations

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
                styled(h["state"]) + (" [yellow]draining[/yellow]" if h["draining"] else ""),
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
def drain(ctx: typer.Context, host_id: str) -> None:
    """Give a host no new tasks (what runs there keeps running)."""
    _drain(ctx, host_id, "drain")


@app.command()
def undrain(ctx: typer.Context, host_id: str) -> None:
    """Let a drained host take new tasks again."""
    _drain(ctx, host_id, "undrain")


def _drain(ctx: typer.Context, host_id: str, action: str) -> None:
    s = settings(ctx)
    with api_errors():
        host = s.client().post(f"/api/v1/hosts/{host_id}/{action}")
    if s.json:
        emit_json(host)
    else:
        state = "draining" if host["draining"] else "taking new tasks"
        console.print(f"host [bold]{host_id}[/bold] {state}")
