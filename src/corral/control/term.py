"""One leadership term: the leader's state and loops, from loading the store to stepping down.

Start-up work is kept small so failover is fast: state is loaded and nothing is written; tasks on hosts
whose agents have not come back yet keep their state and wait (``AgentHub.take_office``), lost only if
their host never returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corral.control.admission import Admission
from corral.control.agents import AgentHub
from corral.control.auth import Authority
from corral.control.autoscaler import Autoscaler
from corral.control.bus import EventBus
from corral.control.canary import run_canary
from corral.control.clock import Clock, IdGenerator
from corral.control.config import MasterConfig
from corral.control.drains import Drainer
from corral.control.fenced import FencedStore
from corral.control.group_drains import TICK_S as GROUP_DRAIN_TICK_S
from corral.control.group_drains import GroupDrains
from corral.control.group_drains import from_settings as group_drains_from
from corral.control.hostgroups import HostGroups, groups_from_settings, records_from_settings
from corral.control.idempotency import IdempotencyKeys
from corral.control.ledger import Ledger
from corral.control.manager import JobManager
from corral.control.memory import evict_finished
from corral.control.metrics import Metrics
from corral.control.operations import Operations, drained_from_settings, profile_from_settings
from corral.control.queries import Queries
from corral.control.scheduling import SchedulerShell
from corral.control.service import Service
from corral.control.setaside import SetAside
from corral.control.state import ClusterState
from corral.control.writer import StoreWriter
from corral.domain.auth import Team, Token
from corral.domain.codec import to_builtins
from corral.domain.hostgroup import HostGroup
from corral.domain.states import HostState
from corral.providers import Provider, ProviderContext, make_provider
from corral.store.protocol import LoadedState, Store

log = logging.getLogger(__name__)

HOUSEKEEPING_S = 1.0
FORGET_UNREACHABLE_HOST_S = 3600.0


@dataclass(frozen=True, slots=True)
class LoadReport:
    epoch: int
    jobs: int
    tasks: int
    awaiting_hosts: int
    seconds: float


class Term:
    def __init__(
        self,
        config: MasterConfig,
        store: Store,
        clock: Clock,
        epoch: int,
        loaded: LoadedState,
        groups: list[Any],
        settings: dict[str, str],
        on_fatal: Callable[[BaseException], None],
        started: float,
        metrics: Metrics,
        teams: list[Team] | None = None,
        tokens: list[Token] | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.epoch = epoch
        self._on_fatal = on_fatal
        self.state = ClusterState()
        self.bus = EventBus()
        # Every write of this term carries its epoch, for the term's whole life (fencing).
        self.fenced = FencedStore(store, epoch)
        self.writer = StoreWriter(self.fenced, on_fatal=on_fatal, on_rejected=self._rejected)
        self.ledger = Ledger(self.state, self.writer, self.bus, metrics=metrics)
        self.auth = Authority(self.fenced, clock, teams or [], tokens or [])
        self.hub = AgentHub(self.ledger, store, self.writer, clock, config, self.auth)
        self.hub.on_set_aside = self.set_aside
        self.jobs = JobManager(self.ledger, self.hub, clock, IdGenerator(clock), config.jobs)
        self.scheduler = SchedulerShell(
            self.ledger,
            self.hub.launch_after_commit,
            config.jobs,
            self.set_aside,
            profile_from_settings(settings),
        )
        self.queries = Queries(self.state, store)
        self.ops = Operations(self.ledger, self.fenced, self.scheduler)
        self.drainer = Drainer(self.ledger, self.hub, self.jobs.ids)
        self.group_drains = GroupDrains(self.state, self.ops, self.fenced, group_drains_from(settings))
        self.admission = Admission(self.state, self.auth, config, clock)
        self.state.host_groups.update(groups_from_settings(settings))
        self.host_groups = HostGroups(self.state, self.fenced, records_from_settings(settings))
        self.autoscaler = Autoscaler(
            self.state,
            self.hub,
            self.ops,
            self.scheduler,
            self.host_groups,
            self._provider,
            metrics,
            list_every_s=config.provider_list_s,
            clock=clock,
        )
        self.auth.on_revoke.append(lambda token: self.hub.drop_credential(token.id, token.host))
        self.jobs.admit = self.ops.require_group
        self.jobs.set_aside = self.set_aside
        self.keys = IdempotencyKeys(
            store.find_idempotency,
            self.writer.put_idempotency,
            clock,
            config.idempotency_retention_s,
            store.async_key_lookup(),
        )
        self.state.groups.update((g.name, g) for g in groups)
        self.state.drained = drained_from_settings(settings, clock())

        for job_id, error in self.state.load(loaded.jobs, loaded.tasks):
            self.set_aside(job_id, "load", error, clock())
        for job in self.state.jobs.values():
            self.ledger.touch(job.id)
        for task in loaded.tasks:
            if task.is_finished:
                self.ledger.finished[task.id] = None
        # Hosts that hold tasks but have not registered with this leader yet: wait for them. Tasks of jobs
        # set aside at load are neither killed nor counted as unknown when their agents report them.
        awaiting = {t.host_id for t in self.state.tasks.values() if t.on_host and t.host_id is not None}
        aside = {t.id for t in loaded.tasks if t.job_id in self.state.set_aside}
        self.hub.take_office(clock(), awaiting, aside)
        self.load_report = LoadReport(
            epoch, len(loaded.jobs), len(loaded.tasks), len(awaiting), clock() - started
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._writer_task: asyncio.Task[None] | None = None
        self.service = Service(
            config=config,
            clock=clock,
            epoch=epoch,
            state=self.state,
            ledger=self.ledger,
            writer=self.writer,
            bus=self.bus,
            jobs=self.jobs,
            hub=self.hub,
            scheduler=self.scheduler,
            ops=self.ops,
            drainer=self.drainer,
            group_drains=self.group_drains,
            host_groups=self.host_groups,
            autoscaler=self.autoscaler,
            auth=self.auth,
            admission=self.admission,
            queries=self.queries,
            keys=self.keys,
            prune=self.prune,
        )

    def set_aside(self, job_id: str, stage: str, error: BaseException, now: float) -> SetAside | None:
        """Take one job out of the loops after it raised: marked, alerted, counted; the leader goes on."""
        record = self.state.set_aside.put(job_id, stage, error, now)
        if record is not None:
            self.ledger.metrics.set_aside.labels(stage).inc()
            job = self.state.jobs.get(job_id)
            if job is not None:
                self.bus.publish("job", lambda: to_builtins(job))
        return record

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        self._writer_task = self._spawn(self.writer.run())
        self._spawn(self.hub.run_outbox())
        self._spawn(self._loop())
        self._spawn(self._housekeeping())
        self._spawn(self._prune_loop())
        self._spawn(self._group_drain_loop())
        if self.config.autoscale_interval_s > 0:
            self._spawn(self._autoscale_loop())
        if self.config.canary_interval_s > 0:
            self._spawn(
                run_canary(
                    self.jobs,
                    self.ledger,
                    self.clock,
                    self.config.canary_interval_s,
                    self.config.canary_image,
                )
            )

    async def stop(self, *, flush: bool) -> None:
        """End the term: stop the loops, drop every agent connection (they will find the next leader),
        and, if this master still leads, let the writer commit what is queued."""
        others = [t for t in self._tasks if t is not self._writer_task]
        for t in others:
            t.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        self.hub.close_all("this master is no longer the leader")
        self.autoscaler.close()
        writer = self._writer_task
        if writer is not None and not writer.done():
            if flush:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self.writer.flush(), timeout=10)
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.keys.close()
        self._tasks.clear()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        task.add_done_callback(self._died)
        self._tasks.append(task)
        return task

    def _died(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            self._on_fatal(error)

    # -- loops ----------------------------------------------------------------------------------

    def step(self) -> None:
        """One turn of the control loop: heartbeats, reconciliation, scheduling."""
        now = self.clock()
        self.hub.check_heartbeats(now)
        self.jobs.reconcile_due(now)
        if self.drainer.due(now) or (self.state.drained and self.drainer.next_at is None):
            self.drainer.step(now)
        if self.scheduler.due(now):
            self.scheduler.iterate(now)

    async def _loop(self) -> None:
        wake = self.ledger.wake
        while True:
            timeout = self.config.idle_tick_s
            now = self.clock()
            timers = (
                self.jobs.next_timer,
                self.scheduler.next_ready_at,
                self.hub.next_deadline,
                self.drainer.next_at,
            )
            for due in timers:
                if due is not None:
                    timeout = min(timeout, max(0.0, due - now))
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow the cancel that ends the
            # term when the event is set at the same moment (gh-86296), and the step-down then waits forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await wake.wait()
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

    def _rejected(self, kind: str, ident: str, error: BaseException) -> None:
        """The store refused a record for its data: its job is set aside (a submission is also refused)."""
        if kind == "job":
            job_id: str | None = ident
        elif kind == "task":
            task = self.state.tasks.get(ident)
            job_id = task.job_id if task is not None else None
        else:
            job_id = None
        if job_id is not None:
            self.set_aside(job_id, "store", error, self.clock())

    async def _group_drain_loop(self) -> None:
        """Partitioned drains advance when their current partition is empty."""
        while True:
            await asyncio.sleep(GROUP_DRAIN_TICK_S)
            if self.group_drains.records:
                await self.group_drains.tick(self.clock())

    def _provider(self, group: HostGroup) -> Provider:
        c, settings = self.config, group.provider.config
        context = ProviderContext(
            # Several masters: the provider's config names them all, and a directory they share (local).
            master_url=settings.get("master_url") or c.url,
            token=c.provider_agent_token or c.bootstrap_agent_token,
            data_dir=Path(settings.get("state_dir") or c.data_dir),
        )
        return make_provider(group.provider, context)

    async def _autoscale_loop(self) -> None:
        """The cluster autoscaler's rounds (a round that raises is logged; the next one tries again)."""
        while True:
            await asyncio.sleep(self.config.autoscale_interval_s)
            try:
                await self.autoscaler.round()
            except Exception as e:
                log.exception("an autoscaler round failed: %s", e)

    async def _prune_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.prune_interval_s)
            await self.prune(self.config.history_retention_s)
            retention = self.config.idempotency_retention_s
            keys = await asyncio.to_thread(self.fenced.prune_idempotency, self.clock() - retention)
            if keys:
                log.info("pruned %d idempotency keys older than %.0fs", keys, retention)

    async def prune(self, older_than_s: float) -> int:
        before = self.clock() - older_than_s
        pruned = await asyncio.to_thread(self.fenced.prune_finished, before)
        if pruned:
            log.info("pruned %d finished jobs older than %.0fs", pruned, older_than_s)
        return pruned
