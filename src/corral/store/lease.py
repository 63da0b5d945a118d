"""Leader election and fencing on the store itself: a lease row with a TTL, on the database's clock.

A master leads while it holds the lease; each new leader gets the next epoch. Every write transaction
carries the epoch its leader was given and first checks it against the lease row, locking that row
(``fenced``): a write from an older epoch is refused, so a leader that was paused (GC, SIGSTOP, a network
partition) and resumes after a standby took over cannot change anything — not even a write that was
already running in a thread when it stepped down. The lock orders a takeover against in-flight writes: the
takeover's UPDATE waits for their commit, or they see the new epoch.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, func, literal, select, text, update
from sqlalchemy.exc import DBAPIError, OperationalError

from corral.store import schema

log = logging.getLogger(__name__)

LOCK_WAIT_S = 0.25  # PostgreSQL: how long taking the lease waits for a lease row that a write holds


class FencedError(Exception):
    """A write from a leader whose epoch is no longer current: it must stop leading at once."""


@dataclass(frozen=True, slots=True)
class Lease:
    holder: str
    url: str
    epoch: int
    expires_at: float
    renewed_at: float
    ttl_s: float
    now: float  # the database's clock when read

    @property
    def live(self) -> bool:
        return bool(self.holder) and self.expires_at > self.now

    @property
    def overdue(self) -> bool:
        """The leader missed a renewal (it renews every third of its TTL): it may be gone."""
        return self.live and self.now - self.renewed_at > 0.5 * self.ttl_s


def db_now(engine: Engine) -> Any:
    """The database's clock as seconds since the epoch (PostgreSQL's; for SQLite, this host's)."""
    if engine.dialect.name == "postgresql":
        return func.extract("epoch", func.clock_timestamp())
    return literal(time.time())


def read(engine: Engine) -> Lease:
    with engine.connect() as conn:
        return read_in(conn)


def read_in(conn: Connection, *, lock: bool = False) -> Lease:
    """The lease as ``conn``'s transaction sees it; with ``lock``, locked until the transaction ends (on
    PostgreSQL; a SQLite caller holds the write lock already)."""
    t = schema.leader
    columns = (t.c.holder, t.c.url, t.c.epoch, t.c.expires_at, t.c.renewed_at, t.c.ttl_s, db_now(conn.engine))
    stmt = select(*columns).where(t.c.id == 1)
    if lock and conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(key_share=True)
    row = conn.execute(stmt).one()
    return Lease(row[0], row[1], int(row[2]), float(row[3]), float(row[4]), float(row[5]), float(row[6]))


def acquire(engine: Engine, holder: str, url: str, ttl_s: float, take_from: int | None = None) -> int | None:
    """Take the lease if it has run out (or was released); return the new epoch, or None if someone leads.

    With ``take_from``, take it from that epoch's leader even though its lease is live — for a leader
    known to be gone (it missed renewals and does not answer). Fencing makes this safe even if it was not
    gone: its next write or renewal is refused and it steps down.

    On PostgreSQL a busy lease row (locked by a write in progress) is not waited for: None, and the
    caller looks again. A leader that stopped mid-transaction (SIGSTOP) can hold that lock for as long
    as it is stopped — even while the server waits to send it results, which no idle timeout ends — so
    a taker that has found it gone ends its sessions holding the row (their uncommitted writes were never
    acknowledged) and takes the lease.
    """
    try:
        return _acquire(engine, holder, url, ttl_s, take_from)
    except OperationalError as e:
        if not _lock_not_available(e):
            raise
    if take_from is None:
        return None
    ended = end_sessions_holding_the_lease(engine)
    if ended:
        log.warning("the lease row was held by %d sessions of a gone leader: ended them to take over", ended)
    try:
        return _acquire(engine, holder, url, ttl_s, take_from)
    except OperationalError as e:
        if not _lock_not_available(e):
            raise
    return None


