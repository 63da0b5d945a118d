"""The docker runtime's knobs."""

from __future__ import annotations

from dataclasses import dataclass

LABEL_MANAGED = "corral.managed"
LABEL_TASK = "corral.task_id"
LABEL_JOB = "corral.job_id"
LABEL_HOST = "corral.host"
LABEL_INDEX = "corral.task_index"


@dataclass(frozen=True, slots=True)
class DockerConfig:
    host_id: str
    launch_concurrency: int = 8  # Docker calls in flight at once (create, start, pull, stop)
    pids_limit: int = 4096
    log_retention_s: float = 3600.0  # a finished task's container (and so its log) is kept this long
    image_gc_age_s: float = 24 * 3600.0  # images this agent pulled, unused this long, are removed
    disk_min_free_mb: int = 1024  # below this on Docker's disk the host is unhealthy
    registry: str = ""  # host:port whose /v2/ must answer for the host to be healthy (if set)
    runtime_limit_slack_s: float = 5.0  # the agent enforces a batch runtime limit this much after the master
    docker_timeout_s: float = 60.0

    def __post_init__(self) -> None:
        if self.pids_limit < 1:  # Docker reads 0 and -1 as "no limit": a fork bomb would reach the host
            raise ValueError(f"pids_limit must be at least 1, not {self.pids_limit}")
