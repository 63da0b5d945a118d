"""The master: loads state, then runs the loops — reconcile, schedule, heartbeats, write-behind, housekeeping.

Start-up is all or nothing: if the store cannot be opened or any record cannot be read, ``start``
raises and the master does not lead. It never starts empty over existing data.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from corral.control.agents import AgentHub
from corral.control.bus import EventBus
from corral.control.clock import Clock, IdGenerator, system_clock
from corral.control.config import MasterConfig
from corral.control.ledger import Ledger
from corral.control.manager import JobManager
from corral.control.memory import evict_finished
from corral.control.operations import Operations, drained_from_settings, profile_from_settings
from corral.control.queries import Queries
from corral.control.scheduling import SchedulerShell
from corral.control.state import ClusterState
from corral.control.writer import StoreWriter
from corral.domain.states import HostState
from corral.jobs.task_machine import HostLost
from corral.store.protocol import Store
from corral.store.sql import open_store

log = logging.getLogger(__name__)

HOUSEKEEPING_S = 1.0
FORGET_UNREACHABLE_HOST_S = 3600.0


@dataclass(frozen=True, slots=True)
class LoadReport:
    jobs: int
    tasks: int
    disconnected: int
    seconds: float


class Master:
    def __init__(
        self,
        config: MasterConfig,
        *,
        clock: Clock = system_clock,
        store: Store | None = None,
        on_fatal: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self._store = store
        self._on_fatal = on_fatal
        self.failure: BaseException | None = None
        self.ready = False
        self.load_report: LoadReport | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # Built in start(), where the store is known to be good.
    store: Store
    state: ClusterState
    writer: StoreWriter
    ledger: Ledger
    hub: AgentHub
    jobs: JobManager
    scheduler: SchedulerShell
    queries: Queries
    ops: Operations
    bus: EventBus

    async def start(self) -> None:
        started = self.clock()
        if self._store is None:
            self.config.data_dir.mkdir(parents=True, exist_ok=True)
            url = self.config.resolved_store_url
            self._store = await asyncio.to_thread(
                open_store, url, sqlite_synchronous=self.config.sqlite_synchronous
            )
        else:
            await asyncio.to_thread(self._store.open)
        self.store = self._store
        loaded = await asyncio.to_thread(self.store.load_active)  # raises StoreError: refuse to lead
        groups = await asyncio.to_thread(self.store.load_groups)
        settings = await asyncio.to_thread(self.store.load_settings)

        self.state = ClusterState()
        self.bus = EventBus()
        self.writer = StoreWriter(self.store, on_fatal=self._fatal)
        self.ledger = Ledger(self.state, self.writer, self.bus)
        self.hub = AgentHub(self.ledger, self.store, self.writer, self.clock, self.config)
        self.jobs = JobManager(self.ledger, self.hub, self.clock, IdGenerator(self.clock), self.config.jobs)
        self.scheduler = SchedulerShell(self.ledger, self.hub, profile_from_settings(settings))
        self.queries = Queries(self.state, self.store)
        self.ops = Operations(self.ledger, self.store, self.scheduler)
        self.jobs.admit = self.ops.require_group
        self.state.groups.update((g.name, g) for g in groups)
        self.state.drained = drained_from_settings(settings)

        self.state.load(loaded.jobs, loaded.tasks)
        now = self.clock()
        disconnected = 0
        # Until their agents register again, tasks on hosts are out of touch; lost if they never return.
        for task in [t for t in self.state.tasks.values() if t.on_host]:
            if self.ledger.apply(task, HostLost(now, "master restarted; waiting for the agent")) is not None:
                disconnected += 1
        for job in self.state.jobs.values():
            self.ledger.touch(job.id)
        for task in loaded.tasks:
            if task.is_finished:
                self.ledger.finished[task.id] = None
        self.load_report = LoadReport(
            len(loaded.jobs), len(loaded.tasks), disconnected, self.clock() - started
        )
        log.info(
            "loaded %d active jobs and %d tasks (%d waiting for their agents) in %.2fs",
            len(loaded.jobs),
            len(loaded.tasks),
            disconnected,
            self.load_report.seconds,
        )
        self._spawn(self.writer.run())
        self._spawn(self.hub.run_outbox())
        self._spawn(self._loop())
        self._spawn(self._housekeeping())
        self._spawn(self._prune_loop())
        self.ready = True

    async def stop(self) -> None:
        """Stop the loops, let the writer commit what is queued, then close the store."""
        self.ready = False
        writer = self._tasks[0] if self._tasks else None  # spawned first in start()
        others = [t for t in self._tasks if t is not writer]
        for t in others:
            t.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        if writer is not None and not writer.done():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.writer.flush(), timeout=10)
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
        self._tasks.clear()
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self.store.close)
        log.info("master stopped; %d records written in %d batches", self.writer.records, self.writer.batches)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        task.add_done_callback(self._died)
        self._tasks.append(task)

    def _died(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            self._fatal(error)

    def _fatal(self, error: BaseException) -> None:
        if self.failure is not None:
            return
        self.failure = error
        self.ready = False
        log.critical("the master can no longer lead: %s", error, exc_info=error)
        if self._on_fatal is not None:
            self._on_fatal(error)

    # -- loops ----------------------------------------------------------------------------------

    def step(self) -> None:
        """One turn of the control loop: heartbeats, reconciliation, scheduling."""
        now = self.clock()
        self.hub.check_heartbeats(now)
        self.jobs.reconcile_due(now)
        if self.scheduler.due(now):
            self.scheduler.iterate(now)

    async def _loop(self) -> None:
        wake = self.ledger.wake
        while True:
            timeout = self.config.idle_tick_s
            now = self.clock()
            for due in (self.jobs.next_timer, self.scheduler.next_ready_at):
                if due is not None:
                    timeout = min(timeout, max(0.0, due - now))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout)
            wake.clear()
            if self.config.batch_window_s > 0:
                await asyncio.sleep(self.config.batch_window_s)
            self.step()

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(HOUSEKEEPING_S)
            evict_finished(self.ledger)
            now = self.clock()
            for host in list(self.state.hosts.values()):
                gone_for = now - host.last_heartbeat
                forgotten = host.state is HostState.UNREACHABLE and gone_for > FORGET_UNREACHABLE_HOST_S
                if forgotten and not self.state.tasks_on_host(host.id):
                    del self.state.hosts[host.id]

    async def _prune_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.prune_interval_s)
            await self.prune(self.config.history_retention_s)

    async def prune(self, older_than_s: float) -> int:
        before = self.clock() - older_than_s
        pruned = await asyncio.to_thread(self.store.prune_finished, before)
        if pruned:
            log.info("pruned %d finished jobs older than %.0fs", pruned, older_than_s)
        return pruned
