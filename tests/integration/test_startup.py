"""A master never starts empty over data it cannot trust: it refuses, says why, and exits non-zero."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.support.cluster import MasterProcess
from tests.support.specs import batch_job

pytestmark = pytest.mark.integration


def start_and_fail(data_dir: Path) -> str:
    master = MasterProcess(data_dir).start(wait=False)
    assert master.proc is not None
    code = master.proc.wait(30)
    assert code == 3, f"the master exited {code}, not 3 (store refused):\n{master.log()[-3000:]}"
    master.http.close()
    return master.log()


def test_a_newer_schema_stops_the_master(tmp_path: Path) -> None:
    master = MasterProcess(tmp_path).start()
    master.submit(batch_job(["sleep", "100"]))
    master.close()
    with sqlite3.connect(tmp_path / "corral.db") as db:
        db.execute("UPDATE corral_schema_version SET version = 99")
    log = start_and_fail(tmp_path)
    assert "schema is version 99, newer than this Corral knows" in log


def test_an_unreadable_record_stops_the_master_and_nothing_is_lost(tmp_path: Path) -> None:
    master = MasterProcess(tmp_path).start()
    job = master.submit(batch_job(["sleep", "100"]))
    master.close()
    with sqlite3.connect(tmp_path / "corral.db") as db:
        db.execute("UPDATE corral_jobs SET body = '{\"broken\": true' WHERE id = ?", (job["id"],))
    log = start_and_fail(tmp_path)
    assert f"job {job['id']} cannot be decoded" in log
    with sqlite3.connect(tmp_path / "corral.db") as db:  # the master wrote nothing over it
        assert db.execute("SELECT count(*) FROM corral_jobs").fetchone() == (1,)


def test_a_dropped_table_stops_the_master(tmp_path: Path) -> None:
    master = MasterProcess(tmp_path).start()
    master.submit(batch_job(["sleep", "100"]))
    master.close()
    with sqlite3.connect(tmp_path / "corral.db") as db:
        db.execute("DROP TABLE corral_tasks")
    log = start_and_fail(tmp_path)
    assert "corral_tasks" in log


def test_tables_without_a_version_stop_the_master(tmp_path: Path) -> None:
    tmp_path.mkdir(exist_ok=True)
    with sqlite3.connect(tmp_path / "corral.db") as db:
        db.execute("CREATE TABLE corral_jobs (id TEXT PRIMARY KEY)")
    log = start_and_fail(tmp_path)
    assert "no schema version" in log


def test_a_clean_restart_reloads_every_job(tmp_path: Path) -> None:
    master = MasterProcess(tmp_path).start()
    ids = {master.submit(batch_job(["sleep", "100"], size=2))["id"] for _ in range(3)}
    assert master.stop() in (0, -15)  # uvicorn re-raises SIGTERM after a graceful shutdown
    assert "master stopped" in master.log()
    master.start()
    listed = {j["id"] for j in master.http.get("/api/v1/jobs").json()["items"]}
    assert listed == ids
    assert master.http.get("/api/v1/status").json()["loaded"]["jobs"] == 3
    master.close()
