"""``corral admin ...``: backups, restores, verification, reconciliation alerts, pruning.

Backup, restore and verify open the store themselves, so they import it (SQLAlchemy and all) when they
run; the other commands are API clients and load none of it.
"""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from corral.cli.context import api_errors, settings
from corral.cli.output import console, emit_json, errors

if TYPE_CHECKING:
    from corral.store.protocol import StoreError

app = typer.Typer(help="Operator commands.", no_args_is_help=True)

StoreUrl = Annotated[str, typer.Option(help="SQLAlchemy URL of the store (default: SQLite in --data-dir)")]
DataDir = Annotated[Path, typer.Option(help="where the default SQLite store lives")]


def _url(store_url: str, data_dir: Path) -> str:
    from corral.control.config import MasterConfig

    return store_url or MasterConfig(data_dir=data_dir).resolved_store_url


def _fail(error: "StoreError") -> typer.Exit:
    errors.print(f"[red]error[/red] {error}")
    return typer.Exit(1)


@app.command()
def backup(file: Path, store_url: StoreUrl = "", data_dir: DataDir = Path(".corral")) -> None:
    """Write a consistent snapshot of the store to FILE (JSON lines; gzip if it ends in .gz)."""
    from corral.store import backup as backups
    from corral.store.protocol import StoreError
    from corral.store.sql import open_store

    try:
        store = open_store(_url(store_url, data_dir))
        try:
            counts = backups.backup(store, file)
        finally:
            store.close()
    except StoreError as e:
        raise _fail(e) from e
    console.print(f"backup written to {file}: {counts}")


@app.command()
def restore(file: Path, store_url: StoreUrl = "", data_dir: DataDir = Path(".corral")) -> None:
    """Load a backup into an empty store (all or nothing)."""
    from corral.store import backup as backups
    from corral.store.protocol import StoreError
    from corral.store.sql import open_store

    try:
        store = open_store(_url(store_url, data_dir))
        try:
            counts = backups.restore(store, file)
        finally:
            store.close()
    except StoreError as e:
        raise _fail(e) from e
    console.print(f"restored from {file}: {counts}")


@app.command()
def verify(file: Path) -> None:
    """Restore FILE into a scratch store and read every record back (test your restores)."""
    from corral.store import backup as backups
    from corral.store.protocol import StoreError

    try:
        report = backups.verify(file)
    except StoreError as e:
        raise _fail(e) from e
    console.print(f"[green]ok[/green] {file}: {report}")


@app.command()
def check(store_url: StoreUrl = "", data_dir: DataDir = Path(".corral")) -> None:
    """Check the store in place as a master does before it leads: its schema, its integrity record (the
    counts every write keeps), orphaned tasks, unknown values, rows whose columns disagree with their body."""
    from corral.store.protocol import StoreError
    from corral.store.sql import open_store

    try:
        store = open_store(_url(store_url, data_dir))
        try:
            record = store.verify()
        finally:
            store.close()
    except StoreError as e:
        raise _fail(e) from e
    console.print(
        f"[green]ok[/green] generation {record.generation}: {record.active_jobs} active jobs, "
        f"{record.active_tasks} unfinished tasks"
    )


@app.command()
def reseal(
    store_url: StoreUrl = "",
    data_dir: DataDir = Path(".corral"),
    yes: Annotated[bool, typer.Option("--yes", help="I have checked the store: accept it as it is")] = False,
) -> None:
    """Accept the store as it is now: recompute its integrity record from what it holds. Only after you
    have checked it (and no master runs): a master then leads on exactly this state."""
    from corral.store import backup as backups
    from corral.store.protocol import StoreError
    from corral.store.sql import open_store

    if not yes:
        raise typer.BadParameter("resealing accepts the store as it is: pass --yes once you have checked it")
    try:
        store = open_store(_url(store_url, data_dir))
        try:
            record = backups.reseal(store)
        finally:
            store.close()
    except StoreError as e:
        raise _fail(e) from e
    console.print(
        f"resealed at generation {record.generation}: {record.active_jobs} active jobs, "
        f"{record.active_tasks} unfinished tasks"
    )


@app.command()
def alerts(ctx: typer.Context) -> None:
    """What waits for an operator: unknown tasks (nothing was killed), impostor agents, jobs set aside."""
    s = settings(ctx)
    with api_errors():
        items = s.client().get("/api/v1/admin/alerts")["items"]
    if s.json or not items:
        emit_json(items)
        return
    for a in items:
        kind = a.get("kind", "unknown_tasks")
        if kind == "unknown_tasks":
            hosts = ", ".join(a.get("hosts") or [a["host_id"]])
            what = f"{len(a['unknown_tasks'])} unknown tasks on {hosts} (resolve with --kill or --keep)"
        elif kind == "impostor":
            what = f"registration as host {a['host_id']} refused, {a.get('attempts', 1)} attempts (--dismiss)"
        else:
            what = f"job {a['job_id']} set aside at {a['stage']} (--retry)"
        console.print(f"[bold]{a['id']}[/bold] {what}")
        console.print(f"  {a['message']}")


@app.command()
def resolve(
    ctx: typer.Context,
    alert_id: str,
    kill: Annotated[bool, typer.Option("--kill", help="unknown tasks: kill them")] = False,
    keep: Annotated[bool, typer.Option("--keep", help="unknown tasks: keep them running")] = False,
    retry: Annotated[bool, typer.Option("--retry", help="a job set aside: reconcile it again")] = False,
    dismiss: Annotated[bool, typer.Option("--dismiss", help="an impostor alert: dismiss it")] = False,
) -> None:
    """Answer an alert once the master's state is checked."""
    chosen = [
        name for name, on in (("kill", kill), ("keep", keep), ("retry", retry), ("dismiss", dismiss)) if on
    ]
    if len(chosen) != 1:
        raise typer.BadParameter("give exactly one of --kill, --keep, --retry, --dismiss")
    with api_errors():
        result = (
            settings(ctx).client().post(f"/api/v1/admin/alerts/{alert_id}/resolve", {"action": chosen[0]})
        )
    emit_json(result)


@app.command()
def prune(
    ctx: typer.Context,
    older_than: Annotated[float, typer.Option(help="seconds since the job finished")] = 7 * 24 * 3600.0,
) -> None:
    """Delete finished jobs (and their tasks) older than --older-than seconds."""
    s = settings(ctx)
    with api_errors():
        result = s.client().post("/api/v1/admin/prune", {"older_than_s": older_than})
    emit_json(result)
