"""Agents for this machine: its real resources, and the docker runtime."""

from __future__ import annotations

import os
import shutil
import socket

from corral.agent.agent import Agent, AgentConfig
from corral.agent.metrics import AgentMetrics
from corral.agent.runtimes.docker import DockerConfig, DockerRuntime
from corral.domain.host import HostAttributes
from corral.domain.resources import Resources


def memory_mb() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 4096


def local_resources(cpu: float | None = None, memory: int | None = None) -> Resources:
    """This machine as a host: its cores and memory (or what the operator says), its disk."""
    disk_mb = shutil.disk_usage("/var/lib/docker" if os.path.isdir("/var/lib/docker") else "/").total // 2**20
    return Resources(
        cpu if cpu is not None else float(os.cpu_count() or 1),
        memory if memory is not None else memory_mb(),
        int(disk_mb),
        10_000,
        0,
    )


def docker_agent(
    master_url: str,
    *,
    agent_id: str = "",
    resources: Resources | None = None,
    attributes: HostAttributes | None = None,
    port_range: tuple[int, int] = (30000, 32767),
    docker: DockerConfig | None = None,
    metrics: AgentMetrics | None = None,
    token: str = "",
    ca_file: str = "",
    credential_file: str = "",
) -> Agent:
    host_id = agent_id or socket.gethostname()
    config = AgentConfig(
        agent_id=host_id,
        master_url=master_url,
        resources=resources or local_resources(),
        attributes=attributes or HostAttributes(zone="local", instance_type="docker-host"),
        port_range=port_range,
        host_status_s=5.0,
        housekeeping_s=30.0,
        token=token,
        ca_file=ca_file,
        credential_file=credential_file,
    )
    return Agent(config, DockerRuntime(docker or DockerConfig(host_id)), metrics=metrics)
