"""The host's health as the agent sees it: Docker answers, Docker's disk has room, the registry answers."""

from __future__ import annotations

import shutil
import time

import docker
import httpx

from corral.agent.runtimes.docker.config import DockerConfig
from corral.domain.wire import Health


def check_health(client: docker.DockerClient, config: DockerConfig) -> Health:
    checks: dict[str, str] = {}
    failing: list[str] = []
    started = time.perf_counter()
    try:
        client.ping()
        root = str(client.info().get("DockerRootDir") or "/var/lib/docker")
        checks["docker"] = f"ok ({(time.perf_counter() - started) * 1000:.0f} ms)"
    except Exception as e:
        checks["docker"] = f"not answering: {e}"
        failing.append("docker not answering")
        root = "/var/lib/docker"
    try:
        free_mb = shutil.disk_usage(root).free // (1024 * 1024)
        checks["disk"] = f"{free_mb} MB free on {root}"
        if free_mb < config.disk_min_free_mb:
            failing.append(f"disk: {free_mb} MB free, under {config.disk_min_free_mb} MB")
    except OSError as e:
        checks["disk"] = f"unknown: {e}"
    if config.registry:
        try:
            status = httpx.get(f"http://{config.registry}/v2/", timeout=2.0).status_code
            checks["registry"] = f"HTTP {status}"
            if status >= 500:
                failing.append(f"registry {config.registry}: HTTP {status}")
        except httpx.HTTPError as e:
            checks["registry"] = f"unreachable: {e}"
            failing.append(f"registry {config.registry} unreachable")
    return Health(not failing, "; ".join(failing), checks)
