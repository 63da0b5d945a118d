"""``corral job plan -f FILE``: a dry run of a submission — where the job's tasks would go now, and what
would make the ones that would wait fit. Nothing is stored or placed."""

from typing import Annotated, Any

import typer

from corral.cli.context import api_errors, settings
from corral.cli.output import console, emit_json, table


def register(app: typer.Typer) -> None:
    app.command()(plan)


def plan(
    ctx: typer.Context,
    file: Annotated[
        str,
        typer.Option("-f", "--file", help="job file, as for submit (YAML or JSON; - for stdin)"),
    ],
) -> None:
    """Plan the job(s) in a file without submitting: where the tasks would go, and what would fit the rest."""
    from corral.cli.jobs import _load  # the same reading and parsing as a submission

    s = settings(ctx)
    plans = []
    with api_errors():
        client = s.client()
        for doc in _load(file):
            plans.append(client.post("/api/v1/jobs/plan", doc))
    if s.json:
        emit_json(plans if len(plans) != 1 else plans[0])
        return
    for i, answer in enumerate(plans):
        if i:
            console.print()
        show(answer)


def show(p: dict[str, Any]) -> None:
    job = p["job"]
    console.print(
        f"[bold]plan[/bold] for a {job['type']} job of {job['tasks']} task{_s(job['tasks'])} "
        f"(capacity group {job['capacity_group']}, {job['tier']} tier, {job['mode']} mode): "
        f"[green]{p['placed']} placed[/green]"
        + (f", [yellow]{p['unplaced']} would wait[/yellow]" if p["unplaced"] else "")
    )
    if p["hosts"]:
        rows = [(h["host_id"], h["tasks"]) for h in p["hosts"]]
        if p["other_hosts"]:
            rows.append((f"and {p['other_hosts']} more hosts", p["other_tasks"]))
        console.print("where the tasks would go:")
        table("", ("HOST", "TASKS"), rows)
        zones = ", ".join(f"{zone} {n}" for zone, n in p["zones"].items())
        console.print(f"  by zone: {zones}")
    for r in p["reasons"]:
        console.print(f"  [yellow]{r['tasks']} would wait[/yellow]: {r['message']} ({r['reason']})")
    if p["suggestions"]:
        console.print("[bold]what would make them fit[/bold]")
        for suggestion in p["suggestions"]:
            mark = "[green]✓[/green]" if suggestion["complete"] else "-"
            console.print(f"  {mark} {suggestion['message']}  [dim]({suggestion['kind']})[/dim]")
    for note in p.get("notes", []):
        console.print(f"  [dim]{note}[/dim]")


def show_ranking(ranking: dict[str, Any]) -> None:
    """The task's host and the best others for it now, with each scorer's contribution (``corral why``)."""
    scorers = [name for name, weight in ranking["weights"].items() if weight > 0]
    console.print(
        f"why this host ({ranking['mode']} mode; {ranking['feasible']} host"
        f"{_s(ranking['feasible'])} could take the task now):"
    )
    console.print(f"  [dim]{ranking['note']}[/dim]")
    rows = []
    chosen = ranking.get("chosen")
    listed = [chosen] if chosen else []
    listed += ranking["others"]
    listed.sort(key=lambda h: (h["rank"] == 0, h["rank"]))
    for h in listed:
        here = h is chosen
        name = f"[bold]{h['host_id']}[/bold] (its host)" if here else h["host_id"]
        rank = str(h["rank"]) if h["feasible"] else "no longer fits"
        rows.append(
            (rank, name, f"{h['score']:.4f}", *(f"{h['contributions'].get(c, 0.0):.4f}" for c in scorers))
        )
    shares = "  ".join(f"{c}={ranking['shares'].get(c, 0.0):.2f}" for c in scorers)
    table("hosts by score (each scorer: its share x its value)", ("RANK", "HOST", "SCORE", *scorers), rows)
    console.print(f"  [dim]shares of the weights: {shares}[/dim]")


def _s(n: int) -> str:
    return "" if n == 1 else "s"
