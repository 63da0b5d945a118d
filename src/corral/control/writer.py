"""Write-behind with group commit: the leader changes memory first and the store catches up in batches.

Every ``put`` is coalesced by id (the newest version wins) into the next batch; one batch is written at a
time, in one transaction, on a worker thread, so a burst of changes costs one commit. ``flush()`` waits
until everything put before it is durable: the API acknowledges a submission only after that.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from corral.domain.job import Job
from corral.domain.task import Task
from corral.store.protocol import Store, WriteBatch

log = logging.getLogger(__name__)


class WriterFailed(Exception):
    """The store would not take writes after every retry; the leader must step down."""


class StoreWriter:
    def __init__(
        self,
        store: Store,
        *,
        retries: int = 5,
        retry_delay_s: float = 0.2,
        on_fatal: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.store = store
        self.retries = retries
        self.retry_delay_s = retry_delay_s
        self.on_fatal = on_fatal
        self._jobs: dict[str, Job] = {}
        self._tasks: dict[str, Task] = {}
        self._in_flight: set[str] = set()
        self._seq = 0  # count of puts so far
        self._committed = 0  # every put numbered <= this is durable
        self._wake = asyncio.Event()
        self._done = asyncio.Condition()
        self._failed: BaseException | None = None
        self.batches = 0
        self.records = 0

    def put_job(self, job: Job) -> None:
        self._jobs[job.id] = job
        self._mark()

    def put_task(self, task: Task) -> None:
        self._tasks[task.id] = task
        self._mark()

    def _mark(self) -> None:
        self._seq += 1
        self._wake.set()

    def is_clean(self, ident: str) -> bool:
        """True when the latest version of record ``ident`` is in the store."""
        return ident not in self._jobs and ident not in self._tasks and ident not in self._in_flight

    @property
    def backlog(self) -> int:
        return len(self._jobs) + len(self._tasks)

    async def flush(self) -> None:
        """Return once every earlier put is committed; raise WriterFailed if it never will be."""
        target = self._seq
        async with self._done:
            await self._done.wait_for(lambda: self._committed >= target or self._failed is not None)
        if self._failed is not None and self._committed < target:
            raise WriterFailed(str(self._failed)) from self._failed

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not self._jobs and not self._tasks:
                continue
            target = self._seq
            batch = WriteBatch(list(self._jobs.values()), list(self._tasks.values()))
            self._in_flight = set(self._jobs) | set(self._tasks)
            self._jobs, self._tasks = {}, {}
            try:
                await self._write(batch)
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
            self.records += len(batch)
            async with self._done:
                self._committed = target
                self._done.notify_all()

    async def _write(self, batch: WriteBatch) -> None:
        delay = self.retry_delay_s
        attempt = 0
        while True:
            try:
                await asyncio.to_thread(self.store.write, batch)
                return
            except Exception as e:
                attempt += 1
                if attempt > self.retries:
                    raise WriterFailed(f"store write failed {attempt} times: {e}") from e
                log.warning("store write failed (attempt %d), retrying in %.1fs: %s", attempt, delay, e)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
