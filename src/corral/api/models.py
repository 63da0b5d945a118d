"""Request bodies: the shape and types of what clients send. Value rules live in ``domain.validation``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from corral.domain.capacity import CapacityGroup, Tier
from corral.domain.codec import from_builtins
from corral.domain.errors import ValidationError
from corral.domain.hostgroup import HostGroup, HostShape
from corral.domain.job import Capacity, JobDescriptor
from corral.domain.resources import Resources
from corral.domain.validation import check_strings
from corral.scheduler.profile import Mode


class Strict(BaseModel):
    """Every part of a request body: no unknown fields, no NaN."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Body(Strict):
    """A whole request body: also no string the store could not hold. Only the outermost model walks the
    strings (once, the whole body: a nested model's walk would find nothing new and cost as much)."""

    @model_validator(mode="before")
    @classmethod
    def _storable_strings(cls, data: Any) -> Any:
        """Every string of the body, keys included, before anything else looks at it: a lone surrogate,
        a NUL or an absurd length is a 400 ``invalid_string`` naming the field (ValidationError passes
        through pydantic to the API's error handler), never a 500 or a write the store refuses."""
        check_strings(data)
        return data


class OwnerModel(Strict):
    team_email: str = Field(description="the owning team's email; required, so someone can be paged")


class JobGroupModel(Strict):
    stack: str = ""
    detail: str = ""
    sequence: str = ""


class ImageModel(Strict):
    name: str
    tag: str | None = None
    digest: str | None = None


class ResourcesModel(Strict):
    cpu: float = Field(1.0, description="cores, fractional")
    memory_mb: int = 512
    disk_mb: int = 1024
    network_mbps: int = 128
    gpu: int = 0
    ports: int = Field(0, description="how many dynamic host ports to assign")
    shm_mb: int = 64


class SecurityModel(Strict):
    security_groups: list[str] = Field(default_factory=lambda: ["default"])
    role: str = ""


Constraints = dict[str, str | bool]


class HttpProbeModel(Strict):
    port_index: int = Field(0, description="which of the task's ports (container.resources.ports)")
    path: str = "/"
    expect_status: int = 200


class TcpProbeModel(Strict):
    port_index: int = 0


class ExecProbeModel(Strict):
    command: list[str]


class ProbeModel(Strict):
    """Exactly one of http, tcp, exec."""

    http: HttpProbeModel | None = None
    tcp: TcpProbeModel | None = None
    exec: ExecProbeModel | None = None
    interval_s: float = 10.0
    timeout_s: float = 2.0
    failures: int = Field(3, description="failures in a row that make the probe unhealthy")
    initial_delay_s: float = 0.0


class HealthModel(Strict):
    liveness: ProbeModel | None = Field(None, description="failing past its threshold: the task is replaced")
    readiness: ProbeModel | None = Field(
        None, description="passing: the task counts as ready (rollouts, disruption budgets and drains)"
    )


class RollingModel(Strict):
    max_unavailable: int | str = Field(1, description="a count, or a percentage of desired such as '25%'")
    max_surge: int | str = Field(1, description="a count, or a percentage of desired such as '25%'")
    min_healthy_s: float = 10.0
    progress_deadline_s: float = 600.0
    canaries: int = 0
    auto_promote: bool = False
    auto_revert: bool = True


class UpdateStrategyModel(Strict):
    rolling: RollingModel = Field(default_factory=RollingModel)


class SelfManagedModel(Strict):
    relocation_timeout_s: float = 600.0


class RatePerIntervalModel(Strict):
    tasks: int = 1
    interval_s: float = 60.0


class TimeWindowModel(Strict):
    days: list[str] = Field(default_factory=lambda: ["mon", "tue", "wed", "thu", "fri", "sat", "sun"])
    start_hour: int = 0
    end_hour: int = 24
    time_zone: str = "UTC"


class DisruptionBudgetModel(Strict):
    """One policy (availability_percentage, unhealthy_tasks, relocation_limit or self_managed), at most one
    rate, any number of time windows."""

    availability_percentage: float | None = None
    unhealthy_tasks: int | None = None
    relocation_limit: int | None = None
    self_managed: SelfManagedModel | None = None
    rate_per_interval: RatePerIntervalModel | None = None
    rate_percent_per_hour: float | None = None
    windows: list[TimeWindowModel] = Field(default_factory=list)


