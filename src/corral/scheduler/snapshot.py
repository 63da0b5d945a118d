"""The scheduler's input: the cluster, the tasks waiting, their jobs as equivalence classes, and the
capacity groups with what they use now."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from corral.domain.capacity import CapacityGroup
from corral.domain.constraints import ConstraintName, is_enabled
from corral.domain.resources import Resources
from corral.scheduler.cluster import Cluster, Placement


@dataclass(frozen=True, slots=True)
class JobClass:
    """What every task of one job asks for: placed as a class, its feasibility computed once."""

    job_id: str
    group: str
    request: Resources
    created_at: float = 0.0
    ports: int = 0
    sg_code: int | None = None  # the cluster's code for the job's security-group set
    image: str = ""
    size: int = 1  # batch size or service desired: zone_balance spreads this many
    hard: Mapping[str, str] = field(default_factory=dict)
    soft: Mapping[str, str] = field(default_factory=dict)
    exclusive: bool = field(init=False, default=False)  # derived from ``hard`` once (every footprint asks)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "exclusive", is_enabled(self.hard.get(ConstraintName.EXCLUSIVE_HOST, "false"))
        )

    def footprint(
        self, ports: tuple[int, ...] = (), interface: int | None = None, address: int | None = None
    ) -> Placement:
        """What one task of the class holds on its host: the one derivation the scheduler charges when it
        places a task and the master holds for it from then on (or from its record, after a restart)."""
        return Placement(
            self.job_id, self.request, ports, self.sg_code, interface, address, self.exclusive, self.image
        )


@dataclass(frozen=True, slots=True)
class PendingTask:
    task_id: str
    job_id: str
    ready_at: float = 0.0
    order: tuple[float, int] = (0.0, 0)  # within a job: (created_at, index)
    backoff_s: float = 0.0  # > 0: ``ready_at`` is its job's crash-loop backoff ...
    job_failures: int = 0  # ... after this many failures in a row


@dataclass(frozen=True, slots=True)
class Snapshot:
    now: float
    cluster: Cluster  # not changed by scheduling: the scheduler works on a fork
    jobs: Mapping[str, JobClass]
    tasks: Sequence[PendingTask]
    groups: Mapping[str, CapacityGroup] = field(default_factory=dict)
    usage: Mapping[str, Resources] = field(default_factory=dict)  # per group: what its placed tasks hold
