"""The job manager's knobs: stuck-state timeouts, the system-error backoff, the crash-loop backoff and
the cap on a job's not-yet-started tasks."""

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
    crash_loop_after: int = 3  # a job with this many user failures in a row is crash-looping (0: never)
    crash_loop_initial_s: float = 5.0  # ... and its new tasks wait this long, doubling per further failure,
    crash_loop_max_s: float = 300.0  # ... up to this
    max_unstarted_tasks_per_job: int = 1000  # created but not yet Started, per job (0: no limit)