class ContainerModel(Strict):
    image: ImageModel
    entrypoint: list[str] = Field(default_factory=list)
    command: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    resources: ResourcesModel = Field(default_factory=ResourcesModel)
    security: SecurityModel = Field(default_factory=SecurityModel)
    hard_constraints: Constraints = Field(default_factory=dict)
    soft_constraints: Constraints = Field(default_factory=dict)
    kill_grace_period_s: int = 10
    read_only_root: bool = Field(
        False, description="a read-only root filesystem; /tmp stays writable (a small tmpfs)"
    )
    health: HealthModel | None = Field(None, description="liveness and readiness probes")

    @field_validator("hard_constraints", "soft_constraints")
    @classmethod
    def _as_text(cls, value: Constraints) -> Constraints:
        return {k: (str(v).lower() if isinstance(v, bool) else v) for k, v in value.items()}


class ImmediateRetry(Strict):
    kind: Literal["immediate"]
    retries: int = 0


class DelayedRetry(Strict):
    kind: Literal["delayed"]
    retries: int = 0
    initial_delay_ms: int = 0
    delay_ms: int = 0


class ExponentialRetry(Strict):
    kind: Literal["exponential"]
    retries: int = 0
    initial_delay_ms: int = 1000
    max_delay_ms: int = 60000


RetryPolicyModel = Annotated[ImmediateRetry | DelayedRetry | ExponentialRetry, Field(discriminator="kind")]


class BatchModel(Strict):
    size: int = 1
    runtime_limit_s: int | None = None
    retry_policy: RetryPolicyModel = Field(default_factory=lambda: ImmediateRetry(kind="immediate"))
    retry_on_runtime_limit: bool = False


class CapacityModel(Body):
    min: int = 0
    desired: int = 1
    max: int = 1

    def to_domain(self) -> Capacity:
        return Capacity(self.min, self.desired, self.max)


class ServiceModel(Strict):
    capacity: CapacityModel = Field(default_factory=CapacityModel)
    enabled: bool = True
    retry_policy: RetryPolicyModel = Field(default_factory=lambda: ExponentialRetry(kind="exponential"))


class JobSpec(Body):
    """A job descriptor as submitted: exactly one of ``batch`` or ``service``."""

    owner: OwnerModel
    application: str
    capacity_group: str = "default"
    job_group: JobGroupModel | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    container: ContainerModel
    batch: BatchModel | None = None
    service: ServiceModel | None = None
    update_strategy: UpdateStrategyModel | None = None
    disruption_budget: DisruptionBudgetModel | None = None

    def to_domain(self) -> JobDescriptor:
        data: dict[str, Any] = self.model_dump()
        return from_builtins(data, JobDescriptor)


class EnabledModel(Body):
    enabled: bool


class RollbackModel(Body):
    to: int | None = Field(None, description="the version to go back to (default: the last healthy one)")


class DrainModel(Body):
    deadline_s: float = Field(600.0, description="batch tasks may finish this long, then move", ge=0)


class GroupDrainModel(Body):
    partition_percent: float = Field(description="each partition's share of the group's hosts", gt=0, le=100)
    deadline_s: float | None = Field(None, description="batch tasks may finish this long, then move", ge=0)


class PruneModel(Body):
    older_than_s: float = Field(ge=0)


class ResourceVectorModel(Strict):
    cpu: float = Field(0.0, ge=0)
    memory_mb: int = Field(0, ge=0)
    disk_mb: int = Field(0, ge=0)
    network_mbps: int = Field(0, ge=0)
    gpu: int = Field(0, ge=0)

    def to_domain(self) -> Resources:
        return Resources(self.cpu, self.memory_mb, self.disk_mb, self.network_mbps, self.gpu)


class CapacityGroupBody(Body):
    """A capacity group without its name (the name is in the path when updating)."""

    tier: Tier = Tier.FLEX
    guarantee: ResourceVectorModel = Field(default_factory=ResourceVectorModel)
    limit: ResourceVectorModel | None = Field(None, description="hard limit; 0 in a dimension: not limited")
    description: str = ""

    def to_domain(self, name: str) -> CapacityGroup:
        limit = self.limit.to_domain() if self.limit is not None else None
        return CapacityGroup(name, self.tier, self.guarantee.to_domain(), limit, self.description)


class CapacityGroupModel(CapacityGroupBody):
    name: str


# Host groups: the defaults shown in the API's schema are the domain's own (one source of truth).
_GROUP = HostGroup("_")
_SHAPE = HostShape()


def _scalars_as_text(value: Any) -> Any:
    """A YAML file's ``grace_s: 5`` or ``spot: true`` in a string map, as the text it means."""
    if not isinstance(value, dict):
        return value
    return {
        k: str(v).lower() if isinstance(v, bool) else str(v) if isinstance(v, int | float) else v
        for k, v in value.items()
    }


class HostResourcesModel(Strict):
    cpu: float = _SHAPE.resources.cpu
    memory_mb: int = _SHAPE.resources.memory_mb
    disk_mb: int = _SHAPE.resources.disk_mb
    network_mbps: int = _SHAPE.resources.network_mbps
    gpu: int = _SHAPE.resources.gpu


