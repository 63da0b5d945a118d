"""Backups: a consistent snapshot of a store as JSON lines, restored only into an empty store.

The file starts with a header (format, schema version, counts) and ends with a trailer repeating the
counts, so a truncated file is caught. ``verify`` restores into a scratch SQLite store and reads every
record back — the seeds' "test your restores".
"""

from __future__ import annotations

import gzip
import json
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Connection, func, select

from corral.domain.auth import Team, Token
from corral.domain.capacity import CapacityGroup
from corral.domain.codec import from_builtins
from corral.domain.job import Job
from corral.domain.task import Task
from corral.store import schema
from corral.store.protocol import StoreError
from corral.store.sql import SqlStore, open_store

FORMAT = "corral-backup"
FORMAT_VERSION = 1
KINDS = ("job", "task", "group", "setting", "team", "token")


def _open(path: Path, mode: str, gz: bool | None = None) -> IO[str]:
    if path.suffix == ".gz" if gz is None else gz:
        return gzip.open(path, mode + "t", encoding="utf-8")  # type: ignore[return-value]
    return path.open(mode, encoding="utf-8")


def snapshot(store: SqlStore) -> Iterator[dict[str, Any]]:
    """Every record of the store as of one moment (a single read transaction)."""
    engine = store.engine
    options: dict[str, Any] = {}
    if engine.dialect.name == "postgresql":
        options = {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
    with engine.connect().execution_options(**options) as conn, conn.begin():
        counts = _counts(conn)
        version = conn.execute(select(schema.schema_version.c.version)).scalar_one()
        yield {"format": FORMAT, "format_version": FORMAT_VERSION, "schema_version": version,
               "created_at": time.time(), "source": engine.dialect.name, "counts": counts}  # fmt: skip
        for kind, table, key in (("job", schema.jobs, "id"), ("task", schema.tasks, "id")):
            rows = conn.execution_options(yield_per=2000).execute(select(table.c.body).order_by(table.c[key]))
            for (body,) in rows:
                yield {"kind": kind, "body": json.loads(body)}
        for (body,) in conn.execute(
            select(schema.capacity_groups.c.body).order_by(schema.capacity_groups.c.name)
        ):
            yield {"kind": "group", "body": json.loads(body)}
        for key, value in conn.execute(select(schema.settings.c.key, schema.settings.c.value)):
            yield {"kind": "setting", "key": key, "value": value}
        for kind, table, key in (("team", schema.teams, "name"), ("token", schema.tokens, "id")):
            for (body,) in conn.execute(select(table.c.body).order_by(table.c[key])):
                yield {"kind": kind, "body": json.loads(body)}
        yield {"end": True, "counts": counts}


def _counts(conn: Connection) -> dict[str, int]:
    tables = {
        "job": schema.jobs,
        "task": schema.tasks,
        "group": schema.capacity_groups,
        "setting": schema.settings,
        "team": schema.teams,
        "token": schema.tokens,
    }
    return {
        kind: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
        for kind, t in tables.items()
    }


def backup(store: SqlStore, path: Path) -> dict[str, int]:
    """Write the store's snapshot to ``path`` (gzip if it ends in .gz); return the counts."""
    counts: dict[str, int] = {}
    partial = path.with_name(path.name + ".partial")
    with _open(partial, "w", gz=path.suffix == ".gz") as out:
        for record in snapshot(store):
            out.write(json.dumps(record, separators=(",", ":")) + "\n")
            counts = record.get("counts", counts)
    partial.replace(path)  # a backup file exists only once it is whole
    return counts


def read(path: Path) -> Iterator[dict[str, Any]]:
    """The records of a backup file, checking its header and trailer; raises StoreError if it is damaged."""
    seen = dict.fromkeys(KINDS, 0)
    header: dict[str, Any] | None = None
    ended = False
    with _open(path, "r") as f:
        for number, line in enumerate(f, 1):
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise StoreError(f"{path}:{number}: not JSON ({e})") from e
            if header is None:
                if record.get("format") != FORMAT:
                    raise StoreError(f"{path} is not a Corral backup")
                if record.get("format_version") != FORMAT_VERSION:
                    raise StoreError(
                        f"{path} is backup format {record.get('format_version')}, not {FORMAT_VERSION}"
                    )
                header = record
                continue
            if record.get("end"):
                ended = True
                if record.get("counts") != seen:
                    raise StoreError(f"{path} promises {record.get('counts')} but holds {seen}")
                continue
            kind = record.get("kind")
            if kind not in seen:
                raise StoreError(f"{path}:{number}: unknown record kind {kind!r}")
            seen[kind] += 1
            yield record
    if header is None or not ended:
        raise StoreError(f"{path} is truncated: no {'header' if header is None else 'trailer'}")


def restore(store: SqlStore, path: Path) -> dict[str, int]:
    """Load a backup into ``store``, which must be empty; all or nothing (one transaction)."""
    with store.engine.connect() as conn:
        present = _counts(conn)
    if any(present[k] for k in ("job", "task", "group", "team", "token")):
        raise StoreError(f"restore needs an empty store; this one holds {present}")
    jobs: list[Job] = []
    tasks: list[Task] = []
    groups: list[CapacityGroup] = []
    settings: list[tuple[str, str]] = []
    teams: list[Team] = []
    tokens: list[Token] = []
    try:
        for record in read(path):
            kind = record["kind"]
            if kind == "job":
                jobs.append(from_builtins(record["body"], Job))
            elif kind == "task":
                tasks.append(from_builtins(record["body"], Task))
            elif kind == "group":
                groups.append(from_builtins(record["body"], CapacityGroup))
            elif kind == "team":
                teams.append(from_builtins(record["body"], Team))
            elif kind == "token":
                tokens.append(from_builtins(record["body"], Token))
            else:
                settings.append((record["key"], record["value"]))
    except (ValueError, KeyError) as e:
        raise StoreError(f"{path}: a record does not decode: {e}") from e
    store.restore_records(jobs, tasks, groups, settings, teams, tokens)
    return {
        "job": len(jobs),
        "task": len(tasks),
        "group": len(groups),
        "setting": len(settings),
        "team": len(teams),
        "token": len(tokens),
    }


def verify(path: Path) -> dict[str, Any]:
    """Restore into a scratch SQLite store and read everything back; raises StoreError on any problem."""
    with tempfile.TemporaryDirectory() as tmp:
        scratch = open_store(f"sqlite:///{Path(tmp) / 'verify.db'}", sqlite_synchronous="OFF")
        try:
            counts = restore(scratch, path)
            active = scratch.load_active()  # what a master would load
            records = sum(1 for _ in snapshot(scratch)) - 2
        finally:
            scratch.close()
    if records != sum(counts.values()):
        raise StoreError(f"restored {counts} but read back {records} records")
    return {"counts": counts, "active_jobs": len(active.jobs), "active_tasks": len(active.tasks)}


def records_equal(a: Iterable[dict[str, Any]], b: Iterable[dict[str, Any]]) -> bool:
    """Whether two snapshots hold the same records (headers and trailers aside)."""

    def body(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        return [r for r in records if "kind" in r]

    return body(a) == body(b)
