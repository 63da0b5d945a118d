"""Host groups: the shape of a new host, how many the group may have, and who makes them (issue 13).

Hosts already carry ``host_group`` as an attribute; a configured group adds what the autoscaler needs:
the shape a new host of the group has (resources, zones, instance type, custom attributes), min/max size
and min/max idle hosts (Fenzo's AutoScaleRule), cooldowns, a cost per host, and a provider that starts
and terminates hosts. A group without a provider is still shown and explained, never scaled.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from corral.domain.errors import ValidationError
from corral.domain.resources import Resources

PROVIDER_KINDS = ("none", "local", "aws")
MAX_HOSTS = 100_000  # sizes above this are typing mistakes, not fleets
MAX_SECONDS = 30 * 86_400.0  # cooldowns, thresholds and deadlines
MAX_SHAPE = {"cpu": 4096, "memory_mb": 64 * 2**20, "disk_mb": 2**40, "network_mbps": 10**7, "gpu": 64}


@dataclass(frozen=True, slots=True)
class HostShape:
    """What a new host of the group looks like to the scheduler (its agent must register as such)."""

    resources: Resources = field(default_factory=lambda: Resources(8.0, 32768, 100_000, 10_000, 0))
    zones: tuple[str, ...] = ("zone-a",)  # new hosts go round robin over these
    instance_type: str = "generic"
    attributes: dict[str, str] = field(default_factory=dict)  # custom attributes
    port_range: tuple[int, int] = (30000, 32767)


@dataclass(frozen=True, slots=True)
class ProviderRef:
    """Which provider makes the group's hosts, and its settings (``local``: runtime; ``aws``: the Auto
    Scaling group's name, region and endpoint)."""

    kind: str = "none"
    config: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class HostGroup:
    name: str
    shape: HostShape = field(default_factory=HostShape)
    min_size: int = 0
    max_size: int = 0  # 0: as many as the provider gives (no upper bound of our own)
    min_idle: int = 0  # idle hosts kept ready for a burst (Fenzo's minIdleHostsToKeep)
    max_idle: int = 0  # idle hosts above this are scaled down (0: every idle host above min_idle)
    scale_up_cooldown_s: float = 60.0
    scale_down_cooldown_s: float = 300.0
    unneeded_for_s: float = 60.0  # a host is removed only after being unneeded (idle, or its tasks fit
    # elsewhere) this long: a host that just booted, or a lull between two bursts, is not scaled down
    cost_per_host: float = 1.0
    provider: ProviderRef = field(default_factory=ProviderRef)
    pending_after_s: float = 10.0  # tasks pending longer than this count for a scale-up
    removal_deadline_s: float = 600.0  # batch tasks on a removable host may finish until this
    replace_after_s: float = 600.0  # a host quarantined or unhealthy this long is replaced ...
    replace_max_percent: float = 10.0  # ... at most this share of the group at a time (at least one)
    autoscale: bool = True  # false: shown and explained, never scaled
    description: str = ""

    @property
    def scalable(self) -> bool:
        return self.autoscale and self.provider.kind != "none"

    @property
    def upper(self) -> int:
        return self.max_size if self.max_size > 0 else 1 << 20

    def replace_budget(self, size: int) -> int:
        """How many of the group's hosts may be being replaced at once."""
        return max(1, math.floor(size * self.replace_max_percent / 100))


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}\Z")


def _bad(message: str, where: str) -> ValidationError:
    return ValidationError("invalid_host_group", message, where)


def validate_host_group(g: HostGroup) -> None:
    if not _NAME.match(g.name):
        raise _bad(f"{g.name!r} is not a valid name (letters, digits, _ . -; up to 63)", "name")
    r = g.shape.resources
    for dim in ("cpu", "memory_mb", "disk_mb", "network_mbps", "gpu"):
        value = getattr(r, dim)
        if not math.isfinite(value) or not 0 <= value <= MAX_SHAPE[dim]:
            raise _bad(f"shape.resources.{dim} must be in 0..{MAX_SHAPE[dim]}", f"shape.resources.{dim}")
    if r.cpu <= 0 or r.memory_mb <= 0:
        raise _bad("a host has some cpu and memory", "shape.resources")
    if not g.shape.zones or any(not z for z in g.shape.zones):
        raise _bad("at least one zone, none empty", "shape.zones")
    low, high = g.shape.port_range
    if not 1 <= low <= high <= 65535:
        raise _bad("port_range is [low, high] within 1..65535", "shape.port_range")
    for name in ("min_size", "max_size", "min_idle", "max_idle"):
        if not 0 <= getattr(g, name) <= MAX_HOSTS:
            raise _bad(f"{name} must be in 0..{MAX_HOSTS}", name)
    if g.max_size and g.min_size > g.max_size:
        raise _bad("min_size exceeds max_size", "min_size")
    if g.max_idle and g.min_idle > g.max_idle:
        raise _bad("min_idle exceeds max_idle", "min_idle")
    for name in (
        "scale_up_cooldown_s",
        "scale_down_cooldown_s",
        "unneeded_for_s",
        "cost_per_host",
        "pending_after_s",
        "removal_deadline_s",
        "replace_after_s",
    ):
        value = getattr(g, name)
        ceiling = 1e9 if name == "cost_per_host" else MAX_SECONDS
        if not math.isfinite(value) or not 0 <= value <= ceiling:
            raise _bad(f"{name} must be in 0..{ceiling:g}", name)
    if not 0 < g.replace_max_percent <= 100:
        raise _bad("replace_max_percent is in (0, 100]", "replace_max_percent")
    if g.provider.kind not in PROVIDER_KINDS:
        known = ", ".join(PROVIDER_KINDS)
        raise _bad(f"unknown provider {g.provider.kind!r} (known: {known})", "provider.kind")
    if g.provider.kind == "aws" and not g.provider.config.get("asg"):
        raise _bad("an aws provider names its Auto Scaling group", "provider.config.asg")
