"""Resource vectors: what a host offers and what a task asks for."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Resources:
    """A resource vector. Units: cpu in cores (fractional), memory/disk in MB, network in Mbps."""

    cpu: float = 0.0
    memory_mb: int = 0
    disk_mb: int = 0
    network_mbps: int = 0
    gpu: int = 0

    def __add__(self, other: Resources) -> Resources:
        return Resources(
            self.cpu + other.cpu,
            self.memory_mb + other.memory_mb,
            self.disk_mb + other.disk_mb,
            self.network_mbps + other.network_mbps,
            self.gpu + other.gpu,
        )

    def __sub__(self, other: Resources) -> Resources:
        return Resources(
            self.cpu - other.cpu,
            self.memory_mb - other.memory_mb,
            self.disk_mb - other.disk_mb,
            self.network_mbps - other.network_mbps,
            self.gpu - other.gpu,
        )

    def fits_in(self, other: Resources) -> bool:
        # A tiny epsilon keeps sums of fractional cpus (0.1 * 10) from failing on rounding.
        return (
            self.cpu <= other.cpu + 1e-9
            and self.memory_mb <= other.memory_mb
            and self.disk_mb <= other.disk_mb
            and self.network_mbps <= other.network_mbps
            and self.gpu <= other.gpu
        )

    def short_of(self, other: Resources) -> tuple[str, ...]:
        """The names of the dimensions in which ``self`` does not fit in ``other``."""
        names = []
        if self.cpu > other.cpu + 1e-9:
            names.append("cpu")
        if self.memory_mb > other.memory_mb:
            names.append("memory")
        if self.disk_mb > other.disk_mb:
            names.append("disk")
        if self.network_mbps > other.network_mbps:
            names.append("network")
        if self.gpu > other.gpu:
            names.append("gpu")
        return tuple(names)


ZERO = Resources()
