"""Scheduling profiles: the mode of each tier and the scorer weights of each mode — data, not code."""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum

from corral.domain.capacity import Tier
from corral.domain.errors import ValidationError


class Mode(StrEnum):
    PACK = "pack"  # fill hosts tightly: fewer hosts, fast bursts (failover)
    SPREAD = "spread"  # keep replicas apart and hosts cool: normal hours


@dataclass(frozen=True, slots=True)
class Weights:
    """How much each scorer counts; the host score is the weighted mean, in [0, 1]."""

    binpack_cpu: float = 0.0
    binpack_memory: float = 0.0
    binpack_network: float = 0.0
    spread: float = 0.0
    job_spread_host: float = 0.0
    job_spread_zone: float = 0.0
    image_locality: float = 0.0
    soft_constraints: float = 0.0

    def __post_init__(self) -> None:
        values = [getattr(self, f.name) for f in fields(self)]
        if any(not math.isfinite(v) or v < 0 for v in values) or sum(values) <= 0:
            raise ValidationError("invalid_weights", "weights are finite, >= 0, and not all zero", "weights")

    def items(self) -> list[tuple[str, float]]:
        """The scorers with a weight, by name (computed once per weights: scheduling asks per class)."""
        return _weighted(self)


@functools.lru_cache(maxsize=64)
def _weighted(weights: Weights) -> list[tuple[str, float]]:
    return [(f.name, getattr(weights, f.name)) for f in fields(weights) if getattr(weights, f.name) > 0]


PACK = Weights(
    binpack_cpu=0.5, binpack_memory=0.35, binpack_network=0.15, image_locality=0.05, soft_constraints=0.5
)
SPREAD = Weights(
    spread=1.0, job_spread_host=0.6, job_spread_zone=0.6, image_locality=0.05, soft_constraints=0.5
)


def _default_modes() -> dict[Tier, Mode]:
    return {Tier.CRITICAL: Mode.SPREAD, Tier.FLEX: Mode.PACK}


def _default_weights() -> dict[Mode, Weights]:
    return {Mode.PACK: PACK, Mode.SPREAD: SPREAD}


@dataclass(frozen=True, slots=True)
class Profile:
    modes: Mapping[Tier, Mode] = field(default_factory=_default_modes)
    weights: Mapping[Mode, Weights] = field(default_factory=_default_weights)

    def for_tier(self, tier: Tier) -> Weights:
        mode = self.modes.get(tier, Mode.PACK)
        return self.weights.get(mode) or _default_weights()[mode]

    def with_mode(self, tier: Tier, mode: Mode) -> Profile:
        return Profile({**self.modes, tier: mode}, self.weights)
