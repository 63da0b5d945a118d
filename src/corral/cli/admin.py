"""``corral admin ...``: backups, restores, verification, reconciliation alerts, pruning."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from corral.cli.context import api_errors, settings
from corral.cli.output import console, emit_json, errors
from corral.control.config import MasterConfig
from corral.store import backup as backups
from corral.store.protocol import StoreError
from corral.store.sql import open_store

app = typer.Typer(help="Operator commands.", no_args_is_help=True)

StoreUrl = Annotated[str, typer.Option(help="SQLAlchemy URL of the store (default: SQLite in --data-dir)")]
DataDir = Annotated[Path, typer.Option(help="where the default SQLite store lives")]


def _url(store_url: str, data_dir: Path) -> str:
    return store_url or MasterConfig(data_dir=data_dir).resolved_store_url


def _fail(error: StoreError) -> typer.Exit:
    errors.print(f"[red]error[/red] {error}")
    return typer.Exit(1)


@app.command()
def backup(file: Path, store_url: StoreUrl = "", data_dir: DataDir = Path(".corral")) -> None:
    """Write a consistent snapshot of the store to FILE (JSON lines; gzip if it ends in .gz)."""
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
    try:
        report = backups.verify(file)
    except StoreError as e:
        raise _fail(e) from e
    console.print(f"[green]ok[/green] {file}: {report}")


@app.command()
def alerts(ctx: typer.Context) -> None:
    """Reconciliation alerts: agents running tasks the master has no record of (nothing was killed)."""
    s = settings(ctx)
    with api_errors():
        items = s.client().get("/api/v1/admin/alerts")["items"]
    if s.json or not items:
        emit_json(items)
        return
    for a in items:
        console.print(f"[bold]{a['id']}[/bold] host {a['host_id']}: {len(a['unknown_tasks'])} unknown tasks")
        console.print(f"  {a['message']}")


@app.command()
def resolve(
    ctx: typer.Context,
    alert_id: str,
    kill: Annotated[bool, typer.Option("--kill/--keep", help="kill the unknown tasks, or keep them running")],
) -> None:
    """Answer a reconciliation alert once the master's state is checked."""
    with api_errors():
        result = (
            settings(ctx)
            .client()
            .post(f"/api/v1/admin/alerts/{alert_id}/resolve", {"action": "kill" if kill else "keep"})
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
