"""``corral top``: a live terminal view of the fleet, the queue and the busiest jobs.

It polls ``/api/v1/overview`` and ``/api/v1/hosts``; ``render`` turns one poll into one frame, so a
frame can be checked without a terminal. A master that stops answering (a failover, say) shows as a
red line on the last frame while ``top`` keeps trying.
"""

import time
from typing import Annotated, Any

import typer
from rich.console import Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from corral.cli.client import ApiError, Client, Unreachable
from corral.cli.context import settings
from corral.cli.output import console, emit_json

RESOURCES = (  # key in the overview, key in a host's resources, unit
    ("cpu", "cpu", ""),
    ("memory", "memory_mb", "MB"),
    ("disk", "disk_mb", "MB"),
    ("network", "network_mbps", "Mbps"),
)
HEALTH_STYLE = {
    "healthy": "green",
    "draining": "yellow",
    "quarantined": "red",
    "unhealthy": "red",
    "unreachable": "red",
}


def meter(used: float, total: float, width: int = 20) -> Text:
    """``███████░░░░  35%`` — red from 95%, yellow from 80%."""
    share = min(1.0, used / total) if total > 0 else 0.0
    filled = round(share * width)
    style = "red" if share >= 0.95 else "yellow" if share >= 0.8 else "green"
    text = Text("█" * filled, style=style)
    text.append("░" * (width - filled), style="dim")
    text.append(f" {share:4.0%}")
    return text


def _amount(value: float, unit: str) -> str:
    if unit == "MB" and value >= 1024 * 1024:
        return f"{value / 1024 / 1024:,.1f} TB"
    if unit == "MB" and value >= 1024:
        return f"{value / 1024:,.1f} GB"
    number = f"{value:,.1f}".removesuffix(".0")
    return f"{number} {unit}".strip()


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def _health(host: dict[str, Any]) -> str:
    if host["state"] == "unreachable":
        return "unreachable"
    if not host["healthy"]:
        return "unhealthy"
    if host.get("quarantined_until") is not None:
        return "quarantined"
    if host["draining"] or not host["enabled"]:
        return "draining"
    return "healthy"


def fleet_panel(o: dict[str, Any]) -> Panel:
    grid = Table.grid(padding=(0, 1))
    hosts = Text()
    for health, count in o["hosts"].items():
        hosts.append(f"{count} {health}  ", style=HEALTH_STYLE.get(health, ""))
    grid.add_row("hosts", hosts or Text("none registered", style="dim"))
    for name, _field, unit in RESOURCES:
        r = o["resources"][name]
        line = meter(r["allocated"], r["capacity"])
        line.append(f"  {_amount(r['allocated'], unit)} / {_amount(r['capacity'], unit)}", style="dim")
        grid.add_row(name, line)
    return Panel(grid, title="fleet", title_align="left")


def queue_panel(o: dict[str, Any]) -> Panel:
    q = o["queue"]
    grid = Table.grid(padding=(0, 1))
    grid.add_row("pending", Text(str(q["pending"]), style="bold yellow" if q["pending"] else "bold"))
    if q["waiting_retry"]:
        grid.add_row("backing off", str(q["waiting_retry"]))
    grid.add_row("oldest", _duration(q["oldest_s"]) if q["pending"] else "-")
    buckets = Text()
    for seconds, count in q["longer_than"].items():
        buckets.append(f">{int(seconds) // 60}m:{count}  ", style="red" if count else "dim")
    grid.add_row("waiting", buckets)
    if q["by_group"]:
        grid.add_row("by group", ", ".join(f"{g} {n}" for g, n in q["by_group"].items()))
    s = o["scheduler"]
    grid.add_row(
        "scheduler",
        f"{s['last_ms']:.1f} ms last iteration, {s['last_placed']}/{s['last_tasks']} placed; "
        f"{s['placed']:,} in {s['iterations']:,} iterations",
    )
    return Panel(grid, title="queue", title_align="left")


