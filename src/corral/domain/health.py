"""Task health checks: what a job asks to be probed (``container.health``) and what a task's probes found.

A probe is one of ``http {port_index, path, expect_status}``, ``tcp {port_index}`` or ``exec {command}``;
the agent runs it every ``interval_s`` once ``initial_delay_s`` has passed, and ``failures`` failures in a
row make it unhealthy (one success makes it healthy again). Liveness says whether the task should be
replaced; readiness says whether it may be counted on (rollouts, disruption budgets and drains wait for it).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class HttpProbe:
    port_index: int = 0  # which of the task's host ports (``container.resources.ports``)
    path: str = "/"
    expect_status: int = 200


@dataclass(frozen=True, slots=True)
class TcpProbe:
    port_index: int = 0


@dataclass(frozen=True, slots=True)
class ExecProbe:
    command: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Probe:
    """Exactly one of ``http``, ``tcp``, ``exec``, and how often and how patiently to run it."""

    http: HttpProbe | None = None
    tcp: TcpProbe | None = None
    exec: ExecProbe | None = None
    interval_s: float = 10.0
    timeout_s: float = 2.0
    failures: int = 3
    initial_delay_s: float = 0.0

    @property
    def kind(self) -> str:
        if self.http is not None:
            return "http"
        if self.tcp is not None:
            return "tcp"
        return "exec"

    @property
    def port_index(self) -> int | None:
        if self.http is not None:
            return self.http.port_index
        if self.tcp is not None:
            return self.tcp.port_index
        return None

    def describe(self) -> str:
        if self.http is not None:
            return (
                f"http GET {self.http.path} on port {self.http.port_index} expects {self.http.expect_status}"
            )
        if self.tcp is not None:
            return f"tcp connect to port {self.tcp.port_index}"
        return "exec " + " ".join(self.exec.command if self.exec else ())


@dataclass(frozen=True, slots=True)
class HealthChecks:
    liveness: Probe | None = None
    readiness: Probe | None = None


class HealthStatus(StrEnum):
    UNKNOWN = "unknown"
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """What an agent says of one task's probes (None: the job has no such probe)."""

    live: HealthStatus | None = None
    ready: HealthStatus | None = None
    detail: str = ""  # the last check that changed something, in words

    def status(self) -> HealthStatus:
        """unhealthy if either probe is; healthy if every probe the job has passed; else unknown."""
        found = [s for s in (self.live, self.ready) if s is not None]
        if HealthStatus.UNHEALTHY in found:
            return HealthStatus.UNHEALTHY
        if found and all(s is HealthStatus.HEALTHY for s in found):
            return HealthStatus.HEALTHY
        return HealthStatus.UNKNOWN
