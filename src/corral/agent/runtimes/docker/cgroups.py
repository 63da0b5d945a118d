"""What a container uses now, read from its cgroup: cpu time and memory.

Docker places a container's cgroup in one of four places, by cgroup version and cgroup driver:

* v1, cgroupfs driver:  ``<root>/cpuacct/docker/<id>/cpuacct.usage`` (ns), ``<root>/memory/docker/<id>/
  memory.usage_in_bytes``
* v1, systemd driver:   the same controllers under ``system.slice/docker-<id>.scope``
* v2, cgroupfs driver:  ``<root>/docker/<id>/cpu.stat`` (``usage_usec``), ``memory.current``
* v2, systemd driver:   ``<root>/system.slice/docker-<id>.scope/...``

Reading is a few small file reads per container, cheap enough to do at every metrics scrape.
"""

from __future__ import annotations

from pathlib import Path

from corral.agent.runtimes.base import Usage

ROOT = Path("/sys/fs/cgroup")


def _groups(container_id: str) -> tuple[str, str]:
    return f"docker/{container_id}", f"system.slice/docker-{container_id}.scope"


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:  # gone (the container just ended) or not this layout
        return None


def _number(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text.strip())
    except ValueError:
        return None


def _v2_cpu(text: str | None) -> float | None:
    for line in (text or "").splitlines():
        key, _, value = line.partition(" ")
        if key == "usage_usec" and value.strip().isdigit():
            return int(value) / 1e6
    return None


def read_usage(container_id: str, root: Path = ROOT) -> Usage | None:
    """The container's usage, or None when no layout knows it (not running, or cgroups not mounted)."""
    if (root / "cgroup.controllers").exists():  # v2: one unified hierarchy
        for group in _groups(container_id):
            base = root / group
            if base.is_dir():
                return Usage(_v2_cpu(_read(base / "cpu.stat")), _number(_read(base / "memory.current")))
        return None
    for group in _groups(container_id):
        cpu_ns = _number(_read(root / "cpuacct" / group / "cpuacct.usage"))
        memory = _number(_read(root / "memory" / group / "memory.usage_in_bytes"))
        if cpu_ns is not None or memory is not None:
            return Usage(cpu_ns / 1e9 if cpu_ns is not None else None, memory)
    return None
