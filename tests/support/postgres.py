"""Fresh PostgreSQL databases for tests: a new schema per use on the machine's server (127.0.0.1:5432,
trust auth, database ``test``; ``scripts/ensure-postgres.sh`` makes sure it answers)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

SERVER = os.environ.get("CORRAL_TEST_PG", "postgres@127.0.0.1:5432/test")


def url_for(schema: str) -> str:
    return f"postgresql+psycopg://{SERVER}?options=-csearch_path%3D{schema}"


@contextmanager
def fresh_database() -> Iterator[str]:
    """The SQLAlchemy URL of an empty database (a schema of its own), dropped afterwards."""
    schema = f"corral_test_{secrets.token_hex(6)}"
    with psycopg.connect(f"postgresql://{SERVER}", autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield url_for(schema)
    finally:
        with psycopg.connect(f"postgresql://{SERVER}", autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