def jobs_table(o: dict[str, Any]) -> Table:
    t = Table(title="busiest jobs", title_justify="left", header_style="bold", expand=True)
    for column, justify in (
        ("job", "left"),
        ("application", "left"),
        ("type", "left"),
        ("group", "left"),
        ("running", "right"),
        ("pending", "right"),
        ("cpu", "right"),
        ("memory", "right"),
    ):
        t.add_column(column, justify=justify)  # type: ignore[arg-type]
    for b in o["busiest"]:
        t.add_row(
            b["job_id"],
            escape(b["application"]),
            b["type"],
            escape(b["capacity_group"]),
            str(b["running"]),
            Text(str(b["pending"]), style="yellow" if b["pending"] else ""),
            _amount(b["cpu"], ""),
            _amount(b["memory_mb"], "MB"),
        )
    return t


def hosts_table(hosts: list[dict[str, Any]], limit: int) -> Table:
    """The fullest hosts first (by cpu share), then the unhealthy ones, up to ``limit`` rows."""

    def fullness(h: dict[str, Any]) -> tuple[bool, float]:
        total = h["resources"]["cpu"]
        return (_health(h) == "healthy", -(h["allocated"]["cpu"] / total if total else 0.0))

    shown = sorted(hosts, key=fullness)[:limit]
    title = f"hosts ({len(shown)} of {len(hosts)})" if len(shown) < len(hosts) else "hosts"
    t = Table(title=title, title_justify="left", header_style="bold", expand=True)
    for column in ("host", "zone", "health", "tasks", "cpu", "memory"):
        t.add_column(column, justify="right" if column == "tasks" else "left")
    for h in shown:
        health = _health(h)
        t.add_row(
            escape(h["id"]),
            escape(h["attributes"]["zone"]),
            Text(health, style=HEALTH_STYLE.get(health, "")),
            str(h["tasks"]),
            meter(h["allocated"]["cpu"], h["resources"]["cpu"], 12),
            meter(h["allocated"]["memory_mb"], h["resources"]["memory_mb"], 12),
        )
    return t


def render(
    o: dict[str, Any], hosts: list[dict[str, Any]], master: str, problem: str = "", host_rows: int = 10
) -> RenderableType:
    """One frame of ``corral top`` from one overview and host list."""
    head = Text.assemble(
        ("corral top", "bold"),
        f"  {master}  leader {o['leader']}  ",
        time.strftime("%H:%M:%S", time.localtime(o["at"])),
    )
    if o["alerts"]:
        head.append(f"  {o['alerts']} reconciliation alert(s): corral admin alerts", style="bold red")
    parts: list[RenderableType] = [head]
    if problem:
        parts.append(Text(f"{problem} (showing the last answer; retrying)", style="bold red"))
    side = Table.grid(expand=True, padding=(0, 1))
    side.add_column(ratio=1)
    side.add_column(ratio=1)
    side.add_row(fleet_panel(o), queue_panel(o))
    parts += [side, jobs_table(o), hosts_table(hosts, host_rows)]
    return Group(*parts)


def _poll(client: Client, jobs: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    overview: dict[str, Any] = client.get("/api/v1/overview", top=jobs)
    hosts: list[dict[str, Any]] = client.get("/api/v1/hosts")["items"]
    return overview, hosts


def top(
    ctx: typer.Context,
    interval: Annotated[float, typer.Option(help="seconds between refreshes", min=0.2)] = 2.0,
    jobs: Annotated[int, typer.Option(help="how many of the busiest jobs to show", min=0, max=100)] = 10,
    hosts: Annotated[int, typer.Option(help="how many hosts to show (fullest first)", min=0)] = 10,
    once: Annotated[bool, typer.Option(help="print one frame and exit")] = False,
) -> None:
    """A live view of the fleet, the queue (with the Titus pending buckets) and the busiest jobs."""
    s = settings(ctx)
    client = s.client()
    try:
        overview, host_list = _poll(client, jobs)
    except (ApiError, Unreachable) as e:
        console.print(f"[red]error[/red] {escape(str(e))}")
        raise typer.Exit(2 if isinstance(e, Unreachable) else 1) from e
    if s.json:
        emit_json({"overview": overview, "hosts": host_list})
        return
    if once:
        console.print(render(overview, host_list, s.master, host_rows=hosts))
        return
    with Live(render(overview, host_list, s.master, host_rows=hosts), console=console, screen=True) as live:
        try:
            while True:
                time.sleep(interval)
                problem = ""
                try:
                    overview, host_list = _poll(client, jobs)
                except (ApiError, Unreachable) as e:
                    problem = f"{s.master}: {e}"
                live.update(render(overview, host_list, s.master, problem, hosts))
        except KeyboardInterrupt:
            pass
