"""What the master knows of an agent host."""

from __future__ import annotations

from dataclasses import dataclass, field

from corral.domain.resources import Resources
from corral.domain.states import HostState


@dataclass(frozen=True, slots=True)
class HostAttributes:
    zone: str = "zone-a"
    instance_type: str = "generic"
    host_group: str = "default"
    custom: dict[str, str] = field(default_factory=dict)

    def get(self, key: str) -> str | None:
        """Look up a well-known attribute or a custom one by name."""
        if key == "zone":
            return self.zone
        if key == "instance_type":
            return self.instance_type
        if key == "host_group":
            return self.host_group
        return self.custom.get(key)


@dataclass(frozen=True, slots=True)
class Host:
    id: str
    resources: Resources
    attributes: HostAttributes = field(default_factory=HostAttributes)
    port_range: tuple[int, int] = (30000, 32767)
    state: HostState = HostState.READY
    enabled: bool = True
    registered_at: float = 0.0
    last_heartbeat: float = 0.0
    runtime: str = "sim"
    agent_version: str = ""
    network_interfaces: int = 8  # the two-level network resource: interfaces ...
    addresses_per_interface: int = 30  # ... each holding this many addresses
    healthy: bool = True  # the agent's own health checks pass
    health_detail: str = ""
    draining: bool = False  # an operator asked for no new work here
    cordoned: bool = False  # no new work either, its tasks stay: a later partition of a group drain
    quarantined_until: float | None = None  # its tasks kept failing for system reasons: no new work ...
    quarantine_detail: str = ""  # ... and why

    @property
    def quarantined(self) -> bool:
        return self.quarantined_until is not None

    @property
    def schedulable(self) -> bool:
        return (
            self.state is HostState.READY
            and self.enabled
            and self.healthy
            and not self.draining
            and not self.cordoned
            and not self.quarantined
        )

    @property
    def port_count(self) -> int:
        return self.port_range[1] - self.port_range[0] + 1
