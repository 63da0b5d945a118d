"""Opening a store: create or migrate its schema, then check that every table and column of it is there.

Any doubt is a StoreError: a database with Corral tables but no version, a version newer than this code,
or a table or column of the current schema missing (dropped by hand, or half restored).
"""

from __future__ import annotations

from sqlalchemy import Connection, inspect, select

from corral.store import schema
from corral.store.integrity import RESTORE
from corral.store.lease import read_in
from corral.store.protocol import StoreError


def open_schema(conn: Connection) -> None:
    """Inside one transaction: create, check and migrate the schema to the latest version."""
    present = set(inspect(conn).get_table_names())
    if schema.schema_version.name not in present:
        ours = present & schema.CORRAL_TABLES
        if ours:
            raise StoreError(
                f"the database has Corral tables ({', '.join(sorted(ours))}) but no schema "
                "version: refusing to use it rather than risk starting over existing data"
            )
        schema.schema_version.create(conn)
        conn.execute(schema.schema_version.insert().values(version=0))
    versions = conn.execute(select(schema.schema_version.c.version)).scalars().all()
    if len(versions) != 1:
        raise StoreError(f"the schema version table holds {len(versions)} rows, not 1")
    current = versions[0]
    if current > schema.LATEST_VERSION:
        raise StoreError(
            f"the database schema is version {current}, newer than this Corral knows "
            f"({schema.LATEST_VERSION}): upgrade Corral before starting the master"
        )
    _check_tables(conn, range(1, current + 1))  # a migration must not build on a damaged schema
    if current < schema.LATEST_VERSION:
        _refuse_under_a_leader(conn, current)
    for version in range(current, schema.LATEST_VERSION):
        schema.MIGRATIONS[version](conn)
    if current != schema.LATEST_VERSION:
        conn.execute(schema.schema_version.update().values(version=schema.LATEST_VERSION))
    _check_tables(conn, range(1, schema.LATEST_VERSION + 1))


def _refuse_under_a_leader(conn: Connection, current: int) -> None:
    """A master of the older version would go on writing without what the migration adds (e.g. the
    integrity record), and the store would then be refused: migrate only a store nobody leads."""
    if current < schema.TABLE_VERSIONS[schema.leader.name]:
        return
    held = read_in(conn)
    if held.live:
        raise StoreError(
            f"the store is at schema version {current} and a master leads it ({held.holder} at {held.url}, "
            f"epoch {held.epoch}): stop every master before upgrading; the first one started with this "
            f"Corral migrates the store to version {schema.LATEST_VERSION}"
        )


def _check_tables(conn: Connection, versions: range) -> None:
    """Every table and column that the migrations ``versions`` made must exist."""
    inspector = inspect(conn)
    present = set(inspector.get_table_names())
    missing: list[str] = []
    for table in schema.metadata.sorted_tables:
        since = schema.TABLE_VERSIONS.get(table.name)
        if table is schema.schema_version or since is None or since not in versions:
            continue
        if table.name not in present:
            missing.append(f"table {table.name}")
            continue
        columns = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            added = schema.column_version(column)
            if added in versions and column.name not in columns:
                missing.append(f"column {table.name}.{column.name}")
    if missing:
        version = versions.stop - 1
        raise StoreError(
            f"the store is damaged: schema version {version} has {', '.join(missing)}, which the database "
            f"does not. To lead on it again, {RESTORE}."
        )
