"""``/api/v1/admin/tokens``, ``/api/v1/admin/teams`` and ``/api/v1/whoami``: credentials and teams.

Only admins manage tokens and teams. A token's secret is in the answer to its creation and nowhere else.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import Field

from corral.api.auth import AdminDep, PrincipalDep
from corral.api.deps import ServiceDep
from corral.api.models import Body
from corral.api.responses import errors
from corral.domain.auth import Role, Team, Token
from corral.domain.codec import to_builtins

router = APIRouter(tags=["security"])


class TokenRequest(Body):
    name: str = Field(description="who or what uses it, e.g. alice or ci-deployer")
    team: str = Field(description="the team it acts for (admin tokens: any name, e.g. admins)")
    role: Role = Role.USER
    ttl_s: float | None = Field(None, description="expires this many seconds after creation")
    host: str = Field(
        "", description="agent role only: the credential is bound to this host id and registers no other"
    )


class TeamBody(Body):
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


@router.get("/api/v1/whoami", summary="The principal behind the caller's token", responses=errors())
async def whoami(principal: PrincipalDep) -> dict[str, Any]:
    return {
        "token_id": principal.token_id,
        "name": principal.name,
        "team": principal.team,
        "role": principal.role.value,
    }


@router.post(
    "/api/v1/admin/tokens",
    status_code=201,
    summary="Create an API token (the secret is shown once)",
    responses=errors(400, 413),
)
async def create_token(body: TokenRequest, service: ServiceDep, admin: AdminDep) -> dict[str, Any]:
    secret, token = await service.create_token(admin, body.name, body.team, body.role, body.ttl_s, body.host)
    return {**token_view(token), "secret": secret}


@router.get("/api/v1/admin/tokens", summary="List tokens (never their secrets)", responses=errors())
async def list_tokens(service: ServiceDep, _: AdminDep) -> dict[str, Any]:
    return {"items": [token_view(t) for t in service.tokens()]}


@router.post(
    "/api/v1/admin/tokens/{token_id}/revoke",
    summary="Revoke a token: it stops working at once",
    responses=errors(404),
)
async def revoke_token(token_id: str, service: ServiceDep, _: AdminDep) -> dict[str, Any]:
    return token_view(await service.revoke_token(token_id))


@router.get("/api/v1/admin/teams", summary="List teams and their limits", responses=errors())
async def list_teams(service: ServiceDep, _: AdminDep) -> dict[str, Any]:
    return {"items": [to_builtins(t) for t in service.teams()]}


@router.put("/api/v1/admin/teams/{name}", summary="Create or replace a team", responses=errors(400, 413))
async def put_team(name: str, body: TeamBody, service: ServiceDep, _: AdminDep) -> dict[str, Any]:
    team = Team(
        name=name,
        emails=tuple(body.emails),
        max_active_jobs=body.max_active_jobs,
        max_active_tasks=body.max_active_tasks,
        submit_rate_per_s=body.submit_rate_per_s,
        submit_burst=body.submit_burst,
    )
    saved: dict[str, Any] = to_builtins(await service.put_team(team))
    return saved


@router.delete(
    "/api/v1/admin/teams/{name}",
    status_code=204,
    summary="Delete a team without live tokens or jobs",
    responses=errors(404, 409),
)
async def delete_team(name: str, service: ServiceDep, _: AdminDep) -> Response:
    await service.delete_team(name)
    return Response(status_code=204)
