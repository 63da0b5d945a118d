"""The SQL store (SQLAlchemy Core): SQLite for the embedded default, the same code for PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from sqlalchemy import (
    Connection,
    Engine,
    Select,
    bindparam,
    create_engine,
    delete,
    event,
    inspect,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from corral.domain.auth import Team, Token
from corral.domain.capacity import CapacityGroup
from corral.domain.codec import DecodeError, from_json, to_json
from corral.domain.job import Job
from corral.domain.states import JobState
from corral.domain.task import Task
from corral.store import lease, schema
from corral.store.protocol import JobQuery, LoadedState, StoreError, TaskQuery, WriteBatch

FINISHED = JobState.FINISHED.value
T = TypeVar("T")


class SqlStore:
    """A ``Store`` over any SQLAlchemy engine whose dialect supports upserts (SQLite, PostgreSQL)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.epoch: int | None = None  # set while leading: every write checks it is still current
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    # -- schema ---------------------------------------------------------------------------------

    def open(self) -> None:
        try:
            with self.engine.begin() as conn:
                if self.engine.dialect.name == "sqlite":
                    # pysqlite commits DDL as it goes: an explicit transaction makes a migration all or
                    # nothing, so a failed one cannot leave half a schema behind.
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
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
                for version in range(current, schema.LATEST_VERSION):
                    schema.MIGRATIONS[version](conn)
                if current != schema.LATEST_VERSION:
                    conn.execute(schema.schema_version.update().values(version=schema.LATEST_VERSION))
        except SQLAlchemyError as e:
            raise StoreError(f"cannot open the store: {e}") from e

    def schema_version(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(schema.schema_version.c.version)).scalar_one())

    def close(self) -> None:
        self.engine.dispose()

    # -- load and write -------------------------------------------------------------------------

    def load_active(self) -> LoadedState:
        try:
            with self.engine.connect() as conn:
                job_rows = conn.execute(
                    select(schema.jobs.c.id, schema.jobs.c.body).where(schema.jobs.c.state != FINISHED)
                ).all()
                active_ids = select(schema.jobs.c.id).where(schema.jobs.c.state != FINISHED)
                task_rows = conn.execute(
                    select(schema.tasks.c.id, schema.tasks.c.body).where(
                        schema.tasks.c.job_id.in_(active_ids)
                    )
                ).all()
        except SQLAlchemyError as e:
            raise StoreError(f"cannot load state: {e}") from e
        return LoadedState(_decode(job_rows, Job, "job"), _decode(task_rows, Task, "task"))

    def write(self, batch: WriteBatch) -> None:
        if not len(batch):
            return
        with self.engine.begin() as conn:
            self._fence(conn)
            if batch.jobs:
                jobs = {j.id: j for j in batch.jobs}.values()  # the last version of an id wins
                conn.execute(self._upsert(schema.jobs), [_job_row(j) for j in jobs])
                # A job's labels are rewritten whole, so a changed or removed label stops matching.
                lbl = schema.job_labels
                conn.execute(
                    delete(lbl).where(lbl.c.job_id == bindparam("job_id")), [{"job_id": j.id} for j in jobs]
                )
                labels = [
                    {"job_id": j.id, "key": k, "value": v}
                    for j in jobs
                    for k, v in j.descriptor.labels.items()
                ]
                if labels:
                    conn.execute(lbl.insert(), labels)
            if batch.tasks:
                conn.execute(self._upsert(schema.tasks), [_task_row(t) for t in batch.tasks])

    def _fence(self, conn: Connection) -> None:
        if self.epoch is not None:
            lease.fenced(conn, self.epoch)

    # -- leadership ------------------------------------------------------------------------------

    def lease(self) -> lease.Lease:
        return lease.read(self.engine)

    def acquire_lease(self, holder: str, url: str, ttl_s: float, take_from: int | None = None) -> int | None:
        return lease.acquire(self.engine, holder, url, ttl_s, take_from)

    def renew_lease(self, holder: str, epoch: int, ttl_s: float) -> bool:
        return lease.renew(self.engine, holder, epoch, ttl_s)

    def release_lease(self, holder: str, epoch: int) -> None:
        lease.release(self.engine, holder, epoch)

    def _upsert(self, table: Any) -> Any:
        stmt = self._insert(table)
        updated = {c.name: stmt.excluded[c.name] for c in table.columns if not c.primary_key}
        return stmt.on_conflict_do_update(index_elements=[table.c.id], set_=updated)

    # -- queries --------------------------------------------------------------------------------

    def get_job(self, job_id: str) -> Job | None:
        return _first(
            self._fetch(select(schema.jobs.c.id, schema.jobs.c.body).where(schema.jobs.c.id == job_id)), Job
        )

    def list_jobs(self, query: JobQuery) -> list[Job]:
        t = schema.jobs
        stmt = select(t.c.id, t.c.body)
        for column, value in (
            (t.c.owner, query.owner),
            (t.c.application, query.application),
            (t.c.capacity_group, query.capacity_group),
            (t.c.job_type, query.job_type),
        ):
            if value is not None:
                stmt = stmt.where(column == str(value))
        if query.states:
            stmt = stmt.where(t.c.state.in_(sorted(s.value for s in query.states)))
        for key, value in query.labels.items():
            lbl = schema.job_labels
            stmt = stmt.where(t.c.id.in_(select(lbl.c.job_id).where(lbl.c.key == key, lbl.c.value == value)))
        if query.newest_first:
            if query.after_id is not None:
                stmt = stmt.where(t.c.id < query.after_id)
            stmt = stmt.order_by(t.c.id.desc())
        else:
            if query.after_id is not None:
                stmt = stmt.where(t.c.id > query.after_id)
            stmt = stmt.order_by(t.c.id)
        return _decode(self._fetch(stmt.limit(query.limit)), Job, "job")

    def get_task(self, task_id: str) -> Task | None:
        t = schema.tasks
        return _first(self._fetch(select(t.c.id, t.c.body).where(t.c.id == task_id)), Task)

    def list_tasks(self, query: TaskQuery) -> list[Task]:
        t = schema.tasks
        stmt = select(t.c.id, t.c.body)
        if query.job_id is not None:
            stmt = stmt.where(t.c.job_id == query.job_id)
        if query.host_id is not None:
            stmt = stmt.where(t.c.host_id == query.host_id)
        if query.states:
            stmt = stmt.where(t.c.state.in_(sorted(s.value for s in query.states)))
        if query.after_id is not None:
            stmt = stmt.where(t.c.id > query.after_id)
        return _decode(self._fetch(stmt.order_by(t.c.id).limit(query.limit)), Task, "task")

    def prune_finished(self, before: float) -> int:
        j, t, lbl = schema.jobs, schema.tasks, schema.job_labels
        with self.engine.begin() as conn:
            self._fence(conn)
            old = select(j.c.id).where(j.c.state == FINISHED, j.c.finished_at < before)
            ids = conn.execute(old).scalars().all()
            for chunk in _chunks(ids, 500):
                conn.execute(delete(t).where(t.c.job_id.in_(chunk)))
                conn.execute(delete(lbl).where(lbl.c.job_id.in_(chunk)))
                conn.execute(delete(j).where(j.c.id.in_(chunk)))
            # Long-lived jobs keep their recent history only, but always the newest task of each line:
            # reconcilers rebuild from it after a restart (a batch index without a task would run again).
            stale = conn.execute(select(t.c.id, t.c.job_id).where(t.c.finished_at < before)).all()
            replaced: set[str] = set()
            for chunk in _chunks(sorted({job_id for _, job_id in stale}), 500):
                rows = conn.execute(select(t.c.id, t.c.body).where(t.c.job_id.in_(chunk))).all()
                replaced.update(task.resubmit_of for task in _decode(rows, Task, "task") if task.resubmit_of)
            for chunk in _chunks([ident for ident, _ in stale if ident in replaced], 500):
                conn.execute(delete(t).where(t.c.id.in_(chunk)))
        return len(ids)

    def restore_records(
        self,
        jobs: Sequence[Job],
        tasks: Sequence[Task],
        groups: Sequence[CapacityGroup],
        settings: Sequence[tuple[str, str]],
        teams: Sequence[Team] = (),
        tokens: Sequence[Token] = (),
    ) -> None:
        """Insert restored records in one transaction (the caller checked the store is empty)."""
        with self.engine.begin() as conn:
            for chunk in _chunks(list(jobs), 2000):
                conn.execute(schema.jobs.insert(), [_job_row(j) for j in chunk])
                labels = [
                    {"job_id": j.id, "key": k, "value": v}
                    for j in chunk
                    for k, v in j.descriptor.labels.items()
                ]
                if labels:
                    conn.execute(schema.job_labels.insert(), labels)
            for task_chunk in _chunks(list(tasks), 5000):
                conn.execute(schema.tasks.insert(), [_task_row(t) for t in task_chunk])
            for key, value in settings:
                conn.execute(schema.settings.insert().values(key=key, value=value))
            keyed: tuple[tuple[Any, Sequence[Any], str], ...] = (
                (schema.capacity_groups, groups, "name"),
                (schema.teams, teams, "name"),
                (schema.tokens, tokens, "id"),
            )
            for table, records, key in keyed:
                for record in records:
                    values = {key: getattr(record, key), "body": to_json(record).decode()}
                    conn.execute(table.insert().values(values))

    # -- capacity groups, settings, teams and tokens: small tables of (key, JSON body) rows ----------

    def load_groups(self) -> list[CapacityGroup]:
        return self._load_bodies(schema.capacity_groups.c.name, CapacityGroup, "capacity group")

    def put_group(self, group: CapacityGroup) -> None:
        self._put_body(schema.capacity_groups.c.name, group.name, to_json(group).decode())

    def delete_group(self, name: str) -> None:
        self._delete_body(schema.capacity_groups.c.name, name)

    def load_settings(self) -> dict[str, str]:
        t = schema.settings
        try:
            return {k: v for k, v in self._fetch(select(t.c.key, t.c.value))}
        except SQLAlchemyError as e:
            raise StoreError(f"cannot load settings: {e}") from e

    def put_setting(self, key: str, value: str) -> None:
        t = schema.settings
        with self.engine.begin() as conn:
            self._fence(conn)
            stmt = self._insert(t).values(key=key, value=value)
            conn.execute(
                stmt.on_conflict_do_update(index_elements=[t.c.key], set_={"value": stmt.excluded.value})
            )

    def load_teams(self) -> list[Team]:
        return self._load_bodies(schema.teams.c.name, Team, "team")

    def put_team(self, team: Team) -> None:
        self._put_body(schema.teams.c.name, team.name, to_json(team).decode())

    def delete_team(self, name: str) -> None:
        self._delete_body(schema.teams.c.name, name)

    def load_tokens(self) -> list[Token]:
        return self._load_bodies(schema.tokens.c.id, Token, "token")

    def put_token(self, token: Token) -> None:
        self._put_body(schema.tokens.c.id, token.id, to_json(token).decode())

    def _load_bodies(self, key: Any, kind: type[T], what: str) -> list[T]:
        """Every row of ``key``'s table, in key order, decoded (StoreError if one does not decode)."""
        try:
            rows = self._fetch(select(key, key.table.c.body).order_by(key))
        except SQLAlchemyError as e:
            raise StoreError(f"cannot load {what}s: {e}") from e
        return _decode(rows, kind, what)

    def _put_body(self, key: Any, value: str, body: str) -> None:
        table = key.table
        with self.engine.begin() as conn:
            self._fence(conn)
            stmt = self._insert(table).values({key.name: value, "body": body})
            conn.execute(stmt.on_conflict_do_update(index_elements=[key], set_={"body": stmt.excluded.body}))

    def _delete_body(self, key: Any, value: str) -> None:
        with self.engine.begin() as conn:
            self._fence(conn)
            conn.execute(delete(key.table).where(key == value))

    def _fetch(self, stmt: Select[Any]) -> Sequence[Any]:
        with self.engine.connect() as conn:
            return conn.execute(stmt).all()


