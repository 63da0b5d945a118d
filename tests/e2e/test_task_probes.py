"""A real container's health probes: the docker runtime runs them and reports each change, also after an
agent restart (the probes come back from the container's labels)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import docker
import pytest

from corral.agent.runtimes.docker import DockerConfig, DockerRuntime
from corral.domain.health import ExecProbe, HealthChecks, HealthStatus, HttpProbe, Probe, ProbeResult
from corral.domain.job import Container, ContainerResources, Image
from corral.domain.states import TaskState
from corral.domain.wire import LaunchSpec, TaskReport
from tests.support.cluster import free_port
from tests.support.docker_node import remove_containers, unique_host

pytestmark = pytest.mark.e2e

H, U = HealthStatus.HEALTHY, HealthStatus.UNHEALTHY
DEADLINE_S = 60.0

# httpd serves /tmp/www (removing /tmp/www/ready makes readiness fail); /tmp/ok is what liveness tests.
SERVER = "mkdir -p /tmp/www && echo ok > /tmp/www/ready && touch /tmp/ok && exec httpd -f -p $CORRAL_PORT_0 -h /tmp/www"


def launch_spec(task_id: str, port: int) -> LaunchSpec:
    checks = HealthChecks(
        liveness=Probe(exec=ExecProbe(("test", "-f", "/tmp/ok")), interval_s=0.3, timeout_s=5.0, failures=2),
        readiness=Probe(
            http=HttpProbe(port_index=0, path="/ready"), interval_s=0.3, timeout_s=5.0, failures=1
        ),
    )
    container = Container(
        Image("corral/busybox", tag="latest"),
        command=("sh", "-c", SERVER),
        resources=ContainerResources(cpu=0.2, memory_mb=64, ports=1, shm_mb=8),
        kill_grace_period_s=1,
        health=checks,
    )
    return LaunchSpec(task_id, "probed-job", 0, container, ports=(port,))


async def until(condition: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {DEADLINE_S}s waiting for {what}")
        await asyncio.sleep(0.05)


def latest(reports: list[TaskReport]) -> ProbeResult | None:
    found = [r.probes for r in reports if r.probes is not None]
    return found[-1] if found else None


def in_container(task_id: str, *command: str) -> None:
    client = docker.from_env()
    try:
        result = client.containers.get(f"corral-{task_id}").exec_run(list(command))
        assert result.exit_code == 0, result.output
    finally:
        client.close()


def test_probes_are_reported_as_they_change_and_survive_an_agent_restart() -> None:
    host = unique_host("e2e-probes")
    task_id = f"probed-{host}"
    reports: list[TaskReport] = []
    after_restart: list[TaskReport] = []

    def status(which: list[TaskReport]) -> tuple[HealthStatus | None, HealthStatus | None] | None:
        last = latest(which)
        return (last.live, last.ready) if last is not None else None

    async def scenario() -> None:
        runtime = DockerRuntime(DockerConfig(host, log_retention_s=3600))
        runtime.bind(reports.append)
        await runtime.launch(launch_spec(task_id, free_port()))
        await until(lambda: status(reports) == (H, H), "both probes healthy")

        await asyncio.to_thread(in_container, task_id, "rm", "/tmp/www/ready")
        await until(lambda: status(reports) == (H, U), "readiness to fail")
        assert "answered 404 (expects 200)" in (latest(reports) or ProbeResult()).detail

        await asyncio.to_thread(in_container, task_id, "rm", "/tmp/ok")
        await until(lambda: status(reports) == (U, U), "liveness to fail")
        assert (latest(reports) or ProbeResult()).detail == (
            "liveness: exec test -f /tmp/ok exited 1 (2 failures in a row)"
        )
        assert reports[-1].state is TaskState.STARTED  # the agent never kills for liveness

        # The agent restarts: the container runs on, and the new runtime probes it from its labels.
        await runtime.close()
        runtime = DockerRuntime(DockerConfig(host, log_retention_s=3600))
        runtime.bind(after_restart.append)
        [adopted] = await runtime.recover()
        assert adopted.state is TaskState.STARTED
        await asyncio.to_thread(
            in_container, task_id, "sh", "-c", "touch /tmp/ok && echo ok > /tmp/www/ready"
        )
        await until(lambda: status(after_restart) == (H, H), "both healthy again after the restart")

        await runtime.kill(task_id, 1.0)
        await until(lambda: after_restart[-1].state is TaskState.FINISHED, "the task to finish")
        await runtime.close()

    try:
        asyncio.run(scenario())
    finally:
        remove_containers(host)

    states = [r.state for r in after_restart]
    killed = states.index(TaskState.KILL_INITIATED)
    assert states[killed:] == [TaskState.KILL_INITIATED, TaskState.FINISHED]  # no probe report after it
    assert all(r.state is TaskState.STARTED for r in reports if r.probes is not None)
