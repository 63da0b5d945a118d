"""The job descriptor (what a user asks for) and the job record (what Corral knows of it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from corral.domain.disruption import DisruptionBudget
from corral.domain.health import HealthChecks
from corral.domain.resources import Resources
from corral.domain.rollout import RedBlack, Rollout, UpdateStrategy, VersionOutcome
from corral.domain.states import FinishedReason, JobState, JobType


@dataclass(frozen=True, slots=True)
class Owner:
    team_email: str


@dataclass(frozen=True, slots=True)
class JobGroup:
    """Titus's job group: ``application-stack-detail-sequence`` is unique among active jobs."""

    stack: str = ""
    detail: str = ""
    sequence: str = ""


@dataclass(frozen=True, slots=True)
class Image:
    name: str
    tag: str | None = None
    digest: str | None = None

    @property
    def reference(self) -> str:
        if self.digest:
            return f"{self.name}@{self.digest}"
        return f"{self.name}:{self.tag or 'latest'}"


@dataclass(frozen=True, slots=True)
class ContainerResources:
    cpu: float = 1.0
    memory_mb: int = 512
    disk_mb: int = 1024
    network_mbps: int = 128
    gpu: int = 0
    ports: int = 0
    shm_mb: int = 64

    @property
    def vector(self) -> Resources:
        return Resources(self.cpu, self.memory_mb, self.disk_mb, self.network_mbps, self.gpu)


@dataclass(frozen=True, slots=True)
class Security:
    security_groups: tuple[str, ...] = ("default",)
    role: str = ""


@dataclass(frozen=True, slots=True)
class Container:
    image: Image
    entrypoint: tuple[str, ...] = ()
    command: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    resources: ContainerResources = field(default_factory=ContainerResources)
    security: Security = field(default_factory=Security)
    hard_constraints: dict[str, str] = field(default_factory=dict)
    soft_constraints: dict[str, str] = field(default_factory=dict)
    kill_grace_period_s: int = 10
    read_only_root: bool = False  # a read-only root filesystem, with a small writable tmpfs at /tmp
    health: HealthChecks | None = None  # liveness and readiness probes


class RetryKind(StrEnum):
    IMMEDIATE = "immediate"
    DELAYED = "delayed"
    EXPONENTIAL = "exponential"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """immediate {retries} | delayed {initial_delay_ms, delay_ms, retries} |
    exponential {initial_delay_ms, max_delay_ms, retries}."""

    kind: RetryKind = RetryKind.IMMEDIATE
    retries: int = 0
    initial_delay_ms: int = 0
    delay_ms: int = 0
    max_delay_ms: int = 0


@dataclass(frozen=True, slots=True)
class BatchSpec:
    size: int = 1
    runtime_limit_s: int | None = None
    retry_policy: RetryPolicy = field(default_factory=RetryPolicy)
    retry_on_runtime_limit: bool = False


@dataclass(frozen=True, slots=True)
class Capacity:
    min: int = 0
    desired: int = 1
    max: int = 1


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    capacity: Capacity = field(default_factory=Capacity)
    enabled: bool = True
    retry_policy: RetryPolicy = field(
        default_factory=lambda: RetryPolicy(RetryKind.EXPONENTIAL, initial_delay_ms=1000, max_delay_ms=60000)
    )


@dataclass(frozen=True, slots=True)
class JobDescriptor:
    owner: Owner
    application: str
    container: Container
    capacity_group: str = "default"
    job_group: JobGroup | None = None
    labels: dict[str, str] = field(default_factory=dict)
    batch: BatchSpec | None = None
    service: ServiceSpec | None = None
    update_strategy: UpdateStrategy | None = None  # how an update replaces a service's tasks
    disruption_budget: DisruptionBudget | None = None  # what voluntary disruptions (drains) may take

    @property
    def type(self) -> JobType:
        return JobType.SERVICE if self.service is not None else JobType.BATCH

    @property
    def job_group_key(self) -> str | None:
        """``application-stack-detail-sequence``, or None when no job group was given."""
        if self.job_group is None:
            return None
        g = self.job_group
        return "-".join((self.application, g.stack, g.detail, g.sequence))


@dataclass(frozen=True, slots=True)
class JobEvent:
    """One line of a job's history: a state change or an operator action, with why."""

    at: float
    state: JobState
    message: str = ""


@dataclass(frozen=True, slots=True)
class JobVersion:
    """One numbered version of a job's container, kept with the job (``corral job history``)."""

    number: int
    container: Container
    at: float
    by: str = ""
    note: str = ""  # "submitted", "update", "rollback to 2", "auto-revert of 3: ..."
    outcome: VersionOutcome = VersionOutcome.CURRENT


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    descriptor: JobDescriptor
    state: JobState = JobState.ACCEPTED
    created_at: float = 0.0
    updated_at: float = 0.0
    finished_at: float | None = None
    reason: FinishedReason | None = None
    reason_detail: str = ""
    history: tuple[JobEvent, ...] = ()
    team: str = ""  # the submitting principal's team: who may change the job
    submitted_by: str = ""  # the name of the token that submitted it
    version: int = 1  # the version of the container its tasks should run (the descriptor's container)
    versions: tuple[JobVersion, ...] = ()  # earlier versions kept, the current one included once updated
    rollout: Rollout | None = None  # the last update, in progress or ended
    # When its recent voluntary disruptions (relocations) started: the disruption budget's rate counts them.
    disruptions: tuple[float, ...] = ()
    red_black: RedBlack | None = None  # a red/black deploy: the job it replaces and how it went

    @property
    def type(self) -> JobType:
        return self.descriptor.type

    def container_of(self, version: int) -> Container:
        """The container a task of ``version`` runs (the current one for a version no longer kept)."""
        if version != self.version:
            for kept in self.versions:
                if kept.number == version:
                    return kept.container
        return self.descriptor.container

    @property
    def is_active(self) -> bool:
        return self.state is not JobState.FINISHED
