"""``corral hostgroup ...``: the host groups the autoscaler sizes, and why it keeps or removes each host."""

import time
from typing import Annotated, Any

import typer
from rich.markup import escape

from corral.cli.context import api_errors, settings
from corral.cli.output import ago, console, emit_json, styled, table

app = typer.Typer(
    help="Host groups: the shape of a new host, min/max size and idle hosts, cooldowns, provider.",
    no_args_is_help=True,
)

PATH = "/api/v1/hostgroups"
VIEW_ONLY = ("scalable", "status")  # what a group's view adds to its configuration (not sent back)


def _load(path: str) -> list[dict[str, Any]]:
    from corral.cli.jobs import _load as read  # the same reading and parsing as a job file

    docs = read(path)
    for doc in docs:
        if not isinstance(doc, dict) or not isinstance(doc.get("name"), str) or not doc["name"]:
            raise typer.BadParameter(f"{path}: each host group is a mapping with a name", param_hint="--file")
    return docs


def _sizes(g: dict[str, Any]) -> str:
    return f"{g['min_size']}/{g['max_size'] or '-'}"


def _provider(g: dict[str, Any]) -> str:
    kind = str(g["provider"]["kind"])
    return kind if g["autoscale"] else f"{kind} (autoscale off)"


@app.command("ls")
def list_groups(ctx: typer.Context) -> None:
    """List host groups: hosts, idle, desired and being removed, sizes, provider, the latest notes."""
    s = settings(ctx)
    with api_errors():
        groups = s.client().get(PATH)["items"]
    if s.json:
        emit_json(groups)
        return
    rows = []
    for g in groups:
        st = g["status"]
        rows.append(
            (
                g["name"],
                _provider(g),
                st["hosts"] if not st["unreachable"] else f"{st['hosts']} (+{st['unreachable']} unreachable)",
                st["idle"],
                st["desired"],
                st["removing"] + st["terminating"],
                _sizes(g),
                f"{g['min_idle']}/{g['max_idle'] or '-'}",
                escape("; ".join(st["notes"]) or st["provider_error"] or ""),
            )
        )
    columns = ("NAME", "PROVIDER", "HOSTS", "IDLE", "DESIRED", "REMOVING", "MIN/MAX", "IDLE MIN/MAX", "NOTES")
    table(f"host groups ({len(groups)})", columns, rows)


@app.command()
def show(ctx: typer.Context, name: str) -> None:
    """Show a host group: its configuration and its hosts now."""
    s = settings(ctx)
    with api_errors():
        g = s.client().get(f"{PATH}/{name}")
    if s.json:
        emit_json(g)
        return
    shape, st = g["shape"], g["status"]
    r = shape["resources"]
    console.print(
        f"[bold]host group {g['name']}[/bold]  provider {_provider(g)}"
        + (f"  — {escape(g['description'])}" if g["description"] else "")
    )
    console.print(
        f"  shape {r['cpu']:g} cpu, {r['memory_mb']} MB, {r['disk_mb']} MB disk, {r['network_mbps']} Mbps"
        + (f", {r['gpu']} gpu" if r["gpu"] else "")
        + f"; {shape['instance_type']} in {', '.join(shape['zones'])}; ports {shape['port_range'][0]}-"
        f"{shape['port_range'][1]}"
    )
    if shape["attributes"]:
        console.print("  attributes " + escape(", ".join(f"{k}={v}" for k, v in shape["attributes"].items())))
    console.print(
        f"  size {_sizes(g)}  idle {g['min_idle']}/{g['max_idle'] or '-'}"
        f"  cooldowns up {g['scale_up_cooldown_s']:g}s down {g['scale_down_cooldown_s']:g}s"
        f"  cost {g['cost_per_host']:g} per host"
    )
    console.print(
        f"  hosts {st['hosts']} ready, {st['unreachable']} unreachable, {st['idle']} idle;"
        f" desired {'-' if st['desired'] is None else st['desired']}, {st['removing']} removing,"
        f" {st['terminating']} terminating"
    )
    console.print(
        f"  last scale-up {ago(st['last_scale_up_at'])}, last scale-down {ago(st['last_scale_down_at'])}"
    )
    if st["provider_error"]:
        console.print(f"  [red]provider error[/red] {escape(st['provider_error'])}")
    for note in st["notes"]:
        console.print(f"  note: {escape(note)}")


@app.command()
def apply(
    ctx: typer.Context,
    file: Annotated[
        str,
        typer.Option(
            "-f", "--file", help="host group file (YAML or JSON, name inside; several ok; - for stdin)"
        ),
    ],
) -> None:
    """Create or replace the host group(s) described in a file."""
    s = settings(ctx)
    applied = []
    with api_errors():
        client = s.client()
        for doc in _load(file):
            applied.append(client.put(f"{PATH}/{doc['name']}", doc))
    if s.json:
        emit_json(applied if len(applied) != 1 else applied[0])
        return
    for g in applied:
        console.print(
            f"host group [bold]{g['name']}[/bold] applied (size {_sizes(g)}, provider {_provider(g)})"
        )


