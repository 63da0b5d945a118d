"""Records to rows and back: the columns copied out of a record's JSON body, and decoding that refuses.

A row whose body does not decode, or whose columns disagree with its body, is damage: it is never read
as absent or as some default, but named in a StoreError.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from corral.domain.codec import DecodeError, from_json, to_json
from corral.domain.idempotency import IdempotencyRecord
from corral.domain.job import Job
from corral.domain.task import Task
from corral.store.protocol import StoreError

T = TypeVar("T")


def job_row(job: Job, epoch: int) -> dict[str, Any]:
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
        "epoch": epoch,
    }


def label_rows(jobs: Iterable[Job]) -> list[dict[str, Any]]:
    return [{"job_id": j.id, "key": k, "value": v} for j in jobs for k, v in j.descriptor.labels.items()]


def task_row(task: Task, epoch: int) -> dict[str, Any]:
    return {
        "id": task.id,
        "job_id": task.job_id,
        "state": task.state.value,
        "host_id": task.host_id,
        "created_at": task.created_at,
        "finished_at": task.finished_at,
        "body": to_json(task).decode(),
        "epoch": epoch,
    }


def idempotency_row(record: IdempotencyRecord) -> dict[str, Any]:
    return {
        "principal": record.principal,
        "key": record.key,
        "request_hash": record.request_hash,
        "resource": record.resource,
        "resource_id": record.resource_id,
        "created_at": record.created_at,
    }


def idempotency_record(row: Any) -> IdempotencyRecord:
    principal, key, request_hash, resource, resource_id, created_at = row
    return IdempotencyRecord(principal, key, request_hash, resource, resource_id, float(created_at))


def decode(rows: Iterable[Any], kind: type[T], what: str) -> list[T]:
    """Decode ``(id, body)`` rows; StoreError naming the first row that does not decode."""
    return [decode_one(ident, body, kind, what) for ident, body in rows]


def decode_one(ident: str, body: str, kind: type[T], what: str) -> T:
    try:
        return from_json(body, kind)
    except (DecodeError, ValueError) as e:
        raise StoreError(
            f"{what} {ident} cannot be decoded ({e}): the store is damaged or from elsewhere"
        ) from e


def decoder(kind: type[T]) -> Callable[[str], T]:
    """A decoder of ``kind`` from JSON (raising DecodeError or ValueError), for loops over many rows."""
    return lambda body: from_json(body, kind)


def agrees(ident: str, a: str, b: str, record: object) -> bool:
    """Whether a loaded row's columns match its body: for a job (state, job_type), for a task (job_id,
    state). The quick check before the detailed one."""
    if isinstance(record, Job):
        return record.id == ident and record.state.value == a and record.descriptor.type.value == b
    if isinstance(record, Task):
        return record.id == ident and record.job_id == a and record.state.value == b
    return False


def job_disagreements(ident: str, state: str, job_type: str, job: Job) -> list[str]:
    """Where a job row's columns and its body disagree (each as a sentence naming the row)."""
    found = [
        (column, value, body)
        for column, value, body in (
            ("id", ident, job.id),
            ("state", state, job.state.value),
            ("job_type", job_type, job.descriptor.type.value),
        )
        if value != body
    ]
    return [f"job {ident}: column {c} is {v!r} but its body says {b!r}" for c, v, b in found]


def task_disagreements(ident: str, job_id: str, state: str, task: Task) -> list[str]:
    """Where a task row's columns and its body disagree (each as a sentence naming the row)."""
    found = [
        (column, value, body)
        for column, value, body in (
            ("id", ident, task.id),
            ("job_id", job_id, task.job_id),
            ("state", state, task.state.value),
        )
        if value != body
    ]
    return [f"task {ident}: column {c} is {v!r} but its body says {b!r}" for c, v, b in found]


def first(rows: Sequence[Any], kind: type[T]) -> T | None:
    decoded = decode(rows, kind, kind.__name__.lower())
    return decoded[0] if decoded else None


def chunks(items: Sequence[T], size: int) -> Iterable[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
