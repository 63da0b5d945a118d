"""``corral admin backup | restore | verify`` against real stores, from a live master's data."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from corral.store import backup as backups
from corral.store import open_store
from tests.support.cluster import MasterProcess
from tests.support.postgres import fresh_database
from tests.support.specs import batch_job, service_job

pytestmark = pytest.mark.integration


def corral(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "corral", "admin", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ,
    )


def test_backup_restore_verify_from_sqlite_to_postgresql(tmp_path: Path) -> None:
    data = tmp_path / "data"
    master = MasterProcess(data).start()
    for _ in range(3):
        master.submit(batch_job(["sleep", "100"], size=2))
    master.submit(service_job(2))
    file = tmp_path / "corral-backup.jsonl.gz"
    made = corral(
        "backup", str(file), "--data-dir", str(data)
    )  # while the master runs: a consistent snapshot
    assert made.returncode == 0, made.stderr
    master.close()
    checked = corral("verify", str(file))
    assert checked.returncode == 0 and "ok" in checked.stdout
    with fresh_database() as url:
        restored = corral("restore", str(file), "--store-url", url)
        assert restored.returncode == 0, restored.stderr
        again = corral("restore", str(file), "--store-url", url)
        assert again.returncode == 1 and "needs an empty store" in again.stderr
        source = open_store(f"sqlite:///{data / 'corral.db'}")
        target = open_store(url)
        try:
            jobs = [r for r in backups.snapshot(target) if r.get("kind") == "job"]
            assert len(jobs) == 4
            assert backups.records_equal(backups.read(file), backups.snapshot(target))
            assert target.load_active().jobs == source.load_active().jobs
        finally:
            source.close()
            target.close()
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"format": "something-else"}\n')
    refused = corral("verify", str(broken))
    assert refused.returncode == 1 and "not a Corral backup" in refused.stderr


def test_check_finds_a_damaged_store_and_reseal_accepts_one_an_operator_checked(tmp_path: Path) -> None:
    import sqlite3

    data = tmp_path / "data"
    master = MasterProcess(data).start()
    job = master.submit(batch_job(["sleep", "100"], size=2))
    healthy = corral("check", "--data-dir", str(data))
    assert healthy.returncode == 0 and "1 active jobs" in healthy.stdout, healthy.stdout + healthy.stderr
    refused = corral("reseal", "--data-dir", str(data), "--yes")
    assert refused.returncode != 0  # a master leads this store: not now
    master.stop()
    with sqlite3.connect(data / "corral.db") as db:  # an operator finishes the job by hand, say
        db.execute("DELETE FROM corral_tasks WHERE job_id = ?", (job["id"],))
    damaged = corral("check", "--data-dir", str(data))
    assert damaged.returncode == 1 and "corral_tasks" in damaged.stderr, damaged.stderr
    sealed = corral("reseal", "--data-dir", str(data), "--yes")
    assert sealed.returncode == 0, sealed.stderr
    assert corral("check", "--data-dir", str(data)).returncode == 0
    master.start()  # it leads on exactly what is there now
    assert master.job(job["id"])["state"] == "Accepted"
    master.close()
