"""Pruning history: old finished jobs go whole; active jobs lose old attempts but never their newest."""

from __future__ import annotations

from sqlalchemy import select

from corral.domain.states import FinishedReason, JobState, TaskState
from corral.store import JobQuery, SqlStore, TaskQuery, WriteBatch, schema
from tests.store.factories import make_job, make_task
from tests.store.rawdb import raw

BEFORE = 1000.0
OLD, RECENT = 100.0, 2000.0


def _label_job_ids(url: str) -> set[str]:
    with raw(url) as conn:
        return set(conn.execute(select(schema.job_labels.c.job_id)).scalars())


def _task_ids(store: SqlStore) -> set[str]:
    return {t.id for t in store.list_tasks(TaskQuery(limit=1000))}


def test_prune_deletes_old_finished_jobs_with_their_tasks_and_labels(
    store: SqlStore, database_url: str
) -> None:
    store.write(
        WriteBatch(
            [
                make_job("j-old1", state=JobState.FINISHED, finished_at=OLD, labels={"k": "1"}),
                make_job("j-old2", state=JobState.FINISHED, finished_at=BEFORE - 0.001, labels={"k": "2"}),
                make_job("j-recent", state=JobState.FINISHED, finished_at=RECENT, labels={"k": "3"}),
                make_job("j-edge", state=JobState.FINISHED, finished_at=BEFORE),  # not strictly older
                make_job("j-active", created_at=OLD, labels={"k": "4"}),
            ],
            [
                make_task("t-old1", "j-old1", state=TaskState.FINISHED, finished_at=OLD),
                make_task("t-old1b", "j-old1", index=1, state=TaskState.FINISHED, finished_at=RECENT),
                make_task("t-old2", "j-old2", state=TaskState.FINISHED, finished_at=OLD),
                make_task("t-recent", "j-recent", state=TaskState.FINISHED, finished_at=RECENT),
                make_task("t-active", "j-active", state=TaskState.STARTED, host_id="h", created_at=OLD),
            ],
        ),
        epoch=0,
    )
    assert store.prune_finished(BEFORE, epoch=0) == 2

    assert store.get_job("j-old1") is None
    assert store.get_job("j-old2") is None
    assert {j.id for j in store.list_jobs(JobQuery())} == {"j-recent", "j-edge", "j-active"}
    assert _task_ids(store) == {"t-recent", "t-active"}  # a pruned job's tasks go, however recent
    assert _label_job_ids(database_url) == {"j-recent", "j-active"}
    assert store.list_jobs(JobQuery(labels={"k": "1"})) == []
    assert store.prune_finished(BEFORE, epoch=0) == 0  # nothing left to prune


def test_prune_deletes_superseded_old_tasks_of_active_jobs(store: SqlStore) -> None:
    failed = FinishedReason.FAILED
    store.write(
        WriteBatch(
            [make_job("j-batch", created_at=OLD), make_job("j-svc", service=True, created_at=OLD)],
            [
                # Batch index 0: two old failed attempts, then a live retry.
                make_task("b0-1", "j-batch", state=TaskState.FINISHED, finished_at=OLD, reason=failed),
                make_task("b0-2", "j-batch", state=TaskState.FINISHED, finished_at=OLD, resubmit_of="b0-1"),
                make_task("b0-3", "j-batch", state=TaskState.STARTED, host_id="h", resubmit_of="b0-2"),
                # Batch index 1: an old retry that has itself been retried recently.
                make_task("b1-1", "j-batch", index=1, state=TaskState.FINISHED, finished_at=OLD),
                make_task(
                    "b1-2",
                    "j-batch",
                    index=1,
                    state=TaskState.FINISHED,
                    finished_at=RECENT,
                    resubmit_of="b1-1",
                ),
                # Service: a crashed task replaced long ago.
                make_task(
                    "s-1", "j-svc", index=None, state=TaskState.FINISHED, finished_at=OLD, reason=failed
                ),
                make_task(
                    "s-2", "j-svc", index=None, state=TaskState.STARTED, host_id="h", resubmit_of="s-1"
                ),
            ],
        ),
        epoch=0,
    )
    assert store.prune_finished(BEFORE, epoch=0) == 0  # no job went

    assert _task_ids(store) == {"b0-3", "b1-2", "s-2"}
    loaded = store.load_active()
    assert {j.id for j in loaded.jobs} == {"j-batch", "j-svc"}
    assert {t.id for t in loaded.tasks} == {"b0-3", "b1-2", "s-2"}


def test_prune_keeps_the_newest_task_of_each_line_of_an_active_job(store: SqlStore) -> None:
    # A batch job whose index 0 succeeded long ago while index 1 still runs: were index 0's task pruned,
    # a master restarting on this store would see no task for index 0 and run it again.
    store.write(
        WriteBatch(
            [make_job("j-batch", created_at=OLD), make_job("j-svc", service=True, created_at=OLD)],
            [
                make_task("b0", "j-batch", state=TaskState.FINISHED, finished_at=OLD),
                make_task("b1", "j-batch", index=1, state=TaskState.STARTED, host_id="h", created_at=OLD),
                # A scaled-down service task nothing replaced yet: the reconciler resumes its line from it.
                make_task(
                    "s-1",
                    "j-svc",
                    index=None,
                    state=TaskState.FINISHED,
                    finished_at=OLD,
                    reason=FinishedReason.SCALED_DOWN,
                ),
            ],
        ),
        epoch=0,
    )
    assert store.prune_finished(BEFORE, epoch=0) == 0
    assert _task_ids(store) == {"b0", "b1", "s-1"}


def test_prune_on_an_empty_store(store: SqlStore) -> None:
    assert store.prune_finished(BEFORE, epoch=0) == 0
