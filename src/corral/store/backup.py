"""Backups: a consistent snapshot of a store as JSON lines, restored only into an empty store; and the
reseal of a stopped store.

The file starts with a header (format, schema version, counts, the store's integrity record) and ends
with a trailer repeating the counts, so a truncated file is caught; a backup whose records disagree with
its own integrity record was taken of a damaged store, and is refused. A restore records what the
restored store holds as its integrity record, so it loads. ``verify`` restores into a scratch SQLite store
and loads it as a master would — the seeds' "test your restores".
"""

from __future__ import annotations

import gzip
import json
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Connection, func, select

from corral.domain.auth import Team, Token
from corral.domain.capacity import CapacityGroup
from corral.domain.codec import from_builtins
from corral.domain.idempotency import IdempotencyRecord
from corral.domain.job import Job
from corral.domain.states import JobState, TaskState
from corral.domain.task import Task
from corral.store import integrity, schema
from corral.store.protocol import IntegrityRecord, StoreError
from corral.store.rows import idempotency_record, idempotency_row
from corral.store.sql import SqlStore, open_store

FORMAT = "corral-backup"
FORMAT_VERSION = 2  # 2: idempotency records and the integrity record (issue 11)
READABLE_VERSIONS = (1, 2)
KINDS = ("job", "task", "group", "setting", "team", "token", "idempotency")


def _open(path: Path, mode: str, gz: bool | None = None) -> IO[str]:
    if path.suffix == ".gz" if gz is None else gz:
        return gzip.open(path, mode + "t", encoding="utf-8")  # type: ignore[return-value]
    return path.open(mode, encoding="utf-8")


def snapshot(store: SqlStore) -> Iterator[dict[str, Any]]:
    """Every record of the store as of one moment (a single read transaction)."""
    with store.reading() as conn:
        if conn.dialect.name == "postgresql":
            # Writing a large file may pause between fetches longer than a leader's transactions may.
            conn.exec_driver_sql("SET LOCAL idle_in_transaction_session_timeout = 0")
        counts = _counts(conn)
        version = conn.execute(select(schema.schema_version.c.version)).scalar_one()
        record = integrity.read(conn)
        yield {"format": FORMAT, "format_version": FORMAT_VERSION, "schema_version": version,
               "created_at": time.time(), "source": conn.dialect.name, "counts": counts,
               "integrity": None if record is None else asdict(record)}  # fmt: skip
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
        i = schema.idempotency
        keys = select(i.c.principal, i.c.key, i.c.request_hash, i.c.resource, i.c.resource_id, i.c.created_at)
        for row in conn.execute(keys.order_by(i.c.principal, i.c.key)):
            yield {"kind": "idempotency", "body": idempotency_row(idempotency_record(row))}
        yield {"end": True, "counts": counts}