@app.command("set")
def set_fields(
    ctx: typer.Context,
    name: str,
    min_size: Annotated[int | None, typer.Option("--min", help="fewest hosts")] = None,
    max_size: Annotated[int | None, typer.Option("--max", help="most hosts (0: no bound of its own)")] = None,
    min_idle: Annotated[int | None, typer.Option("--min-idle", help="idle hosts kept for a burst")] = None,
    max_idle: Annotated[
        int | None, typer.Option("--max-idle", help="idle hosts kept at most (0: min)")
    ] = None,
    up_cooldown: Annotated[float | None, typer.Option("--scale-up-cooldown", help="seconds")] = None,
    down_cooldown: Annotated[float | None, typer.Option("--scale-down-cooldown", help="seconds")] = None,
    cost: Annotated[float | None, typer.Option("--cost", help="cost per host")] = None,
    autoscale: Annotated[
        bool | None, typer.Option("--autoscale/--no-autoscale", help="scale the group, or only show it")
    ] = None,
    description: Annotated[str | None, typer.Option(help="what the group is for")] = None,
) -> None:
    """Change a few fields of an existing host group (the rest stays as it is)."""
    changes = {
        "min_size": min_size,
        "max_size": max_size,
        "min_idle": min_idle,
        "max_idle": max_idle,
        "scale_up_cooldown_s": up_cooldown,
        "scale_down_cooldown_s": down_cooldown,
        "cost_per_host": cost,
        "autoscale": autoscale,
        "description": description,
    }
    changes = {k: v for k, v in changes.items() if v is not None}
    if not changes:
        raise typer.BadParameter("nothing to change: give at least one option (see --help)")
    s = settings(ctx)
    with api_errors():
        client = s.client()
        body = {k: v for k, v in client.get(f"{PATH}/{name}").items() if k not in VIEW_ONLY}
        g = client.put(f"{PATH}/{name}", body | changes)
    if s.json:
        emit_json(g)
    else:
        said = ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in changes.items())
        console.print(f"host group [bold]{name}[/bold] updated: {said}")


@app.command()
def delete(ctx: typer.Context, name: str) -> None:
    """Forget a host group's configuration: its hosts stay, the autoscaler leaves them alone."""
    with api_errors():
        settings(ctx).client().request("DELETE", f"{PATH}/{name}")
    console.print(f"host group [bold]{name}[/bold] deleted")


VERDICT_STYLE = {"kept": "green", "removing": "yellow", "terminating": "red"}


@app.command()
def explain(ctx: typer.Context, name: str) -> None:
    """Why each host is kept (not scaled down) or what its removal waits for; the group's notes, the last
    shortfall (tasks waiting for room, hosts wanted) and the recent actions."""
    s = settings(ctx)
    with api_errors():
        data = s.client().get(f"{PATH}/{name}/explain")
    if s.json:
        emit_json(data)
        return
    scaled = "autoscaled" if data["scalable"] else "not autoscaled"
    desired = "-" if data["desired"] is None else data["desired"]
    console.print(f"[bold]host group {data['group']}[/bold] ({scaled}), desired {desired}")
    if not data["trusted"]:
        console.print(
            "  [yellow]the leader's picture of the fleet is incomplete: nothing is removed[/yellow]"
        )
    table(
        f"hosts ({len(data['hosts'])})",
        ("HOST", "STATE", "TASKS", "VERDICT", "KIND", "WHY"),
        _host_rows(data),
    )
    if data["scale_to"] is not None:
        console.print(f"scaling to {data['scale_to']}: {escape(data['scale_reason'])}")
    for note in data["notes"]:
        console.print(f"note: {escape(note)}")
    if data["provider_error"]:
        retry = ""
        if data.get("retry_at"):
            retry = f" (next try in {max(0.0, data['retry_at'] - time.time()):.0f}s)"
        console.print(f"[red]provider error[/red] {escape(data['provider_error'])}{retry}")
    _shortfall(data.get("shortfall"))
    recent = data.get("recent") or []
    if recent:
        rows = [(ago(a["at"]), a["action"], escape(a["detail"])) for a in recent]
        table("recent actions", ("WHEN", "ACTION", "DETAIL"), rows)


def _host_rows(data: dict[str, Any]) -> list[tuple[Any, ...]]:
    rows = []
    for h in data["hosts"]:
        verdict = h["verdict"]
        style = VERDICT_STYLE.get(verdict, "default")
        why = h.get("detail", "")
        if h.get("waiting_for"):
            why = f"{why} — waits for {h['waiting_for']}" if why else f"waits for {h['waiting_for']}"
        kind = h.get("kind", "")
        rows.append(
            (h["host_id"], styled(h["state"]), h["tasks"], f"[{style}]{verdict}[/]", kind, escape(why))
        )
    return rows


def _shortfall(shortfall: dict[str, Any] | None) -> None:
    """The autoscaler's last trial placement of the pending tasks on new hosts (all groups)."""
    if not shortfall:
        return
    wanted = ", ".join(f"{g} {n}" for g, n in shortfall["wanted"].items()) or "none"
    console.print(
        f"last shortfall: pending tasks {shortfall['pending_tasks']}; new hosts wanted: {wanted}"
        f" ({shortfall['trial_ms']:g} ms)"
    )
    for task, why in shortfall["unfixable_sample"].items():
        console.print(f"  task {task} fits no group's new host: {escape(why)}")
