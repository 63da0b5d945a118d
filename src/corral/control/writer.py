"""Write-behind with group commit: the leader changes memory first and the store catches up in batches.

Every ``put`` is coalesced by id (the newest version wins) into the next batch; one batch is written at a
time, in one transaction, on a worker thread, so a burst of changes costs one commit. ``flush()`` waits
until everything put before it is durable: the API acknowledges a submission only after that.

What a failed batch means decides what happens next:

- the write was fenced (a newer leader exists): the term is over at once (``on_fatal``);
- the store is unreachable or failing: retry with backoff, and past ``retries`` give up (``on_fatal``):
  only a store that cannot be written at all makes the leader step down;
- the data itself was refused (``UnwritableRecord``: a string that cannot be encoded, a value the
  database will not hold): the batch is split in halves until the records that fail alone are found;
  they are rejected (``on_rejected``, and ``flush`` of their ids raises ``RecordRejected``) and everything
  else commits. A job is split off with its tasks and idempotency keys, so a rejected job leaves no task
  rows behind; later tasks of a job that was never stored are rejected too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from corral.control.fenced import FencedStore
from corral.domain.idempotency import IdempotencyRecord
from corral.domain.job import Job
from corral.domain.task import Task
from corral.store.lease import FencedError
from corral.store.protocol import UnwritableRecord, WriteBatch

log = logging.getLogger(__name__)

REMEMBERED_REJECTIONS = 10_000  # rejected ids kept for ``flush`` to report (oldest forgotten first)


class WriterFailed(Exception):
    """The store would not take writes after every retry; the leader must step down."""


class RecordRejected(Exception):
    """The store refused record ``ident`` (its data, not the store, is at fault): it was not stored."""

    def __init__(self, ident: str, reason: str) -> None:
        super().__init__(f"{ident} was not stored: {reason}")
        self.ident = ident
        self.reason = reason


# kind ("job", "task", "idempotency"), the record's id, the error the store raised
RejectionHook = Callable[[str, str, BaseException], None]


@dataclass(slots=True)
class _Unit:
    """What must commit together: a job, its tasks and its idempotency keys from one batch."""

    jobs: list[Job] = field(default_factory=list)
    tasks: list[Task] = field(default_factory=list)
    keys: list[IdempotencyRecord] = field(default_factory=list)

    def records(self) -> Iterable[tuple[str, str]]:
        yield from (("job", j.id) for j in self.jobs)
        yield from (("task", t.id) for t in self.tasks)
        yield from (("idempotency", k.ident) for k in self.keys)


def _batch(units: Iterable[_Unit]) -> WriteBatch:
    units = list(units)
    return WriteBatch(
        [j for u in units for j in u.jobs],
        [t for u in units for t in u.tasks],
        [k for u in units for k in u.keys],
    )


class StoreWriter:
    def __init__(
        self,
        store: FencedStore,
        *,
        retries: int = 5,
        retry_delay_s: float = 0.2,
        on_fatal: Callable[[BaseException], None] | None = None,
        on_rejected: RejectionHook | None = None,
    ) -> None:
        self.store = store
        self.retries = retries
        self.retry_delay_s = retry_delay_s
        self.on_fatal = on_fatal
        self.on_rejected = on_rejected
        self.busy_s = 0.0  # time spent committing (the mean commit shows in /api/v1/status)
        # Its own thread: a commit never waits in line behind reads in the shared pool.
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="corral-writer")
        self._jobs: dict[str, Job] = {}
        self._tasks: dict[str, Task] = {}
        self._keys: dict[str, IdempotencyRecord] = {}
        self._in_flight: set[str] = set()
        self._seq = 0  # count of puts so far
        self._committed = 0  # every put numbered <= this is durable or rejected
        self._wake = asyncio.Event()
        self._done = asyncio.Condition()
        self._failed: BaseException | None = None
        self._rejected: OrderedDict[str, str] = OrderedDict()  # id -> why its latest version was refused
        self._unstored_jobs: set[str] = set()  # rejected jobs never stored since: their tasks cannot be
        self.batches = 0
        self.records = 0
        self.rejections = 0

    def put_job(self, job: Job) -> None:
        self._jobs[job.id] = job
        self._mark()

    def put_task(self, task: Task) -> None:
        self._tasks[task.id] = task
        self._mark()

    def put_idempotency(self, record: IdempotencyRecord) -> None:
        """Store ``record`` with the batch that stores its job (put the job first, or with it)."""
        self._keys[record.ident] = record
        self._mark()

    def _mark(self) -> None:
        self._seq += 1
        self._wake.set()

    def is_clean(self, ident: str) -> bool:
        """True when nothing of record ``ident`` waits to be written (its latest version is in the store,
        or was rejected)."""
        return ident not in self._jobs and ident not in self._tasks and ident not in self._in_flight

    @property
    def backlog(self) -> int:
        return len(self._jobs) + len(self._tasks) + len(self._keys)

    def close(self) -> None:
        """Let the writer's thread go (once the term has stopped the writer)."""
        self._thread.shutdown(wait=False)

    async def flush(self, *idents: str) -> None:
        """Return once every earlier put is committed or rejected; raise WriterFailed if it never will be,
        and RecordRejected if the latest version of one of ``idents`` was rejected."""
        target = self._seq
        async with self._done:
            await self._done.wait_for(lambda: self._committed >= target or self._failed is not None)
        if self._failed is not None and self._committed < target:
            raise WriterFailed(str(self._failed)) from self._failed
        for ident in idents:
            reason = self._rejected.get(ident)
            if reason is not None:
                raise RecordRejected(ident, reason)

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not self.backlog:
                continue
            target = self._seq
            units = self._take()
            started = time.perf_counter()
            try:
                written = await self._commit(units)
            except BaseException as e:
                self._failed = e
                async with self._done:
                    self._done.notify_all()
                if self.on_fatal is not None and not isinstance(e, asyncio.CancelledError):
                    self.on_fatal(e)
                raise
            finally:
                self._in_flight = set()
            self.batches += 1
            self.records += written
            self.busy_s += time.perf_counter() - started
            async with self._done:
                self._committed = target
                self._done.notify_all()

    def _take(self) -> list[_Unit]:
        """The pending records, grouped into units (by job), as the next batch."""
        units: dict[str, _Unit] = {}
        for job in self._jobs.values():
            units.setdefault(job.id, _Unit()).jobs.append(job)
        for task in self._tasks.values():
            units.setdefault(task.job_id, _Unit()).tasks.append(task)
        for key in self._keys.values():
            owner = key.resource_id if key.resource == "job" else f"idempotency {key.ident}"
            units.setdefault(owner, _Unit()).keys.append(key)
        self._in_flight = set(self._jobs) | set(self._tasks)
        self._jobs, self._tasks, self._keys = {}, {}, {}
        return list(units.values())

    async def _commit(self, units: list[_Unit]) -> int:
        """Write ``units``, rejecting those the store refuses; return how many records were stored."""
        writable: list[_Unit] = []
        for unit in units:
            orphaned = not unit.jobs and any(t.job_id in self._unstored_jobs for t in unit.tasks)
            if orphaned:
                job_id = unit.tasks[0].job_id
                await self._reject(unit, UnwritableRecord(f"its job {job_id} was not stored"))
            else:
                writable.append(unit)
        if not writable:
            return 0
        try:
            await self._write(_batch(writable))
            stored = writable
        except UnwritableRecord as e:
            log.warning(
                "the store refused a batch of %d records (%s): finding the records at fault",
                _size(writable),
                e,
            )
            stored = await self._isolate(writable, e)
        for unit in stored:
            self._unstored_jobs.difference_update(j.id for j in unit.jobs)
            for _, ident in unit.records():
                self._rejected.pop(ident, None)
        return sum(_size([u]) for u in stored)

    async def _isolate(self, units: list[_Unit], error: UnwritableRecord) -> list[_Unit]:
        """Split ``units`` (whose write failed with ``error``) until what fails alone is found; reject that,
        write the rest. Returns the units stored."""
        if len(units) == 1:
            await self._reject(units[0], error)
            return []
        stored: list[_Unit] = []
        middle = len(units) // 2
        for half in (units[:middle], units[middle:]):
            try:
                await self._write(_batch(half))
                stored += half
            except UnwritableRecord as e:
                stored += await self._isolate(half, e)
        return stored

    async def _reject(self, unit: _Unit, error: BaseException) -> None:
        reason = str(error)
        for job in unit.jobs:
            if await self._never_stored(job.id):
                self._unstored_jobs.add(job.id)  # so that its tasks are not stored without it
        for kind, ident in unit.records():
            log.error("the store refused %s %s; it is not stored: %s", kind, ident, reason)
            self.rejections += 1
            self._rejected[ident] = reason
            self._rejected.move_to_end(ident)
            if len(self._rejected) > REMEMBERED_REJECTIONS:
                self._rejected.popitem(last=False)
            if self.on_rejected is not None:
                try:
                    self.on_rejected(kind, ident, error)
                except Exception:  # the hook's failure must not stop the writer
                    log.exception("on_rejected failed for %s %s", kind, ident)

    async def _never_stored(self, job_id: str) -> bool:
        try:
            return await asyncio.to_thread(self.store.get_job, job_id) is None
        except Exception:  # unreadable or unreachable: assume the worst (no row), so no task is orphaned
            return True

    async def _write(self, batch: WriteBatch) -> None:
        """One batch, retried with backoff while the store fails; FencedError and UnwritableRecord at once."""
        delay = self.retry_delay_s
        attempt = 0
        while True:
            try:
                await asyncio.get_running_loop().run_in_executor(self._thread, self.store.write, batch)
                return
            except (FencedError, UnwritableRecord):
                raise
            except Exception as e:
                attempt += 1
                if attempt > self.retries:
                    raise WriterFailed(f"store write failed {attempt} times: {e}") from e
                log.warning("store write failed (attempt %d), retrying in %.1fs: %s", attempt, delay, e)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)


def _size(units: list[_Unit]) -> int:
    return sum(len(u.jobs) + len(u.tasks) + len(u.keys) for u in units)
