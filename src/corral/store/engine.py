"""The SQLAlchemy engine of a store URL, with the session settings every connection of a store gets —
the same in the master and in its writer process."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, create_engine, event

# A PostgreSQL session of a process that stopped mid-transaction (SIGSTOP, a stalled VM) would hold the
# lease row's lock and block every takeover; the server ends such a session after this long.
IDLE_IN_TRANSACTION_S = 1.0


@dataclass(frozen=True, slots=True)
class EngineSettings:
    sqlite_synchronous: str = "FULL"
    # PostgreSQL (0: never): how long the server lets a session sit in a transaction waiting for it,
    # before ending the session and so releasing its locks.
    idle_in_transaction_s: float = IDLE_IN_TRANSACTION_S


def create_store_engine(url: str, settings: EngineSettings) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        synchronous = settings.sqlite_synchronous

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={synchronous}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    engine = create_engine(url, pool_pre_ping=True)
    idle_ms = int(settings.idle_in_transaction_s * 1000)

    @event.listens_for(engine, "connect")
    def _session(dbapi_conn: Any, _record: Any) -> None:
        with dbapi_conn.cursor() as cur:
            cur.execute(f"SET idle_in_transaction_session_timeout = {idle_ms}")
            # psycopg prepares a statement used five times, and PostgreSQL then may keep one generic plan
            # for it, made while the tables were small: a scan of the whole table that stays cached as
            # they grow (the integrity count of a batch took 3 ms instead of 0.3 ms after a few thousand
            # jobs). Our statements are cheap to plan; plan each with its values.
            cur.execute("SET plan_cache_mode = force_custom_plan")
        dbapi_conn.commit()

    return engine
