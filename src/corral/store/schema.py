"""Tables and migrations. ``MIGRATIONS[i]`` takes the schema from version ``i`` to ``i + 1``.

Rows keep the whole record as JSON in ``body`` and copy out the columns that queries filter on. The
tables below are the latest shape; a column added by a later migration is listed in ``ADDED_COLUMNS`` so
that the migration creating its table leaves it out, and every store, old or new, reaches the latest
shape through the same steps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    select,
    text,
)
from sqlalchemy.schema import CreateColumn, CreateTable

from corral.domain.states import JobState, TaskState

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
    Column("epoch", Integer, nullable=False, server_default=text("0")),  # the leader's epoch that wrote it
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
    Column("epoch", Integer, nullable=False, server_default=text("0")),  # the leader's epoch that wrote it
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
    # The integrity record's generation, kept here too: data tables restored from an older copy (with
    # their integrity row) carry an older generation than this row, which a restore leaves alone.
    Column("generation", BigInteger, nullable=False, server_default=text("0")),
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

integrity = Table(
    "corral_integrity",
    metadata,
    Column("id", Integer, primary_key=True),  # one row: id 1
    # +1 at every write transaction; the lease row holds the same number (see ``leader.generation``).
    Column("generation", BigInteger, nullable=False),
    Column("active_jobs", BigInteger, nullable=False),  # job rows whose state is not Finished
    Column("active_tasks", BigInteger, nullable=False),  # task rows whose state is not Finished
    Column("updated_at", Float, nullable=False),
    Column("epoch", Integer, nullable=False),  # the epoch of the last write
)

idempotency = Table(
    "corral_idempotency",
    metadata,
    Column("principal", String(320), primary_key=True),
    Column("key", String(256), primary_key=True),
    Column("request_hash", String(128), nullable=False),
    Column("resource", String(32), nullable=False),
    Column("resource_id", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Index("corral_idempotency_created_at", "created_at"),
)

CORRAL_TABLES = frozenset(t.name for t in metadata.sorted_tables)

# Columns added to an existing table by a migration: (the version that adds it, the column).
ADDED_COLUMNS: tuple[tuple[int, Column[Any]], ...] = (
    (5, jobs.c.epoch),
    (5, tasks.c.epoch),
    (5, leader.c.generation),
)

# The version whose migration creates each table.
TABLE_VERSIONS: dict[str, int] = {
    jobs.name: 1,
    job_labels.name: 1,
    tasks.name: 1,
    capacity_groups.name: 2,
    settings.name: 2,
    leader.name: 3,
    teams.name: 4,
    tokens.name: 4,
    integrity.name: 5,
    idempotency.name: 5,
}


def column_version(column: Column[Any]) -> int:
    """The version from which ``column`` exists: the migration that added it, or that made its table."""
    for version, added in ADDED_COLUMNS:
        if (added.table.name, added.name) == (column.table.name, column.name):
            return version
    return TABLE_VERSIONS[column.table.name]


FINISHED_JOB = JobState.FINISHED.value
FINISHED_TASK = TaskState.FINISHED.value


def _create(conn: Connection, table: Table) -> None:
    """Create ``table`` as its first migration made it: without the columns later migrations add."""
    later = {(column.table.name, column.name) for _, column in ADDED_COLUMNS}
    ddl = CreateTable(table)
    ddl.columns = [c for c in ddl.columns if (table.name, c.element.name) not in later]
    conn.execute(ddl)
    for index in table.indexes:
        index.create(conn)


def _add_column(conn: Connection, column: Column[Any]) -> None:
    spec = CreateColumn(column).compile(dialect=conn.dialect)
    conn.execute(text(f"ALTER TABLE {column.table.name} ADD COLUMN {spec}"))


def _v1(conn: Connection) -> None:
    for table in (jobs, job_labels, tasks):
        _create(conn, table)


def _v2(conn: Connection) -> None:
    """Capacity groups and operator settings (e.g. each tier's scheduling mode)."""
    for table in (capacity_groups, settings):
        _create(conn, table)


def _v3(conn: Connection) -> None:
    """The leader lease: one row naming the leader, its epoch and when its lease runs out."""
    _create(conn, leader)
    conn.execute(
        leader.insert().values(id=1, holder="", url="", epoch=0, expires_at=0.0, renewed_at=0.0, ttl_s=0.0)
    )


def _v4(conn: Connection) -> None:
    """Teams and API tokens (issue 7)."""
    for table in (teams, tokens):
        _create(conn, table)


def _v5(conn: Connection) -> None:
    """Issue 11: the writing epoch of every job and task row, the integrity record (computed here from the
    rows already there, so an older store loads), and idempotency keys."""
    for version, column in ADDED_COLUMNS:
        if version == 5:
            _add_column(conn, column)
    _create(conn, integrity)
    _create(conn, idempotency)
    active_jobs = conn.execute(
        select(func.count()).select_from(jobs).where(jobs.c.state != FINISHED_JOB)
    ).scalar_one()
    active_tasks = conn.execute(
        select(func.count()).select_from(tasks).where(tasks.c.state != FINISHED_TASK)
    ).scalar_one()
    epoch = conn.execute(select(leader.c.epoch).where(leader.c.id == 1)).scalar_one()
    conn.execute(
        integrity.insert().values(
            id=1,
            generation=1,
            active_jobs=active_jobs,
            active_tasks=active_tasks,
            updated_at=0.0,
            epoch=epoch,
        )
    )
    conn.execute(leader.update().where(leader.c.id == 1).values(generation=1))


MIGRATIONS: tuple[Callable[[Connection], None], ...] = (_v1, _v2, _v3, _v4, _v5)
LATEST_VERSION = len(MIGRATIONS)
