"""How a launch becomes a container: Docker's semantics for entrypoint and command, the task's identity
in the environment, its resources as limits, its ports, the labels that tie it to the task, and the
isolation every task gets (no privileges, private namespaces, no capabilities beyond a plain workload's)."""

from __future__ import annotations

import logging
from typing import Any

from corral.agent.runtimes.docker.config import (
    LABEL_HOST,
    LABEL_INDEX,
    LABEL_JOB,
    LABEL_MANAGED,
    LABEL_TASK,
    DockerConfig,
)
from corral.domain import codec
from corral.domain.health import HealthChecks
from corral.domain.wire import LaunchSpec

log = logging.getLogger(__name__)

# A task's probes and host ports, so that an agent that restarts can probe the containers it re-adopts.
LABEL_HEALTH = "corral.health"
LABEL_PORTS = "corral.ports"

CPU_PERIOD_US = 100_000

# Kubernetes' "restricted" profile: every capability dropped, only binding ports below 1024 added back.
# Images that start as root and switch user (chown, setuid) need more and are not supported as such.
CAPABILITIES = ("NET_BIND_SERVICE",)
# setuid binaries and file capabilities cannot raise privileges; Docker's default seccomp profile
# applies because no ``seccomp=`` option is ever given.
SECURITY_OPTIONS = ("no-new-privileges:true",)
TMP_MAX_MB = 64  # the writable /tmp of a read-only root (a tmpfs: counted in the task's memory)


def container_name(task_id: str) -> str:
    return f"corral-{task_id}"


def identity_env(spec: LaunchSpec, host_id: str) -> dict[str, str]:
    r = spec.container.resources
    env = {
        "CORRAL_TASK_ID": spec.task_id,
        "CORRAL_JOB_ID": spec.job_id,
        "CORRAL_TASK_INDEX": "" if spec.index is None else str(spec.index),
        "CORRAL_TASK_ATTEMPT": str(spec.attempt),
        "CORRAL_HOST": host_id,
        "CORRAL_CPU": f"{r.cpu:g}",
        "CORRAL_MEMORY_MB": str(r.memory_mb),
        "CORRAL_PORTS": ",".join(str(p) for p in spec.ports),
    }
    for i, port in enumerate(spec.ports):
        env[f"CORRAL_PORT_{i}"] = str(port)
    if spec.interface is not None and spec.address is not None:
        env["CORRAL_NETWORK_INTERFACE"] = str(spec.interface)
        env["CORRAL_NETWORK_ADDRESS"] = str(spec.address)
    return env


def create_kwargs(spec: LaunchSpec, config: DockerConfig) -> dict[str, Any]:
    """Keyword arguments for ``client.containers.create``."""
    c = spec.container
    r = c.resources
    labels = {
        LABEL_MANAGED: "true",
        LABEL_TASK: spec.task_id,
        LABEL_JOB: spec.job_id,
        LABEL_HOST: config.host_id,
        LABEL_INDEX: "" if spec.index is None else str(spec.index),
        **probe_labels(spec),
    }
    memory = f"{r.memory_mb}m"
    return {
        "image": c.image.reference,
        # Docker semantics: entrypoint replaces the image's ENTRYPOINT, command its CMD; empty keeps them.
        "entrypoint": list(c.entrypoint) or None,
        "command": list(c.command) or None,
        "environment": {**c.env, **identity_env(spec, config.host_id)},
        "labels": labels,
        "name": container_name(spec.task_id),
        "detach": True,
        # A tiny init as PID 1 forwards signals and reaps zombies: SIGTERM reaches the task's own process
        # (a shell or server as PID 1 would ignore it and always wait out the grace period).
        "init": True,
        "cpu_period": CPU_PERIOD_US,
        "cpu_quota": max(1000, round(r.cpu * CPU_PERIOD_US)),
        "mem_limit": memory,
        "memswap_limit": memory,  # no swap beyond the memory limit
        "pids_limit": config.pids_limit,
        "shm_size": f"{max(r.shm_mb, 1)}m",
        # The scheduler's host ports, each mapped to the same port number in the container.
        "ports": {f"{p}/tcp": p for p in spec.ports},
        **isolation_kwargs(spec),
    }


def isolation_kwargs(spec: LaunchSpec) -> dict[str, Any]:
    """What keeps a task in its box: never the host's network, processes or IPC, no privileges."""
    options: dict[str, Any] = {
        "privileged": False,
        "network_mode": "bridge",  # never the host's: control ports are firewalled off (agent/firewall.py)
        # The PID namespace is private because PidMode stays empty ("host" is never set here); IPC is
        # asked for by name, whatever the daemon's default-ipc-mode says.
        "ipc_mode": "private",
        "cap_drop": ["ALL"],
        "cap_add": list(CAPABILITIES),
        "security_opt": list(SECURITY_OPTIONS),
    }
    if spec.container.read_only_root:
        size = min(TMP_MAX_MB, max(spec.container.resources.memory_mb, 1))
        options["read_only"] = True
        options["tmpfs"] = {"/tmp": f"rw,nosuid,nodev,size={size}m,mode=1777"}
    return options


def probe_labels(spec: LaunchSpec) -> dict[str, str]:
    """The labels that keep a task's probes (none for a task without any)."""
    checks = spec.container.health
    if checks is None or (checks.liveness is None and checks.readiness is None):
        return {}
    return {
        LABEL_HEALTH: codec.to_json(checks).decode(),
        LABEL_PORTS: ",".join(str(p) for p in spec.ports),
    }


def read_probe_labels(labels: dict[str, str]) -> tuple[HealthChecks | None, tuple[int, ...]]:
    """A re-adopted container's probes and ports, from its labels (None: it has no probes)."""
    text = labels.get(LABEL_HEALTH)
    if not text:
        return None, ()
    try:
        checks = codec.from_json(text, HealthChecks)
        ports = tuple(int(p) for p in labels.get(LABEL_PORTS, "").split(",") if p)
    except ValueError as e:  # msgspec's decode errors are ValueErrors too
        log.warning(
            "container labels %s/%s unreadable (%s): its probes are not run", LABEL_HEALTH, LABEL_PORTS, e
        )
        return None, ()
    return checks, ports
