"""Prometheus text for ``/metrics``: the master's event counters and histograms (``metrics.py``), and gauges
computed from the leader's state at each scrape (tasks, jobs, hosts, allocation, the Titus pending buckets,
alerts)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from corral.control.master import Master
from corral.control.overview import PENDING_BUCKETS_S, allocation, health_of, pending_ages
from corral.domain.states import TaskState

__all__ = ["CONTENT_TYPE_LATEST", "scrape"]


class MasterCollector(Collector):
    def __init__(self, master: Master) -> None:
        self.master = master

    def collect(self) -> Iterator[Metric]:
        m = self.master
        leader = GaugeMetricFamily("corral_leader", "1 if this master leads", labels=["master"])
        leader.add_metric([m.id], 1.0 if m.ready else 0.0)
        yield leader
        if not m.ready:
            return
        service = m.service
        state, now = service.state, m.clock()
        alerts = GaugeMetricFamily(
            "corral_reconciliation_alerts",
            "Alerts waiting for an operator: unknown tasks (nothing was killed), impostor agents",
        )
        alerts.add_metric([], float(service.reconciliation_alerts()))
        yield alerts
        aside = GaugeMetricFamily("corral_jobs_set_aside_now", "Jobs set aside after they raised")
        aside.add_metric([], float(len(state.set_aside)))
        yield aside

        tasks = GaugeMetricFamily("corral_tasks", "Tasks the leader holds, by state", labels=["state"])
        task_health = GaugeMetricFamily(
            "corral_tasks_health", "Running tasks by what their probes say", labels=["health"]
        )
        by_state: Counter[str] = Counter()
        by_health: Counter[str] = Counter()
        for t in state.tasks.values():
            by_state[t.state.value] += 1
            if t.state is TaskState.STARTED:
                by_health[t.health.value] += 1
        for value, count in sorted(by_state.items()):
            tasks.add_metric([value], float(count))
        for value, count in sorted(by_health.items()):
            task_health.add_metric([value], float(count))
        yield tasks
        yield task_health
        relocating = GaugeMetricFamily(
            "corral_tasks_relocating", "Tasks whose replacement starts elsewhere before they stop (drains)"
        )
        relocating.add_metric([], float(len(state.relocating())))
        yield relocating

        waiting = GaugeMetricFamily(
            "corral_tasks_pending_longer_than",
            "Tasks waiting for a host longer than the threshold (the Titus buckets)",
            labels=["seconds"],
        )
        ages, _later = pending_ages(state, now)
        for threshold in PENDING_BUCKETS_S:
            waiting.add_metric([str(threshold)], float(sum(1 for a in ages if a > threshold)))
        yield waiting

        jobs = GaugeMetricFamily(
            "corral_jobs", "Jobs the leader holds, by type and state", labels=["type", "state"]
        )
        for (kind, value), count in sorted(
            Counter((j.type.value, j.state.value) for j in state.jobs.values()).items()
        ):
            jobs.add_metric([kind, value], float(count))
        yield jobs

        hosts = GaugeMetricFamily("corral_hosts", "Hosts by health", labels=["health"])
        for health, count in sorted(Counter(health_of(h) for h in state.hosts.values()).items()):
            hosts.add_metric([health], float(count))
        yield hosts

        capacity = GaugeMetricFamily(
            "corral_cluster_capacity", "Resources of reachable hosts", labels=["resource"]
        )
        allocated = GaugeMetricFamily(
            "corral_cluster_allocated", "Resources tasks hold there", labels=["resource"]
        )
        for name, figures in allocation(state).items():
            capacity.add_metric([name], figures.capacity)
            allocated.add_metric([name], figures.allocated)
        yield capacity
        yield allocated

        pending = GaugeMetricFamily("corral_tasks_pending", "Tasks waiting for a host (or their retry delay)")
        pending.add_metric([], float(state.pending_count))
        yield pending


def scrape(master: Master) -> bytes:
    """Everything ``/metrics`` serves: this process's counters, then the leader's gauges."""
    registry = CollectorRegistry()
    registry.register(MasterCollector(master))
    return bytes(generate_latest(master.metrics.registry) + generate_latest(registry))
