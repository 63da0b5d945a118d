"""Backups: consistent snapshots, restored into empty stores (across backends too), checked on the way."""

from __future__ import annotations

from pathlib import Path

import pytest

from corral.domain.auth import Role, Team, Token
from corral.domain.capacity import CapacityGroup, Tier
from corral.domain.resources import Resources
from corral.domain.states import JobState, TaskState
from corral.store import JobQuery, SqlStore, StoreError, WriteBatch, open_store
from corral.store import backup as backups
from tests.store.factories import make_job, make_task
from tests.support.postgres import fresh_database

COUNTS = {"job": 2, "task": 3, "group": 1, "setting": 1, "team": 1, "token": 1}


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
        )
    )
    store.put_group(CapacityGroup("render", Tier.CRITICAL, Resources(8, 1024)))
    store.put_setting("scheduler.mode.flex", "spread")
    store.put_team(Team("payments", emails=("@payments.example.com",), max_active_jobs=4))
    store.put_token(Token("tok-1", "alice", "payments", Role.USER, "cd" * 32, 10.0, revoked_at=20.0))


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
