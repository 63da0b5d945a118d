"""``/metrics``: Prometheus text, computed from the master's state at each scrape."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from corral.control.master import Master

router = APIRouter(tags=["admin"])


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
        alerts = GaugeMetricFamily(
            "corral_reconciliation_alerts",
            "Reconciliation alerts waiting for an operator (nothing was killed)",
        )
        alerts.add_metric([], float(len(m.hub.alerts)))
        yield alerts
        tasks = GaugeMetricFamily("corral_tasks", "Tasks in memory by state", labels=["state"])
        for state, count in sorted(Counter(t.state.value for t in m.state.tasks.values()).items()):
            tasks.add_metric([state], float(count))
        yield tasks
        hosts = GaugeMetricFamily("corral_hosts", "Hosts by state", labels=["state"])
        for state, count in sorted(Counter(h.state.value for h in m.state.hosts.values()).items()):
            hosts.add_metric([state], float(count))
        yield hosts


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    master: Master = request.app.state.master
    registry = CollectorRegistry()
    registry.register(MasterCollector(master))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
