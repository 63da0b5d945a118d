"""``corral admin token ...``, ``corral admin team ...`` and ``corral whoami``."""

from typing import Annotated

import typer

from corral.cli.context import api_errors, settings
from corral.cli.output import ago, console, emit_json, table

tokens = typer.Typer(
    help="API tokens: create (the secret is shown once), list, revoke.", no_args_is_help=True
)
teams = typer.Typer(help="Teams: who may own which jobs, and their quotas.", no_args_is_help=True)

DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """``90s``, ``15m``, ``12h``, ``30d`` or plain seconds."""
    text = text.strip().lower()
    unit = DURATION_UNITS.get(text[-1:]) if text else None
    try:
        return float(text[:-1]) * unit if unit else float(text)
    except ValueError as e:
        raise typer.BadParameter(f"{text!r} is not a duration like 30d, 12h or 90s") from e


@tokens.command("create")
def create_token(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="who or what uses it, e.g. alice or ci-deployer")],
    team: Annotated[str, typer.Option(help="the team it acts for")] = "",
    role: Annotated[str, typer.Option(help="admin, user, viewer or agent")] = "user",
    expires: Annotated[str, typer.Option(help="lifetime, e.g. 30d or 12h (default: no expiry)")] = "",
    agent: Annotated[
        bool, typer.Option("--agent", help="an agent credential (same as --role agent)")
    ] = False,
    host: Annotated[
        str, typer.Option(help="agent credentials: bind it to this host id (it registers no other host)")
    ] = "",
) -> None:
    """Create a token. Its secret is printed once: store it now.

    Agent credentials: a join token (no --host) registers any host that has no credential of its own
    yet, and the master mints one for that host; a credential made with --host registers that host only."""
    s = settings(ctx)
    if agent or host:
        role = "agent"
    if not team:
        team = {"admin": "admins", "agent": "agents"}.get(role, "")
        if not team:
            raise typer.BadParameter("--team is required for user and viewer tokens")
    body = {"name": name, "team": team, "role": role, "ttl_s": parse_duration(expires) if expires else None}
    if host:
        body["host"] = host
    with api_errors():
        created = s.client().post("/api/v1/admin/tokens", body)
    if s.json:
        emit_json(created)
        return
    console.print(f"created {created['id']} ({created['role']} of team {created['team']}); the secret:")
    print(created["secret"])


@tokens.command("list")
def list_tokens(ctx: typer.Context) -> None:
    """Every token, active and revoked (never their secrets)."""
    s = settings(ctx)
    with api_errors():
        items = s.client().get("/api/v1/admin/tokens")["items"]
    if s.json:
        emit_json(items)
        return
    table(
        "tokens",
        ["ID", "NAME", "TEAM", "ROLE", "HOST", "STATE", "CREATED", "EXPIRES", "BY"],
        [
            (
                t["id"],
                t["name"],
                t["team"],
                t["role"],
                t.get("host") or "",
                t["state"],
                ago(t["created_at"]),
                "never" if t["expires_at"] is None else f"{t['expires_at']:.0f}",
                t["created_by"],
            )
            for t in items
        ],
    )


@tokens.command("revoke")
def revoke_token(ctx: typer.Context, token_id: str) -> None:
    """Revoke a token: the next request that carries it is refused."""
    s = settings(ctx)
    with api_errors():
        revoked = s.client().post(f"/api/v1/admin/tokens/{token_id}/revoke")
    if s.json:
        emit_json(revoked)
        return
    console.print(f"revoked {revoked['id']} ({revoked['name']})")


@teams.command("set")
def set_team(
    ctx: typer.Context,
    name: str,
    email: Annotated[
        list[str] | None, typer.Option(help="an owner address or @domain its jobs may name (repeat)")
    ] = None,
    max_jobs: Annotated[int, typer.Option(help="active jobs at most (0: no limit)")] = 0,
    max_tasks: Annotated[int, typer.Option(help="active tasks at most (0: no limit)")] = 0,
    rate: Annotated[float, typer.Option(help="submissions per second per token (0: the default)")] = 0.0,
    burst: Annotated[int, typer.Option(help="submissions in a burst per token (0: the default)")] = 0,
) -> None:
    """Create or replace a team."""
    s = settings(ctx)
    body = {
        "emails": email or [],
        "max_active_jobs": max_jobs,
        "max_active_tasks": max_tasks,
        "submit_rate_per_s": rate,
        "submit_burst": burst,
    }
    with api_errors():
        team = s.client().put(f"/api/v1/admin/teams/{name}", body)
    emit_json(team) if s.json else console.print(f"team {team['name']} saved")


@teams.command("ls")
def list_teams(ctx: typer.Context) -> None:
    """Teams and their limits."""
    s = settings(ctx)
    with api_errors():
        items = s.client().get("/api/v1/admin/teams")["items"]
    if s.json:
        emit_json(items)
        return
    table(
        "teams",
        ["NAME", "EMAILS", "MAX JOBS", "MAX TASKS", "RATE/S", "BURST"],
        [
            (
                t["name"],
                ", ".join(t["emails"]) or "any",
                t["max_active_jobs"] or "-",
                t["max_active_tasks"] or "-",
                t["submit_rate_per_s"] or "default",
                t["submit_burst"] or "default",
            )
            for t in items
        ],
    )


@teams.command("rm")
def remove_team(ctx: typer.Context, name: str) -> None:
    """Delete a team that has no live tokens and no active jobs."""
    with api_errors():
        settings(ctx).client().request("DELETE", f"/api/v1/admin/teams/{name}")
    console.print(f"team {name} deleted")


def whoami(ctx: typer.Context) -> None:
    """Who the master thinks you are."""
    s = settings(ctx)
    with api_errors():
        me = s.client().get("/api/v1/whoami")
    if s.json:
        emit_json(me)
        return
    console.print(f"{me['name']} ({me['role']} of team {me['team']}, token {me['token_id'] or '-'})")
