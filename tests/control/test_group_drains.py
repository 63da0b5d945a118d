"""The group drain shell: one partition at a time, cordons the rest, never re-drains what an operator freed."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from corral.control.group_drains import GroupDrains
from corral.control.state import ClusterState
from corral.disruption.relocation import DrainingHost
from corral.domain.host import Host, HostAttributes
from corral.domain.resources import Resources
from corral.domain.states import TaskState
from tests.domain.factories import batch_job, task


class Ops:
    """Operations as far as the group drain uses them, recording each call."""

    def __init__(self, state: ClusterState) -> None:
        self.state = state
        self.calls: list[tuple[str, bool]] = []

    async def set_draining(self, host: str, draining: bool, now: float, deadline_s: float = 600.0) -> None:
        self.calls.append((host, draining))
        if draining:
            self.state.drained[host] = DrainingHost(host, now, deadline_s)
        else:
            self.state.drained.pop(host, None)

    def set_cordoned(self, hosts: set[str]) -> None:
        self.state.cordoned = set(hosts)


class Store:
    def put_setting(self, key: str, value: str) -> None:
        pass


def test_partitions_advance_when_empty_cordon_the_rest_and_leave_undrained_hosts_alone() -> None:
    async def main() -> None:
        state = ClusterState()
        for i in range(4):
            attrs = HostAttributes(host_group="old")
            state.put_host(Host(f"h{i}", Resources(8.0, 32768, 100_000, 10_000, 0), attrs))
        state.put_job(batch_job(job_id="j1"))
        state.put_task(task("t1", TaskState.STARTED, 0, host_id="h0"))  # h0 holds a task
        ops = Ops(state)
        drains = GroupDrains(state, ops, Store(), {})  # type: ignore[arg-type]

        await drains.start("old", 50.0, 60.0, 100.0)
        assert set(state.drained) == {"h0", "h1"} and state.cordoned == {"h2", "h3"}
        await drains.tick(101.0)
        assert drains.get("old").drain.current == 0  # h0 still holds its task

        state.put_task(replace(state.tasks["t1"], state=TaskState.FINISHED))
        await drains.tick(102.0)
        assert drains.get("old").drain.current == 1 and set(state.drained) == {"h0", "h1", "h2", "h3"}
        assert state.cordoned == set()
        await drains.tick(103.0)
        assert drains.get("old").drain.state == "done"

        # The operator undrains an upgraded host: the finished drain leaves it so.
        await ops.set_draining("h0", False, 104.0)
        await drains.tick(105.0)
        assert "h0" not in state.drained

    asyncio.run(main())


def test_a_cancelled_drain_frees_its_current_partition_and_its_cordons() -> None:
    async def main() -> None:
        state = ClusterState()
        for i in range(4):
            state.put_host(
                Host(f"h{i}", Resources(8.0, 32768, 100_000, 10_000, 0), HostAttributes(host_group="g"))
            )
        ops = Ops(state)
        drains = GroupDrains(state, ops, Store(), {})  # type: ignore[arg-type]
        await drains.start("g", 25.0, 60.0, 100.0)
        await drains.tick(101.0)  # h0 empty: on to h1
        assert set(state.drained) == {"h0", "h1"}
        await drains.cancel("g", 102.0)
        assert set(state.drained) == {"h0"} and state.cordoned == set()
        await drains.resume("g", 103.0)
        assert set(state.drained) == {"h0", "h1"} and state.cordoned == {"h2", "h3"}

    asyncio.run(main())
