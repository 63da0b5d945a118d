"""Capacity groups and tiers: who gets served first, and how much each group is promised or allowed."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import StrEnum

from corral.domain.errors import ValidationError
from corral.domain.resources import ZERO, Resources


class Tier(StrEnum):
    CRITICAL = "critical"  # served strictly before flex
    FLEX = "flex"


TIER_ORDER = (Tier.CRITICAL, Tier.FLEX)
DEFAULT_GROUP = "default"


@dataclass(frozen=True, slots=True)
class CapacityGroup:
    """A tier, a guarantee (capacity the group is promised) and an optional hard limit."""

    name: str
    tier: Tier = Tier.FLEX
    guarantee: Resources = ZERO
    limit: Resources | None = None
    description: str = ""


def default_group() -> CapacityGroup:
    return CapacityGroup(DEFAULT_GROUP, Tier.FLEX, ZERO, None, "jobs that name no group")


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.]{0,62}\Z")


def validate_group(group: CapacityGroup) -> None:
    if not _NAME.match(group.name):
        raise ValidationError("invalid_capacity_group", f"{group.name!r} is not a valid name", "name")
    for label, vector in (("guarantee", group.guarantee), ("limit", group.limit)):
        if vector is None:
            continue
        for dim in ("cpu", "memory_mb", "disk_mb", "network_mbps", "gpu"):
            value = getattr(vector, dim)
            if not math.isfinite(value) or value < 0:
                raise ValidationError(
                    "invalid_capacity_group", f"{label}.{dim} must be >= 0", f"{label}.{dim}"
                )
    if group.limit is not None:
        for dim in ("cpu", "memory_mb", "disk_mb", "network_mbps", "gpu"):
            cap = getattr(group.limit, dim)
            if cap > 0 and getattr(group.guarantee, dim) > cap:  # 0 in a limit: that dimension is unlimited
                raise ValidationError(
                    "invalid_capacity_group", f"the guarantee's {dim} exceeds the limit's", f"limit.{dim}"
                )