def open_store(url: str, *, sqlite_synchronous: str = "FULL") -> SqlStore:
    """An opened (schema checked and migrated) store for a SQLAlchemy URL, e.g. ``sqlite:///corral.db``."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={sqlite_synchronous}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()
    else:
        engine = create_engine(url, pool_pre_ping=True)
    store = SqlStore(engine)
    try:
        store.open()
    except BaseException:
        store.close()  # the caller never gets the store, so its connections would leak
        raise
    return store


def _job_row(job: Job) -> dict[str, Any]:
    d = job.descriptor
    return {
        "id": job.id,
        "state": job.state.value,
        "job_type": d.type.value,
        "owner": d.owner.team_email,
        "application": d.application,
        "capacity_group": d.capacity_group,
        "created_at": job.created_at,
        "finished_at": job.finished_at,
        "body": to_json(job).decode(),
    }


def _task_row(task: Task) -> dict[str, Any]:
    return {
        "id": task.id,
        "job_id": task.job_id,
        "state": task.state.value,
        "host_id": task.host_id,
        "created_at": task.created_at,
        "finished_at": task.finished_at,
        "body": to_json(task).decode(),
    }


def _decode(rows: Iterable[Any], kind: type[T], what: str) -> list[T]:
    out: list[T] = []
    for ident, body in rows:
        try:
            out.append(from_json(body, kind))
        except (DecodeError, ValueError) as e:
            raise StoreError(
                f"{what} {ident} cannot be decoded ({e}): the store is damaged or from elsewhere"
            ) from e
    return out


def _first(rows: Sequence[Any], kind: type[T]) -> T | None:
    decoded = _decode(rows, kind, kind.__name__.lower())
    return decoded[0] if decoded else None


def _chunks(items: Sequence[T], size: int) -> Iterable[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
