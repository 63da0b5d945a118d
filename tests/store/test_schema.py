"""Opening a store: creating, checking and migrating its schema, and refusing a database it cannot trust."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import Connection, inspect, select, text

from corral.domain.codec import to_json
from corral.domain.states import JobState, TaskState
from corral.store import SqlStore, StoreError, WriteBatch, open_store, schema
from tests.store.factories import make_job, make_task
from tests.store.rawdb import raw

Migration = Callable[[Connection], None]


def _tables(url: str) -> set[str]:
    with raw(url) as conn:
        return set(inspect(conn).get_table_names())


def _versions(url: str) -> list[int]:
    with raw(url) as conn:
        return list(conn.execute(select(schema.schema_version.c.version)).scalars())


def test_open_on_empty_database_creates_schema_at_latest_version(store: SqlStore, database_url: str) -> None:
    assert store.schema_version() == schema.LATEST_VERSION
    assert _tables(database_url) >= schema.CORRAL_TABLES | {schema.schema_version.name}
    assert _versions(database_url) == [schema.LATEST_VERSION]
    assert store.load_active().jobs == []


def test_reopening_is_idempotent_and_keeps_data(store: SqlStore, database_url: str) -> None:
    store.write(WriteBatch([make_job("j1", labels={"k": "v"})], [make_task("t1", "j1")]), epoch=0)
    store.open()  # the same store, opened again
    again = open_store(database_url)  # and a second store on the same database
    try:
        assert again.schema_version() == schema.LATEST_VERSION
        assert _versions(database_url) == [schema.LATEST_VERSION]
        loaded = again.load_active()
        assert [j.id for j in loaded.jobs] == ["j1"]
        assert [t.id for t in loaded.tasks] == ["t1"]
    finally:
        again.close()


def test_newer_schema_version_is_refused(store: SqlStore, database_url: str) -> None:
    newer = schema.LATEST_VERSION + 1
    with raw(database_url) as conn:
        conn.execute(schema.schema_version.update().values(version=newer))
    with pytest.raises(StoreError, match=rf"version {newer}, newer than this Corral knows"):
        store.open()
    with pytest.raises(StoreError, match="upgrade Corral"):
        open_store(database_url)
    assert _versions(database_url) == [newer]  # refused, not rewritten


def test_corral_tables_without_version_table_are_refused(database_url: str) -> None:
    with raw(database_url) as conn:
        schema.jobs.create(conn)
        conn.execute(
            text(
                "INSERT INTO corral_jobs (id, state, job_type, owner, application, capacity_group, "
                "created_at, body) VALUES ('j1', 'Accepted', 'batch', 'o', 'a', 'default', 0, '{}')"
            )
        )
    with pytest.raises(StoreError, match=r"Corral tables \(corral_jobs\) but no schema version"):
        open_store(database_url)
    # Nothing was created or dropped: the existing row is still there and no version table appeared.
    assert schema.schema_version.name not in _tables(database_url)
    with raw(database_url) as conn:
        assert conn.execute(text("SELECT id FROM corral_jobs")).scalars().all() == ["j1"]


def test_failed_open_releases_its_engine(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with raw(database_url) as conn:
        schema.tasks.create(conn)
    closed: list[SqlStore] = []
    real_close = SqlStore.close

    def close(self: SqlStore) -> None:
        closed.append(self)
        real_close(self)

    monkeypatch.setattr(SqlStore, "close", close)
    with pytest.raises(StoreError, match="no schema version"):
        open_store(database_url)
    assert len(closed) == 1  # the caller never sees the store, so open_store must dispose of it


def test_version_table_with_several_rows_is_refused(store: SqlStore, database_url: str) -> None:
    with raw(database_url) as conn:
        conn.execute(schema.schema_version.insert().values(version=schema.LATEST_VERSION))
    with pytest.raises(StoreError, match="holds 2 rows, not 1"):
        store.open()


def test_unrelated_tables_do_not_block_a_fresh_schema(database_url: str) -> None:
    with raw(database_url) as conn:
        conn.execute(text("CREATE TABLE someone_elses (id INTEGER)"))
    opened = open_store(database_url)
    try:
        assert opened.schema_version() == schema.LATEST_VERSION
    finally:
        opened.close()


def test_version_zero_database_is_migrated_to_latest(database_url: str) -> None:
    with raw(database_url) as conn:
        schema.schema_version.create(conn)
        conn.execute(schema.schema_version.insert().values(version=0))
    assert _tables(database_url) == {schema.schema_version.name}
    opened = open_store(database_url)
    try:
        assert opened.schema_version() == schema.LATEST_VERSION
        assert _tables(database_url) >= schema.CORRAL_TABLES
        opened.write(WriteBatch([make_job("j1")], [make_task("t1", "j1")]), epoch=0)
        assert opened.get_task("t1") == make_task("t1", "j1")
    finally:
        opened.close()
    assert _versions(database_url) == [schema.LATEST_VERSION]


def test_every_migration_step_is_applied_in_order(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    applied: list[int] = []

    def step(n: int, real: Migration) -> Migration:
        def run(conn: Connection) -> None:
            applied.append(n)
            real(conn)

        return run

    monkeypatch.setattr(schema, "MIGRATIONS", tuple(step(i, m) for i, m in enumerate(schema.MIGRATIONS)))
    opened = open_store(database_url)
    try:
        assert applied == list(range(schema.LATEST_VERSION))
        opened.open()
        assert applied == list(range(schema.LATEST_VERSION))  # nothing left to migrate the second time
    finally:
        opened.close()


@pytest.mark.parametrize("body", ["not json at all", '{"id": "j-bad"}', '{"id": 5, "descriptor": []}'])
def test_undecodable_job_row_fails_load_naming_the_row(store: SqlStore, database_url: str, body: str) -> None:
    store.write(WriteBatch([make_job("j-good")]), epoch=0)
    with raw(database_url) as conn:
        conn.execute(
            schema.jobs.insert().values(
                id="j-bad",
                state="Accepted",
                job_type="batch",
                owner="o",
                application="a",
                capacity_group="default",
                created_at=0.0,
                body=body,
            )
        )
    with pytest.raises(StoreError, match="job j-bad cannot be decoded"):
        store.load_active()
    with pytest.raises(StoreError, match="j-bad"):
        store.get_job("j-bad")
    assert store.get_job("j-good") == make_job("j-good")


def test_undecodable_task_row_fails_load_naming_the_row(store: SqlStore, database_url: str) -> None:
    store.write(WriteBatch([make_job("j1")], [make_task("t-good", "j1")]), epoch=0)
    with raw(database_url) as conn:
        conn.execute(
            schema.tasks.insert().values(
                id="t-bad", job_id="j1", state="Accepted", created_at=0.0, body='{"id": "t-bad", "state": 3}'
            )
        )
    with pytest.raises(StoreError, match="task t-bad cannot be decoded"):
        store.load_active()


@pytest.mark.parametrize("start", ["empty", "version 0"])
def test_failed_migration_leaves_the_database_as_it_was(
    database_url: str, monkeypatch: pytest.MonkeyPatch, start: str
) -> None:
    if start == "version 0":
        with raw(database_url) as conn:
            schema.schema_version.create(conn)
            conn.execute(schema.schema_version.insert().values(version=0))
    before = _tables(database_url)
    real = schema.MIGRATIONS

    def half_done(conn: Connection) -> None:
        real[0](conn)
        raise ValueError("migration bug")

    monkeypatch.setattr(schema, "MIGRATIONS", (half_done, *real[1:]))
    with pytest.raises(ValueError, match="migration bug"):
        open_store(database_url)
    assert _tables(database_url) == before

    monkeypatch.setattr(schema, "MIGRATIONS", real)  # the fixed release then migrates cleanly
    opened = open_store(database_url)
    try:
        assert opened.schema_version() == schema.LATEST_VERSION
    finally:
        opened.close()


def _columns(url: str, table: str) -> set[str]:
    with raw(url) as conn:
        return {c["name"] for c in inspect(conn).get_columns(table)}


def test_a_version_4_store_is_migrated_and_loads(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 11's migration: the writing epoch per row, the integrity record computed from the rows already
    there, idempotency keys. A store written by the previous release loads without an operator's help."""
    with monkeypatch.context() as m:  # the previous release: migrations 1 to 4 only
        m.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:4])
        m.setattr(schema, "LATEST_VERSION", 4)
        open_store(database_url).close()
    assert _versions(database_url) == [4]
    assert "epoch" not in _columns(database_url, "corral_tasks")  # the real version 4 shape
    assert "corral_integrity" not in _tables(database_url)
    rows = {
        "corral_jobs": [("j1", "Accepted"), ("j2", "KillInitiated"), ("j3", "Finished")],
        "corral_tasks": [("t1", "j1", "Started"), ("t2", "j1", "Finished"), ("t3", "j2", "KillInitiated"),
                         ("t4", "j3", "Finished")],
    }  # fmt: skip
    with raw(database_url) as conn:  # as the version 4 code wrote them (no epoch column)
        for ident, state in rows["corral_jobs"]:
            job = make_job(ident, state=JobState(state))
            conn.execute(
                text(
                    "INSERT INTO corral_jobs (id, state, job_type, owner, application, capacity_group, "
                    "created_at, finished_at, body) VALUES (:id, :state, 'batch', 'o', 'a', 'default', 0, "
                    ":finished_at, :body)"
                ),
                {"id": ident, "state": state, "finished_at": job.finished_at, "body": to_json(job).decode()},
            )
        for ident, job_id, state in rows["corral_tasks"]:
            task = make_task(ident, job_id, state=TaskState(state))
            conn.execute(
                text(
                    "INSERT INTO corral_tasks (id, job_id, state, created_at, body) "
                    "VALUES (:id, :job_id, :state, 0, :body)"
                ),
                {"id": ident, "job_id": job_id, "state": state, "body": to_json(task).decode()},
            )
        conn.execute(text("UPDATE corral_leader SET epoch = 7"))
    store = open_store(database_url)
    try:
        assert _versions(database_url) == [schema.LATEST_VERSION]
        record = store.verify()
        assert (record.generation, record.active_jobs, record.active_tasks, record.epoch) == (1, 2, 2, 7)
        loaded = store.load_active()
        assert sorted(j.id for j in loaded.jobs) == ["j1", "j2"]
        assert sorted(t.id for t in loaded.tasks) == ["t1", "t2", "t3"]
        with raw(database_url) as conn:
            assert set(conn.execute(text("SELECT epoch FROM corral_tasks")).scalars()) == {0}
        assert store.load_idempotency(0.0) == []
        store.write(WriteBatch(tasks=[make_task("t1", "j1", state=TaskState.FINISHED)]), epoch=7)
        assert store.verify().active_tasks == 1
    finally:
        store.close()
    assert _columns(database_url, "corral_tasks") == {c.name for c in schema.tasks.columns}


def test_a_store_is_not_migrated_under_a_running_master(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A master of the previous release would go on writing without maintaining the integrity record: a
    newer master (a standby being upgraded first) must not migrate the store under it."""
    with monkeypatch.context() as m:
        m.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:4])
        m.setattr(schema, "LATEST_VERSION", 4)
        old = open_store(database_url)
    try:
        assert old.acquire_lease("old-master", "http://old", 30) == 1
        with pytest.raises(
            StoreError, match=r"at schema version 4 and a master leads it \(old-master at http"
        ):
            open_store(database_url)
        assert _versions(database_url) == [4]  # untouched
        old.release_lease("old-master", 1)
    finally:
        old.close()
    open_store(database_url).close()
    assert _versions(database_url) == [schema.LATEST_VERSION]
