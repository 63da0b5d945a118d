"""The master process: it opens the store, then competes for the leader lease; while it leads it runs a
``Term`` (state and loops), and when it loses the lease it steps down and competes again.

Start-up is all or nothing: if the store cannot be opened, its schema is not the one this code knows, or
any record cannot be read, the master refuses to lead (``failure`` is set and ``on_fatal`` called) — it
never leads empty over existing data.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from enum import StrEnum

import httpx

from corral.control.clock import Clock, system_clock
from corral.control.config import MasterConfig
from corral.control.metrics import Metrics
from corral.control.service import Service
from corral.control.term import LoadReport, Term
from corral.control.writer import WriterFailed
from corral.domain.errors import CorralError
from corral.store.lease import FencedError, Lease
from corral.store.protocol import Store, StoreError
from corral.store.sql import open_store

log = logging.getLogger(__name__)


class Role(StrEnum):
    STARTING = "starting"
    STANDBY = "standby"
    LEADER = "leader"
    FAILED = "failed"


class NotLeader(CorralError):
    status = 503

    def __init__(self, leader_url: str) -> None:
        where = f"; the leader is {leader_url}" if leader_url else "; no leader right now"
        super().__init__("not_leader", "this master is not the leader" + where)
        self.leader_url = leader_url


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
        self.id = config.master_id or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self.role = Role.STARTING
        self.failure: BaseException | None = None
        self.term: Term | None = None
        self.last_load: LoadReport | None = None
        self.leader: Lease | None = None  # the lease as last seen (who leads, when not us)
        self._campaign: asyncio.Task[None] | None = None
        self.metrics = Metrics()  # kept across terms: counters only go up
        self._lost = asyncio.Event()
        # Renewals get a thread of their own: under load the shared pool must not make the lease run out.
        self._lease_thread = ThreadPoolExecutor(1, thread_name_prefix="corral-lease")

    store: Store

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the store (raising StoreError if it cannot be trusted), then compete for leadership."""
        if self._store is None:
            self.config.data_dir.mkdir(parents=True, exist_ok=True)
            url = self.config.resolved_store_url
            self._store = await asyncio.to_thread(
                open_store,
                url,
                sqlite_synchronous=self.config.sqlite_synchronous,
                writer_process=self.config.store_writer_process,
            )
        else:
            await asyncio.to_thread(self._store.open)
        self.store = self._store
        self.role = Role.STANDBY
        self._campaign = asyncio.get_running_loop().create_task(self._compete())
        self._campaign.add_done_callback(self._campaign_ended)

    async def wait_leading(self, within_s: float = 30.0) -> None:
        async def leading() -> None:
            while self.role is not Role.LEADER:
                if self.role is Role.FAILED:
                    raise StoreError(str(self.failure))
                await asyncio.sleep(0.02)

        await asyncio.wait_for(leading(), within_s)

    async def stop(self) -> None:
        if self._campaign is not None:
            self._campaign.cancel()
            with contextlib.suppress(BaseException):
                await self._campaign
        term = self.term
        if term is not None:
            await self._step_down(term, flush=True)
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.store.release_lease, self.id, term.epoch)
            log.info(
                "master stopped; %d records written in %d batches", term.writer.records, term.writer.batches
            )
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self.store.close)
        self._lease_thread.shutdown(wait=False)

    @property
    def ready(self) -> bool:
        return self.role is Role.LEADER and self.term is not None

    # -- leadership -----------------------------------------------------------------------------

    async def _compete(self) -> None:
        while True:
            epoch = await self._try_acquire()
            if epoch is None:
                await asyncio.sleep(self.config.lease_poll_s)
                continue
            self._lost.clear()
            # Renew from the moment the lease is ours: loading a large store must not let it run out.
            renew = asyncio.get_running_loop().create_task(self._renew(epoch))
            try:
                term = await self._take_office(epoch)
            except StoreError as e:
                renew.cancel()
                self._refuse(e, epoch)
                return
            await self._serve(term, renew)
            if self.role is Role.FAILED:
                return

    async def _try_acquire(self) -> int | None:
        ttl = self.config.lease_ttl_s
        try:
            epoch = await asyncio.to_thread(self.store.acquire_lease, self.id, self.config.url, ttl)
            if epoch is not None:
                return epoch
            lease = self.leader = await asyncio.to_thread(self.store.lease)
            if lease.overdue and not await _answers(lease.url):
                # The leader missed its renewal and does not answer: take over now rather than wait out
                # its lease. If it was alive after all, fencing refuses its next write and it steps down.
                epoch = await asyncio.to_thread(
                    self.store.acquire_lease, self.id, self.config.url, ttl, lease.epoch
                )
                if epoch is not None:
                    log.warning(
                        "took the lease from %s (epoch %d), which stopped renewing", lease.url, lease.epoch
                    )
            return epoch
        except Exception as e:  # the database is unreachable: keep trying
            log.warning("cannot reach the store to compete for leadership: %s", e)
            return None

    async def _take_office(self, epoch: int) -> Term:
        started = self.clock()
        loaded = await asyncio.to_thread(self.store.load_active)  # StoreError: refuse to lead
        groups = await asyncio.to_thread(self.store.load_groups)
        settings = await asyncio.to_thread(self.store.load_settings)
        teams = await asyncio.to_thread(self.store.load_teams)
        tokens = await asyncio.to_thread(self.store.load_tokens)
        term = Term(
            self.config,
            self.store,
            self.clock,
            epoch,
            loaded,
            groups,
            settings,
            self._term_failed,
            started,
            self.metrics,
            teams,
            tokens,
        )
        c = self.config
        if c.auth_enabled:
            try:
                await term.auth.bootstrap(c.bootstrap_token, c.bootstrap_agent_token, c.admin_token_file)
            except CorralError as e:
                raise StoreError(f"cannot set up the bootstrap credentials: {e.message}") from e
        term.start()
        self.term = term
        self.last_load = term.load_report
        self.role = Role.LEADER
        self.leader = None
        r = term.load_report
        log.info(
            "leading (epoch %d): loaded %d active jobs and %d tasks in %.2fs; waiting for %d hosts",
            epoch,
            r.jobs,
            r.tasks,
            r.seconds,
            r.awaiting_hosts,
        )
        return term

    async def _serve(self, term: Term, renew: asyncio.Task[None]) -> None:
        """Lead until the lease is lost or a write is refused; then step down to standby."""
        try:
            await self._lost.wait()
        finally:
            renew.cancel()
            with contextlib.suppress(BaseException):
                await renew
        await self._step_down(term, flush=False)
        if self.role is not Role.FAILED:
            self.role = Role.STANDBY

    async def _renew(self, epoch: int) -> None:
        interval = self.config.lease_ttl_s / 3
        last_renewed = time.monotonic()
        while True:
            await asyncio.sleep(interval)
            try:
                renewed = await asyncio.get_running_loop().run_in_executor(
                    self._lease_thread, self.store.renew_lease, self.id, epoch, self.config.lease_ttl_s
                )
            except Exception as e:
                # Without the store we cannot know we still lead: give up before the lease could run out.
                if time.monotonic() - last_renewed > self.config.lease_ttl_s - interval:
                    self._lose(f"cannot renew the lease: {e}")
                    return
                continue
            if not renewed:
                self._lose("another master holds the lease")
                return
            last_renewed = time.monotonic()

    def _lose(self, why: str) -> None:
        log.error("stepping down: %s", why)
        self._lost.set()

    def _term_failed(self, error: BaseException) -> None:
        if isinstance(error, FencedError | WriterFailed):
            self._lose(f"writes refused: {error}")
            return
        self.failure = error
        self.role = Role.FAILED
        log.critical("the master can no longer lead: %s", error, exc_info=error)
        self._lost.set()
        if self._on_fatal is not None:
            self._on_fatal(error)

    def _refuse(self, error: StoreError, epoch: int) -> None:
        """The store cannot be trusted: do not lead on it, and let nobody think we do."""
        self.failure = error
        self.role = Role.FAILED
        log.critical("refusing to lead: %s", error)
        with contextlib.suppress(Exception):
            self.store.release_lease(self.id, epoch)
        if self._on_fatal is not None:
            self._on_fatal(error)

    async def _step_down(self, term: Term, *, flush: bool) -> None:
        """End the term. Its writes carry its own epoch (``FencedStore``) for as long as they run, so one
        still in flight is refused by the database if a newer leader exists."""
        if self.term is term:
            self.term = None
        await term.stop(flush=flush)

    def _campaign_ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            error = task.exception()
            assert error is not None
            self.failure = error
            self.role = Role.FAILED
            log.critical("the master stopped competing for leadership: %s", error, exc_info=error)
            if self._on_fatal is not None:
                self._on_fatal(error)

    # -- the front door, while this master leads ---------------------------------------------------

    @property
    def service(self) -> Service:
        """The leader's front door; NotLeader (with where the leader is) when this master does not lead."""
        term = self.term
        if term is None or self.role is not Role.LEADER:
            raise NotLeader(self.leader.url if self.leader is not None and self.leader.live else "")
        return term.service

    @property
    def load_report(self) -> LoadReport | None:
        return self.last_load


async def _answers(url: str) -> bool:
    """Whether a master answers at ``url`` (a refused or silent connection says it is gone)."""
    try:
        # Only "does it answer" is asked, and nothing is sent: a self-signed leader counts as answering.
        async with httpx.AsyncClient(timeout=0.5, verify=False) as http:
            await http.get(url.rstrip("/") + "/healthz")
        return True
    except httpx.HTTPError:
        return False
