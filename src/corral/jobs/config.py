"""The job manager's knobs: stuck-state timeouts and the system-error backoff."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class JobManagerConfig:
    launched_timeout_s: float = 60.0  # the agent never acknowledged the launch
    start_initiated_timeout_s: float = 600.0  # image pull and container creation
    kill_initiated_extra_s: float = 60.0  # beyond the job's kill grace period
    lost_after_s: float = 120.0  # Disconnected this long -> lost, and replaced
    system_retry_initial_s: float = 1.0
    system_retry_max_s: float = 300.0
    service_stable_after_s: float = 60.0  # a service task up this long resets the failure streak
