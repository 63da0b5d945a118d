"""An agent's own /metrics with real containers: launch latency, running containers, their cgroup usage,
and failed Docker calls."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from corral.agent.metrics import AgentMetrics
from tests.support.cluster import MasterProcess, wait_for
from tests.support.docker_node import node, unique_host
from tests.support.specs import batch_job

pytestmark = pytest.mark.e2e


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def sample(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def test_agent_metrics_follow_real_containers(master: MasterProcess) -> None:
    metrics = AgentMetrics()
    port = metrics.serve("127.0.0.1", 0)
    host = unique_host("e2e-metrics")
    with node(master.url, host, metrics=metrics):
        idle = scrape(port)
        assert sample(idle, "corral_agent_connected", host=host) == 1.0
        assert sample(idle, "corral_agent_running_tasks", host=host) == 0.0
        # burns some cpu, holds ~16 MB, then idles until killed
        spec = batch_job(["sh", "-c", "head -c 16000000 /dev/zero > /dev/shm/x; yes >/dev/null & sleep 600"])
        spec["container"]["image"] = {"name": "corral/busybox", "tag": "latest"}
        spec["container"]["resources"].update(cpu=0.5, memory_mb=128, shm_mb=32)
        job = master.submit(spec)
        task = wait_for(lambda: (t := master.tasks(job["id"], ["Started"])) and t[0], 60, what="Started")

        def busy() -> dict | None:
            s = scrape(port)
            cpu = sample(s, "corral_agent_task_cpu_seconds_total", host=host, task=task["id"])
            memory = sample(s, "corral_agent_task_memory_bytes", host=host, task=task["id"])
            return s if cpu and cpu > 0.2 and memory and memory > 16e6 else None

        running = wait_for(busy, 30, what="the task's cgroup usage to show")
        assert sample(running, "corral_agent_running_tasks", host=host) == 1.0
        assert sample(running, "corral_agent_launch_seconds_count", host=host) == 1.0
        launch_s = sample(running, "corral_agent_launch_seconds_sum", host=host)
        assert launch_s is not None and 0 < launch_s < 30

        # an image from a registry that does not answer: a failed Docker call, counted by call
        bad = batch_job(["true"])
        bad["container"]["image"] = {"name": "127.0.0.1:9/nowhere", "tag": "latest"}
        failed = master.submit(bad)
        wait_for(
            lambda: sample(
                scrape(port), "corral_agent_runtime_errors_total", host=host, runtime="docker", call="pull"
            ),
            60,
            what="the failed pull to be counted",
        )
        master.http.post(f"/api/v1/jobs/{failed['id']}/kill")

        master.http.post(f"/api/v1/jobs/{job['id']}/kill")
        master.wait_job_finished(job["id"], timeout=60)
        wait_for(
            lambda: sample(scrape(port), "corral_agent_running_tasks", host=host) == 0.0, 30, what="no tasks"
        )
        gone = scrape(port)
        assert sample(gone, "corral_agent_task_memory_bytes", host=host, task=task["id"]) is None
