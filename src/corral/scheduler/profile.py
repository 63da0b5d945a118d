"""Scheduling profiles: the weights and mode the scheduler works with (data, not code)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Mode(StrEnum):
    PACK = "pack"
    SPREAD = "spread"


@dataclass(frozen=True, slots=True)
class Profile:
    mode: Mode = Mode.PACK
