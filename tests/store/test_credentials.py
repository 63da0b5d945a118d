"""Teams and tokens in the store, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import select

from corral.domain.auth import Role, Team, Token
from corral.store import schema
from corral.store.sql import SqlStore

TOKEN = Token("tok-1", "alice", "payments", Role.USER, digest="ab" * 32, created_at=100.0)


def test_teams_are_put_replaced_listed_and_deleted(store: SqlStore) -> None:
    store.put_team(Team("search", emails=("@search.example.com",)), epoch=0)
    store.put_team(Team("payments", max_active_jobs=3), epoch=0)
    store.put_team(Team("payments", max_active_jobs=5, submit_rate_per_s=2.5), epoch=0)
    teams = store.load_teams()
    assert [t.name for t in teams] == ["payments", "search"]
    assert teams[0].max_active_jobs == 5 and teams[0].submit_rate_per_s == 2.5
    assert teams[1].emails == ("@search.example.com",)
    store.delete_team("search", epoch=0)
    assert [t.name for t in store.load_teams()] == ["payments"]


def test_tokens_are_kept_by_digest_and_revoked_in_place(store: SqlStore) -> None:
    store.put_token(TOKEN, epoch=0)
    store.put_token(replace(TOKEN, id="tok-2", name="bob", expires_at=500.0), epoch=0)
    store.put_token(replace(TOKEN, revoked_at=200.0), epoch=0)
    tokens = {t.id: t for t in store.load_tokens()}
    assert tokens["tok-1"].revoked_at == 200.0 and tokens["tok-1"].role is Role.USER
    assert tokens["tok-2"].expires_at == 500.0 and tokens["tok-2"].revoked_at is None
    with store.engine.connect() as conn:
        bodies = [b for (b,) in conn.execute(select(schema.tokens.c.body))]
    assert all("ab" * 32 in b for b in bodies)  # the digest, which is all there is to keep
