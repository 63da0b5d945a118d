"""The SQL store (SQLAlchemy Core): SQLite for the embedded default, the same code for PostgreSQL.

Every write is one transaction that starts with the fence (``_fenced``): the caller's epoch must be the
lease's, checked under a lock that a takeover must wait for; the same transaction keeps the integrity
record. Loads verify the store before anything is believed (``integrity.check``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, TypeVar

from sqlalchemy import (
    Connection,
    Engine,
    Select,
    delete,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from corral.domain.auth import Team, Token
from corral.domain.capacity import CapacityGroup
from corral.domain.codec import DecodeError, to_json
from corral.domain.idempotency import IdempotencyRecord
from corral.domain.job import Job
from corral.domain.task import Task
from corral.store import batch as batch_rows
from corral.store import integrity, lease, pruning, rows, schema
from corral.store.batch import PreparedBatch
from corral.store.engine import IDLE_IN_TRANSACTION_S, EngineSettings, create_store_engine
from corral.store.opening import open_schema
from corral.store.protocol import (
    AsyncKeyLookup,
    IntegrityRecord,
    JobQuery,
    LoadedState,
    StoreError,
    TaskQuery,
    WriteBatch,
)
from corral.store.writer_process import WriterProcess

FINISHED = integrity.FINISHED
T = TypeVar("T")


class SqlStore:
    """A ``Store`` over any SQLAlchemy engine whose dialect supports upserts (SQLite, PostgreSQL)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sqlite = engine.dialect.name == "sqlite"
        self._insert = sqlite.insert if self._sqlite else postgresql.insert
        # Where batches are committed: here, or in a writer process (``use_writer_process``).
        self._commit: Callable[[PreparedBatch], None] = batch_rows.committer_for(engine)
        self._writer_process: WriterProcess | None = None

    # -- schema ---------------------------------------------------------------------------------

    def open(self) -> None:
        try:
            with self.engine.begin() as conn:
                if self._sqlite:
                    # pysqlite commits DDL as it goes: an explicit transaction makes a migration all or
                    # nothing, so a failed one cannot leave half a schema behind.
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
                open_schema(conn)
        except SQLAlchemyError as e:
            raise StoreError(f"cannot open the store: {e}") from e

    def schema_version(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(schema.schema_version.c.version)).scalar_one())

    def use_writer_process(self, writer: WriterProcess) -> None:
        """Commit write batches in ``writer``'s process from now on (it is stopped with the store)."""
        self._writer_process = self._commit = writer

    def close(self) -> None:
        if self._writer_process is not None:
            self._writer_process.close()
        self.engine.dispose()

    # -- transactions ----------------------------------------------------------------------------

    def _fenced(self, epoch: int) -> AbstractContextManager[tuple[Connection, int]]:
        return batch_rows.fenced(self.engine, epoch)

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A read transaction: every query in it sees the same moment."""
        if self._sqlite:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("BEGIN")  # pysqlite would run each SELECT on its own
                yield conn
            return
        options = {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
        with self.engine.connect().execution_options(**options) as conn, conn.begin():
            yield conn

    # -- load and write -------------------------------------------------------------------------

    def load_active(self) -> LoadedState:
        return self._load()[0]

    def verify(self) -> IntegrityRecord:
        return self._load()[1]

    def _load(self) -> tuple[LoadedState, IntegrityRecord]:
        j, t = schema.jobs, schema.tasks
        try:
            with self.reading() as conn:
                active = j.c.state != FINISHED
                job_rows = conn.execute(select(j.c.id, j.c.state, j.c.job_type, j.c.body).where(active)).all()
                task_rows = conn.execute(
                    select(t.c.id, t.c.job_id, t.c.state, t.c.body).where(
                        t.c.job_id.in_(select(j.c.id).where(active))
                    )
                ).all()
                problems = integrity.check(conn)
                record = integrity.read(conn)
        except SQLAlchemyError as e:
            raise StoreError(f"cannot load state: {e}") from e
        jobs = _checked(job_rows, Job, "job", rows.job_disagreements, problems)
        tasks = _checked(task_rows, Task, "task", rows.task_disagreements, problems)
        if problems or record is None:
            raise integrity.refusal(problems)
        return LoadedState(jobs, tasks), record

    def write(self, batch: WriteBatch, *, epoch: int) -> None:
        if len(batch):
            self._commit(batch_rows.prepare(batch, epoch))

    def prune_finished(self, before: float, *, epoch: int) -> int:
        with self._fenced(epoch) as (conn, generation):
            pruned, task_delta = pruning.prune_finished(conn, before)
            integrity.record(conn, epoch=epoch, generation=generation, tasks=task_delta)
        return pruned

    def reseal(self, *, epoch: int) -> IntegrityRecord:
        with self._fenced(epoch) as (conn, generation):
            return integrity.reseal(conn, epoch, generation)

    def restore_records(
        self,
        jobs: Sequence[Job],
        tasks: Sequence[Task],
        groups: Sequence[CapacityGroup],
        settings: Sequence[tuple[str, str]],
        teams: Sequence[Team] = (),
        tokens: Sequence[Token] = (),
        idempotency: Sequence[IdempotencyRecord] = (),
    ) -> IntegrityRecord:
        """Insert restored records in one transaction and record what the store then holds. The one write
        without an epoch: refused while a master holds a live lease (the caller checked the store is
        empty)."""
        with self.engine.begin() as conn:
            if self._sqlite:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            current = lease.read_in(conn, lock=True)  # locked: nobody takes the lease until this commits
            if current.live:
                raise StoreError(
                    f"a master leads this store ({current.holder} at {current.url}, epoch {current.epoch}): "
                    "stop every master before restoring into it"
                )
            epoch = current.epoch
            for chunk in rows.chunks(list(jobs), 2000):
                conn.execute(schema.jobs.insert(), [rows.job_row(j, epoch) for j in chunk])
                labels = rows.label_rows(chunk)
                if labels:
                    conn.execute(schema.job_labels.insert(), labels)
            for task_chunk in rows.chunks(list(tasks), 5000):
                conn.execute(schema.tasks.insert(), [rows.task_row(t, epoch) for t in task_chunk])
            for key_chunk in rows.chunks(list(idempotency), 5000):
                conn.execute(schema.idempotency.insert(), [rows.idempotency_row(r) for r in key_chunk])
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
            generation = conn.execute(
                update(schema.leader)
                .where(schema.leader.c.id == 1)
                .values(generation=schema.leader.c.generation + 1)
                .returning(schema.leader.c.generation)
            ).scalar_one()
            return integrity.reseal(conn, epoch, int(generation))

    # -- leadership ------------------------------------------------------------------------------

    def lease(self) -> lease.Lease:
        return lease.read(self.engine)

    def acquire_lease(self, holder: str, url: str, ttl_s: float, take_from: int | None = None) -> int | None:
        return lease.acquire(self.engine, holder, url, ttl_s, take_from)

    def renew_lease(self, holder: str, epoch: int, ttl_s: float) -> bool:
        return lease.renew(self.engine, holder, epoch, ttl_s)

    def release_lease(self, holder: str, epoch: int) -> None:
        lease.release(self.engine, holder, epoch)

    # -- queries --------------------------------------------------------------------------------

    def get_job(self, job_id: str) -> Job | None:
        return rows.first(
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
        return rows.decode(self._fetch(stmt.limit(query.limit)), Job, "job")

    def get_task(self, task_id: str) -> Task | None:
        t = schema.tasks
        return rows.first(self._fetch(select(t.c.id, t.c.body).where(t.c.id == task_id)), Task)

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
        return rows.decode(self._fetch(stmt.order_by(t.c.id).limit(query.limit)), Task, "task")

    # -- idempotency keys -----------------------------------------------------------------------

    def get_idempotency(self, principal: str, key: str) -> IdempotencyRecord | None:
        i = schema.idempotency
        found = self._fetch(_idempotency_columns().where(i.c.principal == principal, i.c.key == key))
        return rows.idempotency_record(found[0]) if found else None

    def find_idempotency(self, pairs: Sequence[tuple[str, str]]) -> list[IdempotencyRecord]:
        """The records of several (principal, key) pairs at once (the leader groups concurrent lookups)."""
        if not pairs:
            return []
        i = schema.idempotency
        found = self._fetch(_idempotency_columns().where(tuple_(i.c.principal, i.c.key).in_(list(pairs))))
        return [rows.idempotency_record(row) for row in found]

    def async_key_lookup(self) -> AsyncKeyLookup | None:
        if self._sqlite:
            return None
        from corral.store.pgkeys import PgKeyLookup  # psycopg only where PostgreSQL is used

        return PgKeyLookup(self.engine.url)

    def load_idempotency(self, since: float) -> list[IdempotencyRecord]:
        i = schema.idempotency
        stmt = _idempotency_columns().where(i.c.created_at >= since).order_by(i.c.created_at, i.c.principal)
        try:
            return [rows.idempotency_record(row) for row in self._fetch(stmt)]
        except SQLAlchemyError as e:
            raise StoreError(f"cannot load idempotency keys: {e}") from e

    def prune_idempotency(self, before: float, *, epoch: int) -> int:
        i = schema.idempotency
        with self._fenced(epoch) as (conn, generation):
            pruned = conn.execute(delete(i).where(i.c.created_at < before)).rowcount
            integrity.record(conn, epoch=epoch, generation=generation)
        return int(pruned)

    # -- capacity groups, settings, teams and tokens: small tables of (key, JSON body) rows ----------

    def load_groups(self) -> list[CapacityGroup]:
        return self._load_bodies(schema.capacity_groups.c.name, CapacityGroup, "capacity group")

    def put_group(self, group: CapacityGroup, *, epoch: int) -> None:
        self._put_body(schema.capacity_groups.c.name, group.name, to_json(group).decode(), epoch)

    def delete_group(self, name: str, *, epoch: int) -> None:
        self._delete_body(schema.capacity_groups.c.name, name, epoch)

    def load_settings(self) -> dict[str, str]:
        t = schema.settings
        try:
            return {k: v for k, v in self._fetch(select(t.c.key, t.c.value))}
        except SQLAlchemyError as e:
            raise StoreError(f"cannot load settings: {e}") from e

    def put_setting(self, key: str, value: str, *, epoch: int) -> None:
        t = schema.settings
        with self._fenced(epoch) as (conn, generation):
            stmt = self._insert(t).values(key=key, value=value)
            conn.execute(
                stmt.on_conflict_do_update(index_elements=[t.c.key], set_={"value": stmt.excluded.value})
            )
            integrity.record(conn, epoch=epoch, generation=generation)

    def load_teams(self) -> list[Team]:
        return self._load_bodies(schema.teams.c.name, Team, "team")

    def put_team(self, team: Team, *, epoch: int) -> None:
        self._put_body(schema.teams.c.name, team.name, to_json(team).decode(), epoch)

    def delete_team(self, name: str, *, epoch: int) -> None:
        self._delete_body(schema.teams.c.name, name, epoch)

    def load_tokens(self) -> list[Token]:
        return self._load_bodies(schema.tokens.c.id, Token, "token")

    def put_token(self, token: Token, *, epoch: int) -> None:
        self._put_body(schema.tokens.c.id, token.id, to_json(token).decode(), epoch)

    def _load_bodies(self, key: Any, kind: type[T], what: str) -> list[T]:
        """Every row of ``key``'s table, in key order, decoded (StoreError if one does not decode)."""
        try:
            found = self._fetch(select(key, key.table.c.body).order_by(key))
        except SQLAlchemyError as e:
            raise StoreError(f"cannot load {what}s: {e}") from e
        return rows.decode(found, kind, what)

    def _put_body(self, key: Any, value: str, body: str, epoch: int) -> None:
        table = key.table
        with self._fenced(epoch) as (conn, generation):
            stmt = self._insert(table).values({key.name: value, "body": body})
            conn.execute(stmt.on_conflict_do_update(index_elements=[key], set_={"body": stmt.excluded.body}))
            integrity.record(conn, epoch=epoch, generation=generation)

    def _delete_body(self, key: Any, value: str, epoch: int) -> None:
        with self._fenced(epoch) as (conn, generation):
            conn.execute(delete(key.table).where(key == value))
            integrity.record(conn, epoch=epoch, generation=generation)

    def _fetch(self, stmt: Select[Any]) -> Sequence[Any]:
        with self.engine.connect() as conn:
            return conn.execute(stmt).all()


