"""The ``corral`` command."""

import gc
import sys
from typing import Annotated

import typer

from corral import __version__
from corral.cli import admin, groups, hostgroups, hosts, jobs, security, servers, tasks, top
from corral.cli.client import default_master
from corral.cli.context import Settings, api_errors, settings
from corral.cli.output import console, emit_json

app = typer.Typer(
    name="corral",
    help="Corral: run batch and service jobs as containers on a fleet of hosts.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(jobs.app, name="job")
app.add_typer(tasks.app, name="task")
app.add_typer(hosts.app, name="host")
app.add_typer(groups.app, name="group")
app.add_typer(hostgroups.app, name="hostgroup")
app.add_typer(groups.scheduler_app, name="scheduler")
app.command()(servers.master)
app.command()(servers.agent)
app.command()(servers.up)
app.command()(tasks.why)
app.command()(top.top)
admin.app.add_typer(security.tokens, name="token")
admin.app.add_typer(security.teams, name="team")
app.add_typer(admin.app, name="admin")
app.command()(security.whoami)


@app.callback()
def root(
    ctx: typer.Context,
    master: Annotated[str, typer.Option(help="master URL (env CORRAL_MASTER)")] = "",
    json: Annotated[bool, typer.Option("--json", help="print JSON instead of tables")] = False,
    token: Annotated[
        str, typer.Option(help="API token (env CORRAL_TOKEN, or CORRAL_TOKEN_FILE, or .corral/admin.token)")
    ] = "",
    ca_file: Annotated[str, typer.Option(help="CA bundle for an https master (env CORRAL_CA_FILE)")] = "",
) -> None:
    ctx.obj = Settings(master or default_master(), json, token or None, ca_file or None)


@app.command()
def version() -> None:
    """Print Corral's version."""
    console.print(__version__)


@app.command()
def status(ctx: typer.Context) -> None:
    """What the master is doing: state sizes, scheduler, store, alerts."""
    s = settings(ctx)
    with api_errors():
        data = s.client().get("/api/v1/status")
    emit_json(data)


@app.command()
def events(ctx: typer.Context, job: Annotated[str | None, typer.Option(help="only this job")] = None) -> None:
    """Follow the event stream: a snapshot, then every job and task change (Ctrl-C to stop)."""
    s = settings(ctx)
    try:
        with api_errors():
            for kind, data in s.client().events(job):
                if s.json:
                    print(typer.style(kind, bold=True), data)
                elif kind == "task":
                    reason = f" {data['reason']}" if data.get("reason") else ""
                    console.print(f"task {data['id']} (job {data['job_id']}) {data['state']}{reason}")
                elif kind == "job":
                    console.print(f"[bold]job {data['id']}[/bold] {data['state']}")
                else:
                    console.print(f"[dim]{kind} {data}[/dim]")
    except KeyboardInterrupt:
        pass


def main() -> None:
    # httpx's package imports its own command line (httpx._main: click, pygments, rich.progress, ...)
    # whenever those happen to be installed: ~20 ms of every client command, for a program corral never
    # runs. A module marked absent fails to import, and httpx falls back to its stub ``httpx.main``.
    if "httpx" not in sys.modules:
        sys.modules["httpx._main"] = None  # type: ignore[assignment]
    try:
        app()
    finally:
        # On the way out the interpreter collects garbage over every object typer, pydantic and rich
        # made (~60 ms of a client command's ~0.3 s). The process is ending: nothing needs collecting.
        gc.freeze()
