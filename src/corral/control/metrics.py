"""The master's own measurements: what happened (counters, histograms), kept per process across terms.

Gauges of the current state (tasks by state, hosts by health, allocation, the Titus pending buckets) are
computed at scrape time from the leader's state, in ``api/metrics.py``; what is recorded here are the
events that leave no trace in the state: placements, finishes by reason, waits and latencies.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 900, 1800, 3600)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.submitted = Counter("corral_jobs_submitted", "Jobs accepted", ["type"], registry=r)
        self.finished = Counter(
            "corral_tasks_finished",
            "Tasks that finished, by reason (system errors included)",
            ["reason"],
            registry=r,
        )
        self.placed = Counter("corral_tasks_placed", "Tasks placed on hosts", registry=r)
        self.queue_wait = Histogram(
            "corral_queue_wait_seconds",
            "From a task being ready to its placement",
            buckets=SECONDS,
            registry=r,
        )
        self.submit_to_started = Histogram(
            "corral_submit_to_started_seconds",
            "From a task's creation to Started",
            buckets=SECONDS,
            registry=r,
        )
        self.iteration = Histogram(
            "corral_scheduler_iteration_seconds",
            "One scheduling iteration",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=r,
        )
        self.iteration_placements = Histogram(
            "corral_scheduler_placements_per_iteration",
            "Tasks placed per iteration",
            buckets=(0, 1, 10, 100, 1000, 10_000, 100_000),
            registry=r,
        )
        self.rejections = Counter(
            "corral_scheduler_rejections",
            "Hosts a filter turned away, summed over the explanations of pending tasks",
            ["filter"],
            registry=r,
        )
        self.canary_latency = Histogram(
            "corral_canary_schedule_launch_seconds",
            "The canary job's submission to Started",
            buckets=SECONDS,
            registry=r,
        )
        self.refused = Counter(
            "corral_api_refused",
            "API calls refused for who made them or how much they asked: 401, 403, 429, by code",
            ["status", "code"],
            registry=r,
        )
        self.quarantines = Counter(
            "corral_host_quarantines", "Hosts quarantined for system errors", registry=r
        )
        self.set_aside = Counter(
            "corral_jobs_set_aside",
            "Jobs set aside after their load, reconciliation, placement or store write raised",
            ["stage"],
            registry=r,
        )
        self.fleet_alerts = Counter(
            "corral_fleet_alerts",
            "Alerts the agent protocol raised: unknown tasks left running, impostor registrations",
            ["kind"],
            registry=r,
        )
        self.agent_kills = Counter(
            "corral_agent_kills",
            "Kill orders sent on reconciliation: tasks that must not run where an agent runs them",
            registry=r,
        )
        self.canary_runs = Counter("corral_canary_runs", "Canary jobs, by outcome", ["outcome"], registry=r)
        self.autoscaler_actions = Counter(
            "corral_autoscaler_actions",
            "What the cluster autoscaler did, per host group: scale_up, remove, cancel, terminate, error",
            ["group", "action"],
            registry=r,
        )
        self.autoscaler_decision = Histogram(
            "corral_autoscaler_decision_seconds",
            "One autoscaler round (trial placement, consolidation, decisions)",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=r,
        )