def open_store(
    url: str,
    *,
    sqlite_synchronous: str = "FULL",
    idle_in_transaction_s: float = IDLE_IN_TRANSACTION_S,
    writer_process: bool = False,
) -> SqlStore:
    """An opened (schema checked and migrated) store for a SQLAlchemy URL, e.g. ``sqlite:///corral.db``.
    ``idle_in_transaction_s`` (PostgreSQL; 0: never): how long the server lets a session of this store sit
    in a transaction waiting for it, before ending the session and so releasing its locks.
    ``writer_process``: commit write batches in a child process of the store's own (``writer_process``),
    where a leader's busy event loop cannot slow them down."""
    settings = EngineSettings(sqlite_synchronous, idle_in_transaction_s)
    engine = create_store_engine(url, settings)
    store = SqlStore(engine)
    try:
        store.open()
        if writer_process:
            store.use_writer_process(WriterProcess(url, settings))
    except BaseException:
        store.close()  # the caller never gets the store, so its connections would leak
        raise
    return store


def _checked(
    found: Sequence[Any],
    kind: type[T],
    what: str,
    disagreements: Callable[[str, str, str, T], list[str]],
    problems: list[integrity.Problem],
) -> list[T]:
    """Decode ``(id, column, column, body)`` rows, adding to ``problems`` each that does not decode or
    whose columns disagree with its body (compared only when the fast check fails: loads are hot)."""
    out: list[T] = []
    decode = rows.decoder(kind)
    for ident, a, b, body in found:
        try:
            record = decode(body)
        except (DecodeError, ValueError) as e:
            problems.append(integrity.Problem(f"{what} {ident} cannot be decoded ({e})"))
            continue
        out.append(record)
        if not rows.agrees(ident, a, b, record):
            problems += [integrity.Problem(p) for p in disagreements(ident, a, b, record)]
    return out


def _idempotency_columns() -> Select[Any]:
    i = schema.idempotency
    return select(i.c.principal, i.c.key, i.c.request_hash, i.c.resource, i.c.resource_id, i.c.created_at)
