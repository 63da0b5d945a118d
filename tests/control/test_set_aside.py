"""One job that makes the leader raise is set aside, and the leader's loops go on with the rest:
reconciliation, the scheduler (which halves the jobs until it finds the one at fault), and holding a
task whose record its host cannot take."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace

import numpy as np

from corral.control.bus import EventBus
from corral.control.clock import IdGenerator
from corral.control.fenced import FencedStore
from corral.control.ledger import Ledger
from corral.control.manager import JobManager
from corral.control.scheduling import SchedulerShell
from corral.control.setaside import SetAside
from corral.control.state import ClusterState
from corral.control.writer import StoreWriter
from corral.domain.host import Host
from corral.domain.resources import Resources
from corral.domain.states import TaskState
from corral.jobs.config import JobManagerConfig
from corral.scheduler import Plan, Profile, Snapshot, schedule
from corral.store import SqlStore
from tests.control.aio import running
from tests.domain.factories import batch_job, resources, task

CONFIG = JobManagerConfig()


class Shell:
    """A ledger, a job manager and a scheduler shell over a real store, with set-aside recorded."""

    def __init__(self, store: SqlStore) -> None:
        self.ledger = Ledger(ClusterState(), StoreWriter(FencedStore(store, 0)), EventBus())
        self.state = self.ledger.state
        self.launched: list[str] = []
        self.jobs = JobManager(self.ledger, _NoHub(), lambda: 100.0, IdGenerator(lambda: 100.0), CONFIG)
        self.jobs.set_aside = self.set_aside
        self.scheduler = SchedulerShell(self.ledger, self.launched.extend, CONFIG, self.set_aside)

    def set_aside(self, job_id: str, stage: str, error: BaseException, now: float) -> SetAside | None:
        return self.state.set_aside.put(job_id, stage, error, now)

    def host(self, host_id: str = "h1", cpu: float = 8.0) -> None:
        self.ledger.set_host(Host(host_id, Resources(cpu, 32768, 100_000, 10_000, 0)))


class _NoHub:
    def send_kills(self, _tasks: object) -> None:
        pass


def _run(store: SqlStore, scenario: Callable[[Shell], Awaitable[None]]) -> None:
    async def main() -> None:
        shell = Shell(store)
        async with running(shell.ledger.writer):
            await scenario(shell)

    asyncio.run(main())


def test_a_job_whose_reconciliation_raises_is_set_aside_and_the_others_are_reconciled(
    store: SqlStore,
) -> None:
    async def scenario(shell: Shell) -> None:
        good = batch_job(size=2, job_id="good")
        # Neither batch nor service: the reconciler cannot tell what the job wants, and raises.
        bad = replace(batch_job(job_id="bad"), descriptor=replace(batch_job().descriptor, batch=None))
        shell.ledger.set_job(bad)
        shell.ledger.set_job(good)
        shell.jobs.reconcile_due(100.0)  # does not raise
        aside = shell.state.set_aside.get("bad")
        assert aside is not None and aside.stage == "reconcile" and aside.error.startswith("ValueError")
        assert len(shell.state.tasks_of("good")) == 2
        assert shell.state.tasks_of("bad") == []
        shell.ledger.touch("bad")
        assert shell.jobs.reconcile_due(101.0) == 0  # set aside: not reconciled again until retried

    _run(store, scenario)


def test_the_scheduler_finds_the_job_that_makes_an_iteration_raise(store: SqlStore) -> None:
    async def scenario(shell: Shell) -> None:
        shell.host()
        for i in range(7):
            shell.ledger.set_job(batch_job(size=1, job_id=f"job{i}", resources=resources(cpu=0.5)))
        shell.jobs.reconcile_due(100.0)
        calls: list[int] = []

        def fragile(snapshot: Snapshot, profile: Profile, rng: np.random.Generator) -> Plan:
            calls.append(len(snapshot.jobs))
            if "job4" in snapshot.jobs:
                raise ZeroDivisionError("a class the placer cannot score")
            return schedule(snapshot, profile, rng)

        shell.scheduler.schedule_fn = fragile
        placed = shell.scheduler.iterate(100.0)
        assert placed == 6
        assert {t.job_id for t in shell.state.tasks.values() if t.state is TaskState.LAUNCHED} == {
            f"job{i}" for i in range(7) if i != 4
        }
        aside = shell.state.set_aside.get("job4")
        assert aside is not None and aside.stage == "schedule" and "ZeroDivisionError" in aside.error
        assert len(calls) < 2 * 7  # halving, not one job at a time after one another
        assert len(shell.launched) == 6
        # The next iteration leaves it out from the start.
        calls.clear()
        shell.ledger.schedule_needed = True
        shell.scheduler.iterate(101.0)
        assert calls == []  # no pending task but the set-aside job's: nothing to schedule

    _run(store, scenario)


def test_a_task_its_host_cannot_hold_is_a_fault_of_its_job_not_of_the_host() -> None:
    state = ClusterState()
    good, bad = batch_job(job_id="good"), batch_job(job_id="bad")
    state.put_job(good)
    state.put_job(bad)
    placed = {"host_id": "h1", "state": TaskState.STARTED, "interface": 0, "address": 0}
    state.put_task(task("t-good", job_id="good", **placed))
    state.put_task(task("t-bad", job_id="bad", **{**placed, "interface": 99}))  # no such interface
    state.put_host(Host("h1", Resources(8.0, 32768, 100_000, 10_000, 0)))  # the host registers
    faults = state.take_faults()
    assert [job_id for job_id, _ in faults] == ["bad"]
    assert isinstance(faults[0][1], IndexError)
    h = state.cluster.index["h1"]
    assert state.cluster.job_hosts["good"] == {h: 1}  # the good task is held; the host registered
    assert state.hosts["h1"].id == "h1"