def _counts(conn: Connection) -> dict[str, int]:
    tables = {
        "job": schema.jobs,
        "task": schema.tasks,
        "group": schema.capacity_groups,
        "setting": schema.settings,
        "team": schema.teams,
        "token": schema.tokens,
        "idempotency": schema.idempotency,
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
                if record.get("format_version") not in READABLE_VERSIONS:
                    raise StoreError(
                        f"{path} is backup format {record.get('format_version')}, not one of "
                        f"{', '.join(map(str, READABLE_VERSIONS))}"
                    )
                header = record
                continue
            if record.get("end"):
                ended = True
                promised = record.get("counts")
                # An older format lists fewer kinds: those it does not list it holds none of.
                if not isinstance(promised, dict) or {k: promised.get(k, 0) for k in KINDS} != seen:
                    raise StoreError(f"{path} promises {promised} but holds {seen}")
                continue
            kind = record.get("kind")
            if kind not in seen:
                raise StoreError(f"{path}:{number}: unknown record kind {kind!r}")
            seen[kind] += 1
            yield record
    if header is None or not ended:
        raise StoreError(f"{path} is truncated: no {'header' if header is None else 'trailer'}")


def restore(store: SqlStore, path: Path) -> dict[str, int]:
    """Load a backup into ``store``, which must be empty and led by nobody; all or nothing (one
    transaction). The restored store's integrity record is what it then holds."""
    with store.engine.connect() as conn:
        present = _counts(conn)
    if any(n for kind, n in present.items() if kind != "setting"):
        raise StoreError(f"restore needs an empty store; this one holds {present}")
    jobs: list[Job] = []
    tasks: list[Task] = []
    groups: list[CapacityGroup] = []
    settings: list[tuple[str, str]] = []
    teams: list[Team] = []
    tokens: list[Token] = []
    keys: list[IdempotencyRecord] = []
    header = _header(path)
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
            elif kind == "idempotency":
                keys.append(from_builtins(record["body"], IdempotencyRecord))
            else:
                settings.append((record["key"], record["value"]))
    except (ValueError, KeyError) as e:
        raise StoreError(f"{path}: a record does not decode: {e}") from e
    _check_against_record(path, header, jobs, tasks)
    store.restore_records(jobs, tasks, groups, settings, teams, tokens, keys)
    return {
        "job": len(jobs),
        "task": len(tasks),
        "group": len(groups),
        "setting": len(settings),
        "team": len(teams),
        "token": len(tokens),
        "idempotency": len(keys),
    }


def _header(path: Path) -> dict[str, Any]:
    with _open(path, "r") as f:
        try:
            header = json.loads(f.readline())
        except json.JSONDecodeError as e:
            raise StoreError(f"{path}:1: not JSON ({e})") from e
    if not isinstance(header, dict):
        raise StoreError(f"{path} is not a Corral backup")
    return header


def _check_against_record(path: Path, header: dict[str, Any], jobs: list[Job], tasks: list[Task]) -> None:
    """A backup carries its store's integrity record (format 2): its rows must agree with it, or the
    backup was taken of a damaged store."""
    record = header.get("integrity")
    if not isinstance(record, dict):
        return  # format 1, or a store that had none: nothing to compare with
    active_jobs = sum(1 for j in jobs if j.state is not JobState.FINISHED)
    active_tasks = sum(1 for t in tasks if t.state is not TaskState.FINISHED)
    if (active_jobs, active_tasks) != (record.get("active_jobs"), record.get("active_tasks")):
        raise StoreError(
            f"{path} holds {active_jobs} jobs and {active_tasks} tasks not finished, but the integrity "
            f"record it was taken with says {record.get('active_jobs')} and {record.get('active_tasks')}: "
            "it is a backup of a damaged store; restore an older one"
        )


def verify(path: Path) -> dict[str, Any]:
    """Restore into a scratch SQLite store and load it as a master would; raises StoreError on any
    problem."""
    with tempfile.TemporaryDirectory() as tmp:
        scratch = open_store(f"sqlite:///{Path(tmp) / 'verify.db'}", sqlite_synchronous="OFF")
        try:
            counts = restore(scratch, path)
            active = scratch.load_active()  # what a master would load, integrity checks and all
            records = sum(1 for _ in snapshot(scratch)) - 2
        finally:
            scratch.close()
    if records != sum(counts.values()):
        raise StoreError(f"restored {counts} but read back {records} records")
    return {"counts": counts, "active_jobs": len(active.jobs), "active_tasks": len(active.tasks)}


def reseal(store: SqlStore) -> IntegrityRecord:
    """Record what a stopped store holds as its integrity record (``corral admin reseal``): for an operator
    who has checked that a store the master refused is right as it is. Refused while a master leads; fenced
    with the lease's epoch, so a master that takes the lease meanwhile wins."""
    lease = store.lease()
    if lease.live:
        raise StoreError(
            f"a master leads this store ({lease.holder} at {lease.url}, epoch {lease.epoch}): "
            "stop every master before resealing it"
        )
    return store.reseal(epoch=lease.epoch)


def records_equal(a: Iterable[dict[str, Any]], b: Iterable[dict[str, Any]]) -> bool:
    """Whether two snapshots hold the same records (headers and trailers aside)."""

    def body(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        return [r for r in records if "kind" in r]

    return body(a) == body(b)
