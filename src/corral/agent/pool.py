"""Many agents in one process: a simulated fleet for tests, demos and benchmarks."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from corral.agent.agent import Agent, AgentConfig
from corral.agent.metrics import AgentMetrics
from corral.agent.runtimes.base import Runtime
from corral.agent.runtimes.sim import SimRuntime
from corral.domain.host import HostAttributes
from corral.domain.resources import Resources


@dataclass(frozen=True, slots=True)
class FleetSpec:
    count: int = 3
    id_prefix: str = "sim"
    cpu: float = 8.0
    memory_mb: int = 32768
    disk_mb: int = 500_000
    network_mbps: int = 10_000
    gpu: int = 0
    zones: tuple[str, ...] = ("zone-a", "zone-b", "zone-c")
    instance_type: str = "sim.2xlarge"
    host_group: str = "default"
    attributes: dict[str, str] = field(default_factory=dict)  # custom attributes of every agent
    port_range: tuple[int, int] = (30000, 32767)
    ids: tuple[str, ...] = ()  # exact agent ids, one per agent (default: <id_prefix>-0000, -0001, ...)
    heartbeat_backoff_max_s: float = 5.0
    ping_interval_s: float = 10.0
    network_interfaces: int = 8
    addresses_per_interface: int = 30
    token: str = ""  # the agents' join credential
    ca_file: str = ""
    state_dir: str = ""  # where each agent keeps the credential minted for its host ("": in memory)

    def config(self, index: int, master_url: str) -> AgentConfig:
        agent_id = self.ids[index] if index < len(self.ids) else f"{self.id_prefix}-{index:04d}"
        return AgentConfig(
            agent_id=agent_id,
            master_url=master_url,
            resources=Resources(self.cpu, self.memory_mb, self.disk_mb, self.network_mbps, self.gpu),
            attributes=HostAttributes(
                zone=self.zones[index % len(self.zones)],
                instance_type=self.instance_type,
                host_group=self.host_group,
                custom=dict(self.attributes),
            ),
            port_range=self.port_range,
            backoff_max_s=self.heartbeat_backoff_max_s,
            ping_interval_s=self.ping_interval_s,
            network_interfaces=self.network_interfaces,
            addresses_per_interface=self.addresses_per_interface,
            token=self.token,
            ca_file=self.ca_file,
            credential_file=credential_path(self.state_dir, agent_id),
        )


def credential_path(state_dir: str, agent_id: str) -> str:
    """Where an agent keeps its host's credential under ``state_dir`` ("" when there is no state dir)."""
    return f"{state_dir.rstrip('/')}/{agent_id}.credential" if state_dir else ""


class AgentPool:
    def __init__(
        self,
        master_url: str,
        spec: FleetSpec,
        runtime_factory: Callable[[], Runtime] = SimRuntime,
        seed: int | None = None,
        metrics: AgentMetrics | None = None,
    ) -> None:
        rng = random.Random(seed)
        self.agents = [
            Agent(spec.config(i, master_url), runtime_factory(), random.Random(rng.random()), metrics)
            for i in range(spec.count)
        ]
        self._runs: list[asyncio.Task[None]] = []

    @classmethod
    def of(cls, agents: list[Agent]) -> AgentPool:
        pool = cls.__new__(cls)
        pool.agents = agents
        pool._runs = []
        return pool

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._runs = [loop.create_task(a.run()) for a in self.agents]

    async def wait_connected(self, within_s: float = 30.0) -> None:
        await asyncio.wait_for(asyncio.gather(*(a.connected.wait() for a in self.agents)), within_s)

    async def run(self) -> None:
        self.start()
        await self.wait()

    async def wait(self) -> None:
        """Until every agent stops (they run until stopped or cancelled)."""
        await asyncio.gather(*self._runs)

    async def stop(self, *, kill_tasks: bool = True) -> None:
        await asyncio.gather(*(a.stop(kill_tasks=kill_tasks) for a in self.agents))
        for run in self._runs:
            run.cancel()
        await asyncio.gather(*self._runs, return_exceptions=True)

    def agent(self, agent_id: str) -> Agent:
        return next(a for a in self.agents if a.config.agent_id == agent_id)

    def runtime_of(self, task_id: str) -> SimRuntime | None:
        """The sim runtime running ``task_id``, if any agent here runs it."""
        for a in self.agents:
            runtime = a.runtime
            if isinstance(runtime, SimRuntime) and task_id in runtime.running:
                return runtime
        return None
