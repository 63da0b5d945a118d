"""Backups: consistent snapshots, restored into empty stores (across backends too), checked on the way."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text

from corral.domain.auth import Role, Team, Token
from corral.domain.capacity import CapacityGroup, Tier
from corral.domain.idempotency import IdempotencyRecord
from corral.domain.resources import Resources
from corral.domain.states import JobState, TaskState
from corral.store import JobQuery, SqlStore, StoreError, WriteBatch, open_store
from corral.store import backup as backups
from tests.store.factories import make_job, make_task
from tests.store.rawdb import raw
from tests.support.postgres import fresh_database

COUNTS = {"job": 2, "task": 3, "group": 1, "setting": 1, "team": 1, "token": 1, "idempotency": 1}
KEY = IdempotencyRecord("alice", "key-1", "sha256:ab", "job", "a", 2.0)


def fill(store: SqlStore) -> None:
    store.write(
        WriteBatch(
            jobs=[
                make_job("a", labels={"team": "x"}),
                make_job("b", state=JobState.FINISHED, finished_at=5.0),
            ],
            tasks=[
                make_task("a0", "a", state=TaskState.STARTED, host_id="h1", ports=(31000,)),
                make_task("a1", "a", index=1, state=TaskState.FINISHED, finished_at=3.0),
                make_task("b0", "b", state=TaskState.FINISHED, finished_at=4.0),
            ],
            idempotency=[KEY],
        ),
        epoch=0,
    )
    store.put_group(CapacityGroup("render", Tier.CRITICAL, Resources(8, 1024)), epoch=0)
    store.put_setting("scheduler.mode.flex", "spread", epoch=0)
    store.put_team(Team("payments", emails=("@payments.example.com",), max_active_jobs=4), epoch=0)
    store.put_token(Token("tok-1", "alice", "payments", Role.USER, "cd" * 32, 10.0, revoked_at=20.0), epoch=0)


@pytest.mark.parametrize("gzipped", [False, True])
def test_backup_then_restore_gives_identical_records(store: SqlStore, tmp_path: Path, gzipped: bool) -> None:
    fill(store)
    path = tmp_path / ("b.jsonl.gz" if gzipped else "b.jsonl")
    counts = backups.backup(store, path)
    assert counts == COUNTS
    for target in (f"sqlite:///{tmp_path / 'restored.db'}", "postgresql"):
        if target == "postgresql":
            with fresh_database() as url:
                _restore_and_compare(store, path, url)
        else:
            _restore_and_compare(store, path, target)


def _restore_and_compare(source: SqlStore, path: Path, url: str) -> None:
    restored = open_store(url)
    try:
        assert backups.restore(restored, path) == COUNTS
        assert backups.records_equal(backups.snapshot(source), backups.snapshot(restored))
        assert restored.get_job("a") == source.get_job("a")
        assert [j.id for j in restored.list_jobs(JobQuery(labels={"team": "x"}))] == ["a"]
        assert [g.name for g in restored.load_groups()] == ["render"]
        assert restored.load_settings() == {"scheduler.mode.flex": "spread"}
        assert restored.load_teams() == source.load_teams()
        assert restored.load_tokens() == source.load_tokens()  # revoked stays revoked
        assert restored.load_idempotency(0.0) == [KEY]
        record = restored.verify()  # it loads: the restore recorded what it holds
        assert (record.active_jobs, record.active_tasks) == (1, 1)
    finally:
        restored.close()


def test_restore_needs_an_empty_store(store: SqlStore, tmp_path: Path) -> None:
    fill(store)
    path = tmp_path / "b.jsonl"
    backups.backup(store, path)
    with pytest.raises(StoreError, match="needs an empty store"):
        backups.restore(store, path)


def test_damaged_backups_are_refused(store: SqlStore, tmp_path: Path) -> None:
    fill(store)
    path = tmp_path / "b.jsonl"
    backups.backup(store, path)
    lines = path.read_text().splitlines()
    truncated = tmp_path / "truncated.jsonl"
    truncated.write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(StoreError, match="truncated"):
        backups.verify(truncated)
    missing = tmp_path / "missing.jsonl"
    missing.write_text("\n".join([lines[0], *lines[2:]]) + "\n")  # a record gone, the trailer kept
    with pytest.raises(StoreError, match="promises"):
        backups.verify(missing)
    garbled = tmp_path / "garbled.jsonl"
    garbled.write_text("\n".join([lines[0], "{not json", *lines[1:]]) + "\n")
    with pytest.raises(StoreError, match="not JSON"):
        backups.verify(garbled)
    report = backups.verify(path)
    assert report["counts"]["task"] == 3 and report["active_jobs"] == 1 and report["active_tasks"] == 2


def test_a_backup_of_a_damaged_store_is_refused(store: SqlStore, database_url: str, tmp_path: Path) -> None:
    fill(store)
    with raw(database_url) as conn:
        conn.execute(text("DELETE FROM corral_tasks WHERE id = 'a0'"))  # a running task lost
    path = tmp_path / "b.jsonl"
    backups.backup(store, path)  # taking it works: the backup is how the damage is investigated
    with pytest.raises(StoreError, match="holds 1 jobs and 0 tasks not finished, but the integrity record"):
        backups.verify(path)
    with fresh_database() as url:
        restored = open_store(url)
        try:
            with pytest.raises(StoreError, match="backup of a damaged store"):
                backups.restore(restored, path)
            assert restored.get_job("a") is None  # all or nothing
        finally:
            restored.close()


def test_a_backup_from_the_previous_format_restores_and_loads(store: SqlStore, tmp_path: Path) -> None:
    fill(store)
    path = tmp_path / "b.jsonl"
    backups.backup(store, path)
    records = [json.loads(line) for line in path.read_text().splitlines()]
    header, *body, trailer = records
    header["format_version"] = 1
    del header["integrity"], header["counts"]["idempotency"], trailer["counts"]["idempotency"]
    old = tmp_path / "old.jsonl"
    old.write_text(
        "".join(
            json.dumps(r) + "\n" for r in [header, *(r for r in body if r["kind"] != "idempotency"), trailer]
        )
    )
    report = backups.verify(old)
    assert report["active_jobs"] == 1 and report["active_tasks"] == 2  # job a and both its tasks
