"""Placement constraints a job can ask for, hard (a filter) or soft (a scorer)."""

from __future__ import annotations

from enum import StrEnum


class ConstraintName(StrEnum):
    UNIQUE_HOST = "unique_host"  # at most one task of the job per host
    EXCLUSIVE_HOST = "exclusive_host"  # no other job's task shares the host
    ZONE_BALANCE = "zone_balance"  # the job's tasks spread evenly over zones
    AVAILABILITY_ZONE = "availability_zone"  # only hosts in this zone
    INSTANCE_TYPE = "instance_type"
    HOST_GROUP = "host_group"
    HOST = "host"  # only this host id


# Constraints whose value is a switch rather than an attribute value.
BOOLEAN_CONSTRAINTS = frozenset(
    {ConstraintName.UNIQUE_HOST, ConstraintName.EXCLUSIVE_HOST, ConstraintName.ZONE_BALANCE}
)

# ``attribute.<key>: <value>`` asks for hosts whose custom attribute ``key`` equals ``value``.
ATTRIBUTE_PREFIX = "attribute."


def is_known_constraint(name: str) -> bool:
    if name.startswith(ATTRIBUTE_PREFIX):
        return len(name) > len(ATTRIBUTE_PREFIX)
    return name in ConstraintName.__members__.values()


def is_enabled(value: str) -> bool:
    """A boolean constraint is on when its value is ``true`` (case-insensitive)."""
    return value.strip().lower() == "true"
