"""Tables and migrations. ``MIGRATIONS[i]`` takes the schema from version ``i`` to ``i + 1``.

Rows keep the whole record as JSON in ``body`` and copy out the columns that queries filter on.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import (
    Column,
    Connection,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

schema_version = Table(
    "corral_schema_version",
    metadata,
    Column("version", Integer, nullable=False),
)

jobs = Table(
    "corral_jobs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("state", String(32), nullable=False),
    Column("job_type", String(16), nullable=False),
    Column("owner", String(320), nullable=False),
    Column("application", String(64), nullable=False),
    Column("capacity_group", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("finished_at", Float, nullable=True),
    Column("body", Text, nullable=False),
    Index("corral_jobs_state", "state"),
    Index("corral_jobs_finished_at", "finished_at"),
    Index("corral_jobs_owner", "owner"),
    Index("corral_jobs_application", "application"),
)

job_labels = Table(
    "corral_job_labels",
    metadata,
    Column("job_id", String(64), primary_key=True),
    Column("key", String(256), primary_key=True),
    Column("value", Text, nullable=False),
    Index("corral_job_labels_kv", "key", "value"),
)

tasks = Table(
    "corral_tasks",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("job_id", String(64), nullable=False),
    Column("state", String(32), nullable=False),
    Column("host_id", String(255), nullable=True),
    Column("created_at", Float, nullable=False),
    Column("finished_at", Float, nullable=True),
    Column("body", Text, nullable=False),
    Index("corral_tasks_job_id", "job_id"),
    Index("corral_tasks_state", "state"),
    Index("corral_tasks_host_id", "host_id"),
)

capacity_groups = Table(
    "corral_capacity_groups",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("body", Text, nullable=False),
)

settings = Table(
    "corral_settings",
    metadata,
    Column("key", String(128), primary_key=True),
    Column("value", Text, nullable=False),
)

leader = Table(
    "corral_leader",
    metadata,
    Column("id", Integer, primary_key=True),  # one row: id 1
    Column("holder", String(128), nullable=False),  # the leading master process (unique per process)
    Column("url", String(512), nullable=False),  # where clients and agents reach it
    Column("epoch", Integer, nullable=False),  # +1 at every new leader: writes carry it (fencing)
    Column("expires_at", Float, nullable=False),  # the database's clock, seconds since the epoch
    Column("renewed_at", Float, nullable=False),  # when the leader last renewed (a missed renewal shows)
    Column("ttl_s", Float, nullable=False),
)

teams = Table(
    "corral_teams",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("body", Text, nullable=False),
)

tokens = Table(
    "corral_tokens",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("body", Text, nullable=False),  # the token's record: its digest, never the secret
)

CORRAL_TABLES = frozenset(t.name for t in metadata.sorted_tables)


def _v1(conn: Connection) -> None:
    for table in (jobs, job_labels, tasks):
        table.create(conn)


def _v2(conn: Connection) -> None:
    """Capacity groups and operator settings (e.g. each tier's scheduling mode)."""
    for table in (capacity_groups, settings):
        table.create(conn)


def _v3(conn: Connection) -> None:
    """The leader lease: one row naming the leader, its epoch and when its lease runs out."""
    leader.create(conn)
    conn.execute(
        leader.insert().values(id=1, holder="", url="", epoch=0, expires_at=0.0, renewed_at=0.0, ttl_s=0.0)
    )


def _v4(conn: Connection) -> None:
    """Teams and API tokens (issue 7)."""
    for table in (teams, tokens):
        table.create(conn)


MIGRATIONS: tuple[Callable[[Connection], None], ...] = (_v1, _v2, _v3, _v4)
LATEST_VERSION = len(MIGRATIONS)
