"""Authentication and the records behind it: teams and API tokens, kept in memory by the leader and
written through to the store before an answer (like capacity groups: rare changes, read on every call).

A token is ``crl_`` plus 43 random URL-safe characters. The store keeps its SHA-256 only; a presented
token is hashed and looked up, so revoking takes effect at the next request.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import secrets
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from corral.control.clock import Clock
from corral.control.fenced import FencedStore
from corral.domain import wire
from corral.domain.auth import (
    ADMINS_TEAM,
    AGENTS_TEAM,
    Principal,
    Role,
    Team,
    Token,
    validate_team,
    validate_token_name,
)
from corral.domain.errors import ConflictError, NotFoundError, Unauthenticated, ValidationError

log = logging.getLogger(__name__)

TOKEN_PREFIX = "crl_"
MIN_BOOTSTRAP_LENGTH = 20


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


class Authority:
    def __init__(self, store: FencedStore, clock: Clock, teams: list[Team], tokens: list[Token]) -> None:
        self.store = store
        self.clock = clock
        self.teams: dict[str, Team] = {t.name: t for t in teams}
        self.tokens: dict[str, Token] = {t.id: t for t in tokens}
        self._by_digest: dict[str, Token] = {t.digest: t for t in tokens}
        self._by_host: dict[str, Token] = {}  # host -> its bound agent credential (the newest usable)
        for t in sorted(tokens, key=lambda t: t.created_at):
            self._remember(t)
        self.on_revoke: list[Callable[[Token], object]] = []  # e.g. close the sessions it opened

    # -- authentication ---------------------------------------------------------------------------

    def authenticate(self, secret: str) -> Principal:
        token = self._by_digest.get(digest(secret)) if secret else None
        if token is None:
            raise Unauthenticated("unknown token" if secret else "a bearer token is required")
        if token.revoked_at is not None:
            raise Unauthenticated(f"token {token.id} ({token.name}) was revoked")
        if not token.usable(self.clock()):
            raise Unauthenticated(f"token {token.id} ({token.name}) has expired")
        return Principal(token.id, token.name, token.team, token.role, token.host)

    # -- tokens -----------------------------------------------------------------------------------

    async def create_token(
        self,
        name: str,
        team: str,
        role: Role,
        ttl_s: float | None = None,
        created_by: str = "",
        secret: str | None = None,
        host: str = "",
    ) -> tuple[str, Token]:
        """A new token; the secret is returned once and never again. ``host``: an agent credential bound
        to that host (it registers that host id and no other)."""
        validate_token_name(name)
        if host and (role is not Role.AGENT or not wire.AGENT_ID.match(host)):
            raise ValidationError(
                "invalid_host", "only an agent credential is bound to a host, and to a valid host id", "host"
            )
        if role in (Role.USER, Role.VIEWER) and team not in self.teams:
            raise ValidationError("unknown_team", f"team {team!r} does not exist (create it first)", "team")
        if ttl_s is not None and not ttl_s > 0:
            raise ValidationError("invalid_value", "ttl_s must be positive", "ttl_s")
        secret = secret or new_secret()
        now = self.clock()
        token = Token(
            id="tok-" + secrets.token_hex(6),
            name=name,
            team=team,
            role=role,
            digest=digest(secret),
            created_at=now,
            expires_at=None if ttl_s is None else now + ttl_s,
            created_by=created_by,
            host=host,
        )
        await asyncio.to_thread(self.store.put_token, token)
        self._remember(token)
        return secret, token

    async def revoke(self, token_id: str, *, close_sessions: bool = True) -> Token:
        """Revoke a token; ``close_sessions=False``: without the hooks that close what it opened (a host
        credential replaced because it never reached its agent opened nothing, and its host's new
        session must stay)."""
        token = self.tokens.get(token_id)
        if token is None:
            raise NotFoundError("token", token_id)
        if token.revoked_at is not None:
            return token
        revoked = replace(token, revoked_at=self.clock())
        await asyncio.to_thread(self.store.put_token, revoked)
        self._remember(revoked)
        for hook in self.on_revoke if close_sessions else ():
            hook(revoked)
        return revoked

    def still_valid(self, token_id: str) -> bool:
        """For long-lived connections: whether the token they were opened with still works."""
        if not token_id:  # authentication is off
            return True
        token = self.tokens.get(token_id)
        return token is not None and token.usable(self.clock())

    def host_credential(self, host_id: str) -> str | None:
        """The id of the usable credential bound to ``host_id``, if one was minted or created."""
        token = self._by_host.get(host_id)
        if token is None or not token.usable(self.clock()):
            return None
        return token.id

    def _remember(self, token: Token) -> None:
        self.tokens[token.id] = token
        self._by_digest[token.digest] = token
        if token.host:
            current = self._by_host.get(token.host)
            if token.usable(self.clock()) or (current is not None and current.id == token.id):
                self._by_host[token.host] = token

    # -- teams ------------------------------------------------------------------------------------

    def team(self, name: str) -> Team:
        team = self.teams.get(name)
        if team is None:
            raise NotFoundError("team", name)
        return team

    async def put_team(self, team: Team) -> Team:
        validate_team(team)
        old = self.teams.get(team.name)
        team = replace(team, created_at=old.created_at if old is not None else self.clock())
        await asyncio.to_thread(self.store.put_team, team)
        self.teams[team.name] = team
        return team

    async def delete_team(self, name: str, active_jobs: int) -> None:
        self.team(name)
        live = [t.id for t in self.tokens.values() if t.team == name and t.usable(self.clock())]
        if live or active_jobs:
            raise ConflictError(
                "team_in_use", f"team {name!r} has {len(live)} live tokens and {active_jobs} active jobs"
            )
        await asyncio.to_thread(self.store.delete_team, name)
        del self.teams[name]

    # -- bootstrap --------------------------------------------------------------------------------

    async def bootstrap(self, admin_secret: str, agent_secret: str, admin_file: str) -> None:
        """Make sure the operator can get in: seed the configured tokens, or write a new admin token to
        ``admin_file`` when no usable admin token exists. Nothing is written when all is in place."""
        for secret, role, name, team in (
            (admin_secret, Role.ADMIN, "bootstrap-admin", ADMINS_TEAM),
            (agent_secret, Role.AGENT, "bootstrap-agent", AGENTS_TEAM),
        ):
            if not secret:
                continue
            if len(secret) < MIN_BOOTSTRAP_LENGTH:
                raise ValidationError(
                    "weak_bootstrap_token",
                    f"a bootstrap token needs at least {MIN_BOOTSTRAP_LENGTH} characters",
                )
            known = self._by_digest.get(digest(secret))
            if known is None:
                await self.create_token(name, team, role, secret=secret, created_by="bootstrap")
                log.info("seeded the %s token %s", role.value, name)
            elif known.revoked_at is not None:
                log.warning("the configured bootstrap %s token was revoked; not re-creating it", role.value)
        if admin_file:
            existing = await asyncio.to_thread(_read_secret, Path(admin_file))
            known = self._by_digest.get(digest(existing)) if existing else None
            if known is not None and known.usable(self.clock()) and known.role is Role.ADMIN:
                return
            secret, token = await self.create_token(
                "local-admin", ADMINS_TEAM, Role.ADMIN, created_by="bootstrap"
            )
            await asyncio.to_thread(write_secret, Path(admin_file), secret)
            log.info("wrote a new admin token (%s) to %s", token.id, admin_file)


def _read_secret(path: Path) -> str:
    return path.read_text().strip() if path.exists() else ""


def write_secret(path: Path, secret: str) -> None:
    """Write a credential readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")
    os.chmod(path, 0o600)
