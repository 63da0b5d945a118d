"""``/api/v1/admin/tokens``, ``/api/v1/admin/teams`` and ``/api/v1/whoami``: credentials and teams.

Only admins manage tokens and teams. A token's secret is in the answer to its creation and nowhere else.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from pydantic import Field

from corral.api.auth import AdminDep, PrincipalDep
from corral.api.deps import master_of
from corral.api.models import Strict
from corral.control.master import Master
from corral.domain.auth import Role, Team, Token
from corral.domain.codec import to_builtins

router = APIRouter(tags=["security"])
MasterDep = Annotated[Master, Depends(master_of)]


class TokenRequest(Strict):
    name: str = Field(description="who or what uses it, e.g. alice or ci-deployer")
    team: str = Field(description="the team it acts for (admin tokens: any name, e.g. admins)")
    role: Role = Role.USER
    ttl_s: float | None = Field(None, description="expires this many seconds after creation")


class TeamBody(Strict):
    emails: list[str] = Field(
        default_factory=list, description="owner addresses or @domains its jobs may name"
    )
    max_active_jobs: int = Field(0, ge=0, le=10**9)
    max_active_tasks: int = Field(0, ge=0, le=10**9)
    submit_rate_per_s: float = Field(0.0, ge=0, le=1e6)
    submit_burst: int = Field(0, ge=0, le=10**9)


def token_view(token: Token) -> dict[str, Any]:
    data: dict[str, Any] = to_builtins(token)
    del data["digest"]  # not secret, but of no use to anyone reading the list
    data["state"] = "revoked" if token.revoked_at is not None else "active"
    return data


@router.get("/api/v1/whoami", summary="The principal behind the caller's token")
async def whoami(principal: PrincipalDep) -> dict[str, Any]:
    return {
        "token_id": principal.token_id,
        "name": principal.name,
        "team": principal.team,
        "role": principal.role.value,
    }


@router.post(
    "/api/v1/admin/tokens", status_code=201, summary="Create an API token (the secret is shown once)"
)
async def create_token(body: TokenRequest, master: MasterDep, admin: AdminDep) -> dict[str, Any]:
    secret, token = await master.auth.create_token(
        body.name, body.team, body.role, body.ttl_s, created_by=admin.name
    )
    return {**token_view(token), "secret": secret}


@router.get("/api/v1/admin/tokens", summary="List tokens (never their secrets)")
async def list_tokens(master: MasterDep, _: AdminDep) -> dict[str, Any]:
    tokens = sorted(master.auth.tokens.values(), key=lambda t: t.created_at)
    return {"items": [token_view(t) for t in tokens]}


@router.post("/api/v1/admin/tokens/{token_id}/revoke", summary="Revoke a token: it stops working at once")
async def revoke_token(token_id: str, master: MasterDep, _: AdminDep) -> dict[str, Any]:
    return token_view(await master.auth.revoke(token_id))


@router.get("/api/v1/admin/teams", summary="List teams and their limits")
async def list_teams(master: MasterDep, _: AdminDep) -> dict[str, Any]:
    return {"items": [to_builtins(t) for t in sorted(master.auth.teams.values(), key=lambda t: t.name)]}


@router.put("/api/v1/admin/teams/{name}", summary="Create or replace a team")
async def put_team(name: str, body: TeamBody, master: MasterDep, _: AdminDep) -> dict[str, Any]:
    team = Team(
        name=name,
        emails=tuple(body.emails),
        max_active_jobs=body.max_active_jobs,
        max_active_tasks=body.max_active_tasks,
        submit_rate_per_s=body.submit_rate_per_s,
        submit_burst=body.submit_burst,
    )
    saved: dict[str, Any] = to_builtins(await master.auth.put_team(team))
    return saved


@router.delete(
    "/api/v1/admin/teams/{name}", status_code=204, summary="Delete a team without live tokens or jobs"
)
async def delete_team(name: str, master: MasterDep, _: AdminDep) -> Response:
    active = sum(1 for j in master.state.jobs.values() if j.is_active and j.team == name)
    await master.auth.delete_team(name, active)
    return Response(status_code=204)
