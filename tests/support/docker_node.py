"""A real Docker agent for end-to-end tests, on its own event loop in a background thread."""

from __future__ import annotations

import asyncio
import contextlib
import io
import subprocess
import tempfile
import threading
import time
from collections.abc import Coroutine, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import docker

from corral.agent.agent import Agent, AgentConfig
from corral.agent.metrics import AgentMetrics
from corral.agent.runtimes.docker import DockerConfig, DockerRuntime
from corral.domain.host import HostAttributes
from corral.domain.resources import Resources
from tests.support.cluster import AGENT_TOKEN, free_port, wait_for

T = TypeVar("T")
IMAGE = "corral/busybox:latest"


class DockerNode:
    """One agent with the docker runtime; ``restart()`` replaces the agent process state, not its containers."""

    def __init__(
        self,
        master_url: str,
        host_id: str,
        docker_config: DockerConfig | None = None,
        resources: Resources | None = None,
        metrics: AgentMetrics | None = None,
        port_range: tuple[int, int] = (31000, 31999),
    ) -> None:
        self.metrics = metrics
        # Agents on one Docker Engine share its host ports: give each its own range when several run.
        self.port_range = port_range
        self.resources = resources or Resources(4.0, 8192, 100_000, 10_000, 0)
        self.master_url = master_url
        self.host_id = host_id
        self.docker_config = docker_config or DockerConfig(host_id, log_retention_s=3600)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True, name=f"node-{host_id}")
        self.thread.start()
        self.agent: Agent | None = None
        self.run: Any = None
        # Its host credential outlives the agent, as on a real host: a restart presents it again.
        self.state_dir = tempfile.mkdtemp(prefix=f"corral-node-{host_id}-")
        self.start()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> None:
        async def begin() -> None:
            config = AgentConfig(
                agent_id=self.host_id,
                master_url=self.master_url,
                resources=self.resources,
                attributes=HostAttributes(zone="local", instance_type="docker-host"),
                port_range=self.port_range,
                backoff_max_s=0.5,
                host_status_s=0.3,
                housekeeping_s=0.5,
                token=AGENT_TOKEN,
                credential_file=f"{self.state_dir}/{self.host_id}.credential",
            )
            self.agent = Agent(config, DockerRuntime(self.docker_config), metrics=self.metrics)
            self.run = self.loop.create_task(self.agent.run())

        self.call(begin())
        wait_for(
            lambda: self.agent is not None and self.agent.connected.is_set(), 30, what="the agent to register"
        )

    def stop(self) -> None:
        """The agent stops; its containers keep running (as through an agent restart)."""

        async def end() -> None:
            if self.agent is not None:
                await self.agent.stop(kill_tasks=False)
            if self.run is not None:
                self.run.cancel()
                with contextlib.suppress(BaseException):
                    await self.run

        self.call(end())

    def restart(self, **changes: Any) -> None:
        self.stop()
        if changes:
            self.docker_config = replace(self.docker_config, **changes)
        self.start()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
        remove_containers(self.host_id)


def containers(host_id: str, running_only: bool = False) -> list[dict[str, Any]]:
    client = docker.from_env()
    try:
        found: list[dict[str, Any]] = client.api.containers(
            all=not running_only, filters={"label": [f"corral.host={host_id}"]}
        )
        return found
    finally:
        client.close()


def remove_containers(host_id: str) -> None:
    client = docker.from_env()
    try:
        for c in client.api.containers(all=True, filters={"label": [f"corral.host={host_id}"]}):
            with contextlib.suppress(Exception):
                client.api.remove_container(c["Id"], force=True)
    finally:
        client.close()


class Registry:
    """Debian's docker-registry on a loopback port, storing in a temporary directory."""

    def __init__(self, port: int | None = None) -> None:
        self.dir = tempfile.TemporaryDirectory()
        self.port = port or free_port()
        self.address = f"127.0.0.1:{self.port}"
        config = Path(self.dir.name) / "config.yml"
        config.write_text(
            "version: 0.1\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.dir.name}/data\n"
            f"http:\n  addr: {self.address}\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.config = config

    def start(self) -> Registry:
        self.proc = subprocess.Popen(
            ["docker-registry", "serve", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import httpx

        def answers() -> bool:
            try:
                return httpx.get(f"http://{self.address}/v2/", timeout=1).status_code < 500
            except httpx.HTTPError:
                return False

        wait_for(answers, 30, what="the registry to answer")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def push(self, repository: str, tag: str) -> str:
        """Push the test image as ``<registry>/<repository>:<tag>`` and drop the local copy.

        A label makes it an image of its own (its own id): an agent keeps an image that any container on
        the Docker Engine uses, and the test image's id is in use wherever a test runs a container."""
        ref = f"{self.address}/{repository}:{tag}"
        client = docker.from_env()
        try:
            dockerfile = f"FROM {IMAGE}\nLABEL corral.test.image={repository}:{tag}\n".encode()
            client.images.build(fileobj=io.BytesIO(dockerfile), tag=ref, rm=True)
            for _ in client.images.push(f"{self.address}/{repository}", tag=tag, stream=True, decode=True):
                pass
            client.images.remove(ref)
        finally:
            client.close()
        return ref

    def close(self) -> None:
        self.stop()
        self.dir.cleanup()


@contextlib.contextmanager
def node(
    master_url: str,
    host_id: str,
    metrics: AgentMetrics | None = None,
    port_range: tuple[int, int] = (31000, 31999),
    **docker_options: Any,
) -> Iterator[DockerNode]:
    n = DockerNode(
        master_url, host_id, DockerConfig(host_id, **docker_options), metrics=metrics, port_range=port_range
    )
    try:
        yield n
    finally:
        n.close()


def unique_host(prefix: str) -> str:
    return f"{prefix}-{int(time.time() * 1000) % 10_000_000}"
