"""Leader election and fencing on the store itself: a lease row with a TTL, on the database's clock.

A master leads while it holds the lease; each new leader gets the next epoch. Every write transaction
first reads the epoch with a share lock (``fenced``): a write from an older epoch is refused, so a leader
that was paused (GC, SIGSTOP, a network partition) and resumes after a standby took over cannot change
anything. The lease row's lock also orders a takeover against in-flight writes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, func, literal, select, update

from corral.store import schema


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
    t = schema.leader
    with engine.connect() as conn:
        columns = (t.c.holder, t.c.url, t.c.epoch, t.c.expires_at, t.c.renewed_at, t.c.ttl_s, db_now(engine))
        row = conn.execute(select(*columns).where(t.c.id == 1)).one()
    return Lease(row[0], row[1], int(row[2]), float(row[3]), float(row[4]), float(row[5]), float(row[6]))


def acquire(engine: Engine, holder: str, url: str, ttl_s: float, take_from: int | None = None) -> int | None:
    """Take the lease if it has run out (or was released); return the new epoch, or None if someone leads.

    With ``take_from``, take it from that epoch's leader even though its lease is live — for a leader
    known to be gone (it missed renewals and does not answer). Fencing makes this safe even if it was not
    gone: its next write or renewal is refused and it steps down.
    """
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
        epoch = conn.execute(stmt).scalar_one_or_none()
    return None if epoch is None else int(epoch)


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


def fenced(conn: Connection, epoch: int) -> None:
    """Inside a write transaction: refuse unless ``epoch`` is still the current one (share-locking the row,
    so a takeover waits for this transaction, or this transaction sees the takeover)."""
    t = schema.leader
    stmt = select(t.c.epoch).where(t.c.id == 1)
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(read=True)
    current = conn.execute(stmt).scalar_one()
    if int(current) != epoch:
        raise FencedError(f"this master's epoch {epoch} is over: epoch {current} leads now")
