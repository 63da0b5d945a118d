"""The agents of one process, measured: launch latency, runtime errors, running tasks, and what each task
uses (cpu, memory, from its cgroup). Served on the agent's own port (``corral agent --metrics-port``);
every sample carries the agent's host id, as one process may run several agents.

Launch latency is recorded as it happens; the rest is read from the runtimes at scrape time, so a scrape
always sees the present and nothing is kept for tasks that are gone.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from corral.agent.agent import Agent

LAUNCH_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30, 60, 120, 300)


class AgentMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.launch = Histogram(
            "corral_agent_launch_seconds",
            "From the master's launch order reaching the agent to the task's Started (image pull included)",
            ["host"],
            buckets=LAUNCH_BUCKETS,
            registry=self.registry,
        )
        self._agents: list[Agent] = []
        self._lock = threading.Lock()
        self.registry.register(_Present(self))

    def watch(self, agent: Agent) -> None:
        with self._lock:
            self._agents.append(agent)

    def agents(self) -> list[Agent]:
        with self._lock:
            return list(self._agents)

    def serve(self, host: str, port: int, certfile: str = "", keyfile: str = "") -> int:
        """Serve ``/metrics`` from a background thread (HTTPS with ``certfile`` and ``keyfile``); the port
        it listens on (``port`` 0: any free)."""
        server, _thread = start_http_server(
            port, addr=host, registry=self.registry, certfile=certfile or None, keyfile=keyfile or None
        )
        bound: int = server.server_address[1]
        return bound


class _Present(Collector):
    """Gauges and counters read from the agents and their runtimes when scraped."""

    def __init__(self, metrics: AgentMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        connected = GaugeMetricFamily(
            "corral_agent_connected", "1 while the agent is registered with a master", labels=["host"]
        )
        running = GaugeMetricFamily(
            "corral_agent_running_tasks", "Tasks the runtime runs now (containers)", labels=["host"]
        )
        cpu = CounterMetricFamily(
            "corral_agent_task_cpu_seconds", "Cpu time a running task used", labels=["host", "task"]
        )
        memory = GaugeMetricFamily(
            "corral_agent_task_memory_bytes", "Memory a running task uses now", labels=["host", "task"]
        )
        errors = CounterMetricFamily(
            "corral_agent_runtime_errors",
            "Calls to the runtime's engine that failed (the Docker API), by call",
            labels=["host", "runtime", "call"],
        )
        for agent in self.metrics.agents():
            host = agent.config.agent_id
            runtime = agent.runtime
            connected.add_metric([host], 1.0 if agent.connected.is_set() else 0.0)
            usage = runtime.usage()
            running.add_metric([host], len(usage))
            for task_id, used in usage.items():
                if used.cpu_seconds is not None:
                    cpu.add_metric([host, task_id], used.cpu_seconds)
                if used.memory_bytes is not None:
                    memory.add_metric([host, task_id], used.memory_bytes)
            for call, count in runtime.errors().items():
                errors.add_metric([host, runtime.name, call], count)
        yield from (connected, running, cpu, memory, errors)
