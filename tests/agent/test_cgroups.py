"""Reading a container's usage from each cgroup layout Docker uses."""

from __future__ import annotations

from pathlib import Path

from corral.agent.runtimes.base import Usage
from corral.agent.runtimes.docker.cgroups import read_usage

ID = "6140d2e233fa"


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_v1_cgroupfs_driver(tmp_path: Path) -> None:
    write(tmp_path / "cpuacct" / "docker" / ID / "cpuacct.usage", "2500000000\n")
    write(tmp_path / "memory" / "docker" / ID / "memory.usage_in_bytes", "884736\n")
    assert read_usage(ID, tmp_path) == Usage(2.5, 884736)


def test_v1_systemd_driver(tmp_path: Path) -> None:
    scope = f"system.slice/docker-{ID}.scope"
    write(tmp_path / "cpuacct" / scope / "cpuacct.usage", "1000000000")
    write(tmp_path / "memory" / scope / "memory.usage_in_bytes", "4096")
    assert read_usage(ID, tmp_path) == Usage(1.0, 4096)


def test_v2_both_drivers(tmp_path: Path) -> None:
    write(tmp_path / "cgroup.controllers", "cpu memory pids\n")
    write(tmp_path / "docker" / ID / "cpu.stat", "usage_usec 1500000\nuser_usec 1000000\n")
    write(tmp_path / "docker" / ID / "memory.current", "65536\n")
    assert read_usage(ID, tmp_path) == Usage(1.5, 65536)
    other = "aa11"
    write(tmp_path / "system.slice" / f"docker-{other}.scope" / "memory.current", "10\n")
    assert read_usage(other, tmp_path) == Usage(None, 10)


def test_unknown_or_gone_container_reads_as_nothing(tmp_path: Path) -> None:
    assert read_usage(ID, tmp_path) is None
    write(tmp_path / "memory" / "docker" / ID / "memory.usage_in_bytes", "garbage")
    assert read_usage(ID, tmp_path) is None
    write(tmp_path / "cgroup.controllers", "")
    assert read_usage(ID, tmp_path) is None
