"""``corral group ...`` (capacity groups) and ``corral scheduler ...`` (each tier's mode)."""

from typing import Annotated, Any

import typer

from corral.cli.context import api_errors, settings
from corral.cli.output import console, emit_json, table

app = typer.Typer(help="Capacity groups: tier, guarantee and limit.", no_args_is_help=True)
scheduler_app = typer.Typer(help="The scheduler: each tier's mode (pack or spread).", no_args_is_help=True)

Cpu = Annotated[float, typer.Option(help="guaranteed cores")]
Mem = Annotated[int, typer.Option(help="guaranteed memory (MB)")]


def _vector(
    cpu: float, memory_mb: int, disk_mb: int = 0, network_mbps: int = 0, gpu: int = 0
) -> dict[str, Any]:
    return {"cpu": cpu, "memory_mb": memory_mb, "disk_mb": disk_mb, "network_mbps": network_mbps, "gpu": gpu}


def _body(
    tier: str, cpu: float, memory_mb: int, gpu: int, limit_cpu: float, limit_memory_mb: int, description: str
) -> dict[str, Any]:
    limit = None
    if limit_cpu or limit_memory_mb:
        limit = _vector(limit_cpu, limit_memory_mb)
    return {
        "tier": tier,
        "guarantee": _vector(cpu, memory_mb, gpu=gpu),
        "limit": limit,
        "description": description,
    }


def _show(ctx: typer.Context, group: dict[str, Any], verb: str) -> None:
    if settings(ctx).json:
        emit_json(group)
    else:
        console.print(f"capacity group [bold]{group['name']}[/bold] {verb} (tier {group['tier']})")


@app.command("create")
def create(
    ctx: typer.Context,
    name: str,
    tier: Annotated[str, typer.Option(help="critical or flex")] = "flex",
    cpu: Cpu = 0.0,
    memory_mb: Mem = 0,
    gpu: Annotated[int, typer.Option(help="guaranteed GPUs")] = 0,
    limit_cpu: Annotated[float, typer.Option(help="hard limit on cores (0: none)")] = 0.0,
    limit_memory_mb: Annotated[int, typer.Option(help="hard limit on memory (0: none)")] = 0,
    description: Annotated[str, typer.Option(help="what the group is for")] = "",
) -> None:
    """Create a capacity group."""
    body = {"name": name, **_body(tier, cpu, memory_mb, gpu, limit_cpu, limit_memory_mb, description)}
    with api_errors():
        group = settings(ctx).client().post("/api/v1/capacity-groups", body)
    _show(ctx, group, "created")


@app.command("update")
def update(
    ctx: typer.Context,
    name: str,
    tier: Annotated[str, typer.Option(help="critical or flex")] = "flex",
    cpu: Cpu = 0.0,
    memory_mb: Mem = 0,
    gpu: Annotated[int, typer.Option(help="guaranteed GPUs")] = 0,
    limit_cpu: Annotated[float, typer.Option(help="hard limit on cores (0: none)")] = 0.0,
    limit_memory_mb: Annotated[int, typer.Option(help="hard limit on memory (0: none)")] = 0,
    description: Annotated[str, typer.Option(help="what the group is for")] = "",
) -> None:
    """Replace a capacity group's tier, guarantee and limit."""
    body = _body(tier, cpu, memory_mb, gpu, limit_cpu, limit_memory_mb, description)
    with api_errors():
        group = settings(ctx).client().put(f"/api/v1/capacity-groups/{name}", body)
    _show(ctx, group, "updated")


@app.command("ls")
def list_groups(ctx: typer.Context) -> None:
    """List capacity groups: tier, guarantee, limit and what each uses now."""
    s = settings(ctx)
    with api_errors():
        groups = s.client().get("/api/v1/capacity-groups")["items"]
    if s.json:
        emit_json(groups)
        return
    rows = []
    for g in groups:
        limit = g.get("limit")
        rows.append(
            (
                g["name"],
                g["tier"],
                f"{g['guarantee']['cpu']:g} cpu / {g['guarantee']['memory_mb']} MB",
                f"{limit['cpu']:g} cpu / {limit['memory_mb']} MB" if limit else "-",
                f"{g['usage']['cpu']:g} cpu / {g['usage']['memory_mb']} MB",
            )
        )
    table(f"capacity groups ({len(groups)})", ("NAME", "TIER", "GUARANTEE", "LIMIT", "USING"), rows)


@app.command("show")
def show(ctx: typer.Context, name: str) -> None:
    """Show a capacity group."""
    with api_errors():
        emit_json(settings(ctx).client().get(f"/api/v1/capacity-groups/{name}"))


@app.command("delete")
def delete(ctx: typer.Context, name: str) -> None:
    """Delete a capacity group that no active job uses."""
    with api_errors():
        settings(ctx).client().request("DELETE", f"/api/v1/capacity-groups/{name}")
    console.print(f"capacity group [bold]{name}[/bold] deleted")


@scheduler_app.command("show")
def scheduler_show(ctx: typer.Context) -> None:
    """Each tier's mode, the weights of each mode, and iteration statistics."""
    s = settings(ctx)
    with api_errors():
        data = s.client().get("/api/v1/scheduler")
    if s.json:
        emit_json(data)
        return
    for tier, mode in data["modes"].items():
        console.print(f"tier [bold]{tier}[/bold]: {mode}")
    stats = data["stats"]
    console.print(
        f"iterations {stats['iterations']}, placed {stats['placed']}, last {stats['last_ms']:.1f} ms"
    )


@scheduler_app.command("mode")
def scheduler_mode(
    ctx: typer.Context,
    tier: Annotated[str, typer.Argument(help="critical or flex")],
    mode: Annotated[str, typer.Argument(help="pack or spread")],
) -> None:
    """Switch a tier between pack (fill hosts: failover bursts) and spread (normal hours)."""
    s = settings(ctx)
    with api_errors():
        data = s.client().put(f"/api/v1/scheduler/modes/{tier}", {"mode": mode})
    if s.json:
        emit_json(data)
    else:
        console.print(f"tier [bold]{tier}[/bold] now schedules in [bold]{data['modes'][tier]}[/bold] mode")
