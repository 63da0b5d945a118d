"""Voluntary disruptions: disruption budgets, the drain planner and partitioned (host-group) drains.

It decides how many of a job's tasks a voluntary disruption may take now and why the rest wait
(``budget.allowance``, ``windows``), which tasks on draining hosts to move, stop or leave for now
(``relocation.plan``: make before break for services, a deadline for batch), and which hosts of a group
drain next (``partitions``). Involuntary disruptions (a host lost, a task crashing) never ask it.

Pure: no I/O, no clock, no randomness; ``now`` comes in as unix seconds. Its side effects live in the
shell that applies a plan: it creates the replacements, asks the kills, records each disruption's start in
``Job.disruptions`` and marks hosts as draining.
"""

from corral.disruption.budget import (
    DEFAULT_SERVICE,
    UNLIMITED,
    Allowance,
    BudgetState,
    allowance,
    effective,
    may_relocate,
    recent_to_keep,
)
from corral.disruption.partitions import (
    GroupDrain,
    advance,
    cancel,
    hosts_to_drain,
    partitions,
    pause,
    resume,
    start_drain,
)
from corral.disruption.relocation import (
    WAIT_KINDS,
    DrainingHost,
    RelocationPlan,
    StartRelocation,
    StopTask,
    Wait,
    plan,
)
from corral.disruption.windows import in_windows, next_open, next_opening

__all__ = [
    "DEFAULT_SERVICE",
    "UNLIMITED",
    "WAIT_KINDS",
    "Allowance",
    "BudgetState",
    "DrainingHost",
    "GroupDrain",
    "RelocationPlan",
    "StartRelocation",
    "StopTask",
    "Wait",
    "advance",
    "allowance",
    "cancel",
    "effective",
    "hosts_to_drain",
    "in_windows",
    "may_relocate",
    "next_open",
    "next_opening",
    "partitions",
    "pause",
    "plan",
    "recent_to_keep",
    "resume",
    "start_drain",
]
