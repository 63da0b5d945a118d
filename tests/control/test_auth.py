"""The Authority over a real SQLite store: tokens hashed at rest, revocation at once, bootstrap."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

import pytest
from sqlalchemy import select

from corral.control.auth import Authority, digest
from corral.control.fenced import FencedStore
from corral.domain.auth import Role, Team
from corral.domain.errors import ConflictError, Unauthenticated, ValidationError
from corral.store import SqlStore, schema


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def authority(store: SqlStore, clock: Clock) -> Authority:
    return Authority(FencedStore(store, 0), clock, store.load_teams(), store.load_tokens())


def test_a_token_works_until_revoked_and_only_its_digest_is_stored(store: SqlStore) -> None:
    clock = Clock()
    auth = authority(store, clock)

    async def scenario() -> None:
        await auth.put_team(Team("payments"))
        secret, token = await auth.create_token("alice", "payments", Role.USER)
        assert secret.startswith("crl_") and len(secret) > 40
        assert auth.authenticate(secret).name == "alice"
        with store.engine.connect() as conn:
            (body,) = conn.execute(select(schema.tokens.c.body)).one()
        assert secret not in body and digest(secret) in body
        await auth.revoke(token.id)
        with pytest.raises(Unauthenticated, match="revoked"):
            auth.authenticate(secret)
        # A master that loads the store later knows the revocation too.
        with pytest.raises(Unauthenticated, match="revoked"):
            authority(store, clock).authenticate(secret)

    asyncio.run(scenario())


def test_unknown_missing_and_expired_tokens_are_refused(store: SqlStore) -> None:
    clock = Clock()
    auth = authority(store, clock)

    async def scenario() -> None:
        secret, _ = await auth.create_token("ci", "admins", Role.ADMIN, ttl_s=60)
        assert auth.authenticate(secret).is_admin
        clock.now += 61
        with pytest.raises(Unauthenticated, match="expired"):
            auth.authenticate(secret)

    asyncio.run(scenario())
    with pytest.raises(Unauthenticated, match="unknown"):
        auth.authenticate("crl_nonsense")
    with pytest.raises(Unauthenticated, match="required"):
        auth.authenticate("")


def test_user_tokens_need_an_existing_team_and_teams_in_use_stay(store: SqlStore) -> None:
    auth = authority(store, Clock())

    async def scenario() -> None:
        with pytest.raises(ValidationError) as e:
            await auth.create_token("bob", "nosuchteam", Role.USER)
        assert e.value.code == "unknown_team"
        await auth.put_team(Team("search"))
        await auth.create_token("bob", "search", Role.USER)
        with pytest.raises(ConflictError):
            await auth.delete_team("search", active_jobs=0)

    asyncio.run(scenario())


def test_bootstrap_seeds_once_and_writes_a_private_admin_file(store: SqlStore, tmp_path: Path) -> None:
    clock = Clock()
    admin_file = tmp_path / "admin.token"
    seeded = "crl_seeded-admin-token-0123456789"

    async def scenario() -> None:
        auth = authority(store, clock)
        await auth.bootstrap(seeded, "crl_seeded-agent-token-0123456789", str(admin_file))
        assert auth.authenticate(seeded).role is Role.ADMIN
        assert auth.authenticate("crl_seeded-agent-token-0123456789").role is Role.AGENT
        written = admin_file.read_text().strip()
        assert auth.authenticate(written).role is Role.ADMIN
        assert stat.S_IMODE(admin_file.stat().st_mode) == 0o600
        count = len(store.load_tokens())
        again = authority(store, clock)  # the next start: nothing new
        await again.bootstrap(seeded, "crl_seeded-agent-token-0123456789", str(admin_file))
        assert len(store.load_tokens()) == count and admin_file.read_text().strip() == written
        with pytest.raises(ValidationError, match="at least"):
            await again.bootstrap("short", "", "")

    asyncio.run(scenario())
