"""The store's writer process (store/writer_process.py), on both backends: batches commit in a child
process with the same fencing, integrity record and refusals as in the leader's own thread; a child that
dies costs one failed write; the child never outlives its store or its master."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from corral.domain.idempotency import IdempotencyRecord
from corral.domain.states import JobState, TaskState
from corral.store import FencedError, SqlStore, StoreError, WriteBatch, open_store
from corral.store.protocol import UnwritableRecord
from tests.store.factories import make_job, make_task
from tests.support.cluster import wait_for

KEY = IdempotencyRecord("alice", "k1", "h", "job", "j1", 1.0)


@pytest.fixture
def in_process(database_url: str) -> Iterator[SqlStore]:
    opened = open_store(database_url, writer_process=True)
    yield opened
    opened.close()


def _writer_pid(store: SqlStore) -> int:
    writer = store._writer_process
    assert writer is not None and writer.pid is not None
    return writer.pid


def _gone(pid: int) -> bool:
    """The process ended (a zombie nobody has reaped yet counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_a_batch_commits_in_the_child_as_it_would_in_the_leader(in_process: SqlStore) -> None:
    assert _writer_pid(in_process) != os.getpid()
    before = in_process.verify().generation
    job = make_job("j1", labels={"team": "a"})
    task = replace(make_task("t1", "j1", state=TaskState.STARTED, host_id="h1"), started_at=2.0)
    in_process.write(WriteBatch([job], [task], [KEY]), epoch=0)
    assert in_process.get_job("j1") == job
    assert in_process.get_task("t1") == task
    assert in_process.find_idempotency([("alice", "k1")]) == [KEY]
    finished = make_job("j1", state=JobState.FINISHED, finished_at=3.0)
    in_process.write(WriteBatch([finished], [make_task("t1", "j1", state=TaskState.FINISHED)]), epoch=0)
    record = in_process.verify()  # the integrity record was kept by the child's transactions
    assert (record.active_jobs, record.active_tasks, record.generation) == (0, 0, before + 2)


def test_a_deposed_epoch_is_refused_by_the_child_and_nothing_is_written(in_process: SqlStore) -> None:
    epoch = in_process.acquire_lease("master-a", "http://a", 30.0)
    assert epoch == 1
    with pytest.raises(FencedError, match="epoch 0 is over: epoch 1 leads now"):
        in_process.write(WriteBatch([make_job("stale")]), epoch=0)
    assert in_process.get_job("stale") is None
    in_process.write(WriteBatch([make_job("fresh")]), epoch=1)
    assert in_process.get_job("fresh") is not None


def test_a_value_the_database_refuses_comes_back_unwritable(in_process: SqlStore) -> None:
    bad = replace(make_task("t-bad", "j1"), job_id=None)  # type: ignore[arg-type]  # NOT NULL
    with pytest.raises(UnwritableRecord, match="the database refused a value"):
        in_process.write(WriteBatch([make_job("j1")], [bad]), epoch=0)
    assert in_process.get_job("j1") is None  # the whole batch was rolled back
    in_process.write(WriteBatch([make_job("j1")]), epoch=0)  # and the child takes the next one
    assert in_process.get_job("j1") is not None


class _ExitOnArrival:
    """Unpickled in the child, it ends the child: a writer process that dies in the middle of a batch."""

    def __reduce__(self) -> tuple[object, tuple[int]]:
        return os._exit, (7,)


def test_a_child_that_dies_mid_batch_fails_that_write_and_the_next_starts_another(
    in_process: SqlStore,
) -> None:
    first = _writer_pid(in_process)
    with pytest.raises(StoreError, match="writer process ended"):
        in_process._commit(_ExitOnArrival())  # type: ignore[arg-type]
    in_process.write(WriteBatch([make_job("j2")]), epoch=0)
    assert in_process.get_job("j2") is not None
    assert _writer_pid(in_process) != first
    assert _gone(first)


def test_a_child_found_dead_is_replaced_before_the_write(in_process: SqlStore) -> None:
    first = _writer_pid(in_process)
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: _gone(first), 30, what="the writer process to die")
    in_process.write(WriteBatch([make_job("j2")]), epoch=0)  # nothing is lost: it goes to a new child
    assert in_process.get_job("j2") is not None
    assert _writer_pid(in_process) != first


def test_closing_the_store_ends_its_child(database_url: str) -> None:
    store = open_store(database_url, writer_process=True)
    pid = _writer_pid(store)
    store.write(WriteBatch([make_job("j1")]), epoch=0)
    store.close()
    wait_for(lambda: _gone(pid), 30, what="the writer process to exit")
    with pytest.raises(StoreError, match="closed"):
        store._commit(None)  # type: ignore[arg-type]


def test_the_child_ends_when_its_master_is_killed(database_url: str, tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys, time
        from corral.store import open_store
        store = open_store({database_url!r}, writer_process=True)
        print(store._writer_process.pid, flush=True)
        time.sleep(600)
        """
    )
    master = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert master.stdout is not None
        child = int(master.stdout.readline())
        assert not _gone(child)
    finally:
        master.kill()
        master.wait()
        if master.stdout is not None:
            master.stdout.close()
    wait_for(lambda: _gone(child), 30, what="the orphaned writer process to exit")
