"""PostgreSQL: idempotency keys looked up from the leader's event loop, on an async connection of their
own — no worker thread between a submission and its lookup.

A keyed submission waits for its lookup before it is admitted. Through a worker thread that lookup took
12 ms under load (the pool's ping, the query and the rollback are three round trips, and after each the
thread waits for the interpreter lock while the loop serves requests); here it is one round trip whose
answer the loop reads itself. The connection is in autocommit mode, so it never sits in a transaction;
one that breaks is dropped and the next lookup opens another.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

import psycopg
from sqlalchemy import URL

from corral.domain.idempotency import IdempotencyRecord
from corral.store import rows, schema
from corral.store.protocol import StoreError

LOOKUP_TIMEOUT_S = 10.0  # a lookup not answered by then fails (its connection is dropped)
FIND = (
    "SELECT principal, key, request_hash, resource, resource_id, created_at "
    f"FROM {schema.idempotency.name} "
    "WHERE (principal, key) IN (SELECT * FROM unnest(%(principals)s::text[], %(keys)s::text[]))"
)


def conninfo(url: URL) -> str:
    """The libpq URI of a SQLAlchemy PostgreSQL URL (``postgresql+psycopg://...``), password included."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class PgKeyLookup:
    """``await lookup(pairs)``: the idempotency records of (principal, key) pairs, from the loop."""

    def __init__(self, url: URL) -> None:
        self._conninfo = conninfo(url)
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._lock = asyncio.Lock()  # one query at a time on the connection (the caller groups them)

    async def __call__(self, pairs: Sequence[tuple[str, str]]) -> list[IdempotencyRecord]:
        if not pairs:
            return []
        params = {"principals": [p for p, _ in pairs], "keys": [k for _, k in pairs]}
        async with self._lock:
            try:
                found = await asyncio.wait_for(self._find(params), LOOKUP_TIMEOUT_S)
            except (psycopg.Error, TimeoutError) as e:
                await self._drop()
                raise StoreError(f"cannot look up idempotency keys: {e!r}") from e
        return [rows.idempotency_record(row) for row in found]

    async def close(self) -> None:
        await self._drop()  # not waiting for a lookup in flight: that one fails

    async def _find(self, params: dict[str, list[str]]) -> list[Any]:
        conn = await self._connection()
        cursor = await conn.execute(FIND, params)
        return await cursor.fetchall()

    async def _connection(self) -> psycopg.AsyncConnection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = await psycopg.AsyncConnection.connect(
                self._conninfo, autocommit=True, connect_timeout=int(LOOKUP_TIMEOUT_S)
            )
            # Never prepared: a plan cached while the table was small would scan it whole ever after
            # (see engine.py); unnamed statements are planned with their values each time.
            self._conn.prepare_threshold = None
        return self._conn

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error, TimeoutError):  # it was broken already
                await asyncio.wait_for(conn.close(), LOOKUP_TIMEOUT_S)