class HostShapeModel(Strict):
    """What a new host of the group offers; its agent registers so."""

    resources: HostResourcesModel = Field(default_factory=HostResourcesModel)
    zones: list[str] = Field(
        default_factory=lambda: list(_SHAPE.zones), description="new hosts go round robin"
    )
    instance_type: str = _SHAPE.instance_type
    attributes: dict[str, str] = Field(default_factory=dict, description="custom attributes of each host")
    port_range: tuple[int, int] = Field(_SHAPE.port_range, description="[low, high] host ports for tasks")

    @field_validator("attributes", mode="before")
    @classmethod
    def _as_text(cls, value: Any) -> Any:
        return _scalars_as_text(value)


class ProviderModel(Strict):
    kind: str = Field(_GROUP.provider.kind, description="none (never scaled), local or aws")
    config: dict[str, str] = Field(
        default_factory=dict, description="local: runtime (sim or docker); aws: asg, region, endpoint_url"
    )

    @field_validator("config", mode="before")
    @classmethod
    def _as_text(cls, value: Any) -> Any:
        return _scalars_as_text(value)


class HostGroupBody(Body):
    """A host group's configuration; ``name``, if given, must be the one in the path."""

    name: str | None = None
    shape: HostShapeModel = Field(default_factory=HostShapeModel)
    min_size: int = _GROUP.min_size
    max_size: int = Field(_GROUP.max_size, description="0: no upper bound of the group's own")
    min_idle: int = Field(_GROUP.min_idle, description="idle hosts kept ready for a burst")
    max_idle: int = Field(
        _GROUP.max_idle, description="idle hosts above this are scaled down (0: above min_idle)"
    )
    scale_up_cooldown_s: float = _GROUP.scale_up_cooldown_s
    scale_down_cooldown_s: float = _GROUP.scale_down_cooldown_s
    unneeded_for_s: float = Field(
        _GROUP.unneeded_for_s,
        description="a host is removed only once unneeded (idle, or its tasks fit elsewhere) this long",
    )
    cost_per_host: float = _GROUP.cost_per_host
    provider: ProviderModel = Field(default_factory=ProviderModel)
    pending_after_s: float = Field(
        _GROUP.pending_after_s, description="tasks pending this long count for a scale-up"
    )
    removal_deadline_s: float = Field(
        _GROUP.removal_deadline_s, description="batch tasks on a host being removed may finish until this"
    )
    replace_after_s: float = Field(_GROUP.replace_after_s, description="a host bad this long is replaced")
    replace_max_percent: float = Field(
        _GROUP.replace_max_percent, description="at most this share of the group replaced at a time"
    )
    autoscale: bool = Field(_GROUP.autoscale, description="false: shown and explained, never scaled")
    description: str = _GROUP.description

    def to_domain(self, name: str) -> HostGroup:
        if self.name is not None and self.name != name:
            raise ValidationError("name_mismatch", f"the body names {self.name!r}, the path {name!r}", "name")
        return from_builtins({**self.model_dump(), "name": name}, HostGroup)


class ModeModel(Body):
    mode: Mode


class ResolveModel(Body):
    action: Literal["kill", "keep", "dismiss", "retry"] = Field(
        description="unknown tasks: kill them, or keep them running; an impostor alert: dismiss; "
        "a job set aside: retry it"
    )


# -- responses: the placement of a task ------------------------------------------------------------


class HostScoreModel(BaseModel):
    host_id: str
    score: float = Field(description="the sum of the contributions: higher is a better host for the task")
    feasible: bool = Field(description="every hard filter lets the task onto the host now")
    rank: int = Field(description="1 = the best host that could take the task now; 0: it could not")
    contributions: dict[str, float] = Field(description="per scorer (profile weights' names): share x value")
    values: dict[str, float] = Field(description="per scorer: its value on this host, in [0, 1]")


class RankingModel(BaseModel):
    chosen: HostScoreModel | None = Field(description="the task's own host (null: no longer registered)")
    others: list[HostScoreModel] = Field(description="the best other hosts that could take it now")
    feasible: int = Field(description="hosts that could take the task now")
    weights: dict[str, float] = Field(description="the profile's weight of each scorer")
    shares: dict[str, float] = Field(description="each scorer's weight over the sum of the weights")
    mode: str = Field(description="the scheduling mode of the task's tier (pack or spread)")
    note: str


class PlacementModel(BaseModel):
    task_id: str
    state: str
    host_id: str | None
    ready_at: float
    pending: dict[str, Any] | None = Field(None, description="why an Accepted task waits")
    ranking: RankingModel | None = Field(
        None, description="for a task on a host: its host against the best others, as of now"
    )
