"""The drain shell applies the pure plan, and moves nothing while the leader cannot trust its picture."""

from __future__ import annotations

import asyncio

from corral.control.bus import EventBus
from corral.control.clock import IdGenerator
from corral.control.drains import Drainer
from corral.control.fenced import FencedStore
from corral.control.ledger import Ledger
from corral.control.state import ClusterState
from corral.control.writer import StoreWriter
from corral.disruption.relocation import DrainingHost
from corral.domain.host import Host
from corral.domain.resources import Resources
from corral.domain.states import TaskState
from corral.store import SqlStore
from tests.control.aio import running
from tests.domain.factories import service_job, task


class Hub:
    def __init__(self) -> None:
        self.sure = False
        self.killed: list[str] = []

    def picture_complete(self, _now: float) -> bool:
        return self.sure

    def send_kills(self, tasks: list[object]) -> None:
        self.killed.extend(getattr(t, "id", "") for t in tasks)


def test_a_leader_unsure_of_its_picture_moves_nothing_then_moves_make_before_break(store: SqlStore) -> None:
    async def main() -> None:
        ledger = Ledger(ClusterState(), StoreWriter(FencedStore(store, 0)), EventBus())
        async with running(ledger.writer):
            hub = Hub()
            drainer = Drainer(ledger, hub, IdGenerator(lambda: 100.0))  # type: ignore[arg-type]
            for host in ("h1", "h2"):
                ledger.set_host(Host(host, Resources(8.0, 32768, 100_000, 10_000, 0)))
            ledger.set_job(service_job(desired=2))
            for name in ("t1", "t2"):
                ledger.set_task(task(name, TaskState.STARTED, index=None, host_id="h1", started_at=1.0))
            ledger.state.drained["h1"] = DrainingHost("h1", 50.0, 600.0)

            assert drainer.step(100.0) is None and drainer.unsure
            assert len(ledger.state.tasks) == 2 and not ledger.state.relocating()

            hub.sure = True
            plan = drainer.step(101.0)
            assert plan is not None and not drainer.unsure
            [moving] = ledger.state.relocating()  # no budget given: one at a time while all are ready
            replacement = ledger.state.tasks[moving.relocating_to or ""]
            assert replacement.state is TaskState.ACCEPTED and replacement.relocations == 1
            assert hub.killed == []  # nothing stops before its replacement is ready
            assert drainer.waits and {w.kind for w in drainer.waits.values()} == {"budget"}

    asyncio.run(main())
