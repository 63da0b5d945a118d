"""Job specs as a client would send them."""

from __future__ import annotations

import copy
from typing import Any


def container(command: list[str], cpu: float = 0.5, memory_mb: int = 128, **extra: Any) -> dict[str, Any]:
    return {
        "image": {"name": "corral/busybox", "tag": "latest"},
        "command": command,
        "resources": {"cpu": cpu, "memory_mb": memory_mb, **extra},
    }


def batch_job(
    command: list[str],
    size: int = 1,
    retry: dict[str, Any] | None = None,
    application: str = "batchapp",
    **batch: Any,
) -> dict[str, Any]:
    return {
        "owner": {"team_email": "team@example.com"},
        "application": application,
        "container": container(command),
        "batch": {"size": size, "retry_policy": retry or {"kind": "immediate", "retries": 0}, **batch},
    }


def service_job(
    desired: int, command: list[str] | None = None, application: str = "webapp", **service: Any
) -> dict[str, Any]:
    return {
        "owner": {"team_email": "team@example.com"},
        "application": application,
        "container": container(command or ["sh", "-c", "while true; do sleep 60; done"]),
        "service": {
            "capacity": {"min": 0, "desired": desired, "max": max(desired, 50)},
            "retry_policy": {"kind": "exponential", "initial_delay_ms": 100, "max_delay_ms": 500},
            **service,
        },
    }


def with_changes(spec: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``spec`` with the dotted ``path`` set to ``value`` (``...`` as value deletes it)."""
    out = copy.deepcopy(spec)
    node = out
    parts = path.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    if value is ...:
        node.pop(parts[-1], None)
    else:
        node[parts[-1]] = value
    return out