def _acquire(engine: Engine, holder: str, url: str, ttl_s: float, take_from: int | None) -> int | None:
    t = schema.leader
    now = db_now(engine)
    condition = t.c.expires_at < now if take_from is None else t.c.epoch == take_from
    stmt = (
        update(t)
        .where(t.c.id == 1, condition)
        .values(
            holder=holder, url=url, epoch=t.c.epoch + 1, expires_at=now + ttl_s, renewed_at=now, ttl_s=ttl_s
        )
        .returning(t.c.epoch)
    )
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = {int(LOCK_WAIT_S * 1000)}")
        epoch = conn.execute(stmt).scalar_one_or_none()
    return None if epoch is None else int(epoch)


def _lock_not_available(error: OperationalError) -> bool:
    return getattr(error.orig, "sqlstate", None) == "55P03"


def end_sessions_holding_the_lease(engine: Engine) -> int:
    """PostgreSQL: end every other session holding a lock on the lease row (a SELECT ... FOR UPDATE/SHARE
    or an UPDATE in an open transaction); how many were ended. Needs the right to signal them (the same
    role, or pg_signal_backend); without it nothing is ended and the caller waits for the lock."""
    stmt = text(
        "SELECT count(pg_terminate_backend(l.pid)) FROM pg_locks l "
        "WHERE l.locktype = 'relation' AND l.granted AND l.pid <> pg_backend_pid() "
        "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        "AND l.relation = CAST(:table AS regclass) AND l.mode IN ('RowShareLock', 'RowExclusiveLock')"
    )
    try:
        with engine.begin() as conn:
            return int(conn.execute(stmt, {"table": schema.leader.name}).scalar_one())
    except DBAPIError as e:
        log.warning("cannot end the sessions holding the lease row: %s", e)
        return 0


def renew(engine: Engine, holder: str, epoch: int, ttl_s: float) -> bool:
    """Extend the lease; False means it was lost (another master leads now)."""
    t = schema.leader
    now = db_now(engine)
    stmt = (
        update(t)
        .where(t.c.id == 1, t.c.holder == holder, t.c.epoch == epoch)
        .values(expires_at=now + ttl_s, renewed_at=now)
        .returning(t.c.epoch)
    )
    with engine.begin() as conn:
        return conn.execute(stmt).scalar_one_or_none() is not None


def release(engine: Engine, holder: str, epoch: int) -> None:
    """Give the lease up now (a clean shutdown), so a standby need not wait for it to run out."""
    t = schema.leader
    with engine.begin() as conn:
        conn.execute(
            update(t).where(t.c.id == 1, t.c.holder == holder, t.c.epoch == epoch).values(expires_at=0.0)
        )


_FENCE = (  # built once: every write starts with it
    update(schema.leader)
    .where(schema.leader.c.id == 1, schema.leader.c.epoch == bindparam("fence_epoch"))
    .values(generation=schema.leader.c.generation + 1)
    .returning(schema.leader.c.generation)
)


def fenced(conn: Connection, epoch: int) -> int:
    """First thing in a write transaction: refuse unless ``epoch`` is still the current one, and bump the
    store's generation (the integrity record's twin, see ``integrity``). Returns the new generation.

    Check, lock and bump are one UPDATE of the lease row, which holds the row locked until the
    transaction ends: a takeover's UPDATE waits for this transaction's commit, or this UPDATE, coming
    second, finds the new epoch and changes nothing. On SQLite the caller has begun the transaction with
    BEGIN IMMEDIATE, so it holds the database's write lock already.
    """
    t = schema.leader
    generation = conn.execute(_FENCE, {"fence_epoch": epoch}).scalar_one_or_none()
    if generation is not None:
        return int(generation)
    raise refusal(epoch, conn.execute(select(t.c.epoch).where(t.c.id == 1)).scalar_one_or_none())


def refusal(epoch: int, current: int | None) -> FencedError:
    """Why a write of ``epoch`` was fenced, ``current`` being the lease row's epoch (None: no row)."""
    if current is None:
        return FencedError("the store has no lease row: nobody may write to it")
    return FencedError(f"this master's epoch {epoch} is over: epoch {current} leads now")
