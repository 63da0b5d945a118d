"""The black-box canary: a tiny job submitted every so often, timed from submission to Started and
followed to its end — the seeds' synthetic workload, watching the whole path the way a user sees it."""

from __future__ import annotations

import asyncio
import logging

from corral.control.clock import Clock
from corral.control.ledger import Ledger
from corral.control.manager import JobManager
from corral.domain.errors import CorralError
from corral.domain.job import BatchSpec, Container, ContainerResources, Image, JobDescriptor, Owner
from corral.domain.states import FinishedReason

log = logging.getLogger(__name__)

APPLICATION = "corral_canary"


def canary_job(image: str) -> JobDescriptor:
    name, colon, tag = image.rpartition(":")
    if not colon or "/" in tag:  # no tag, or the colon was a registry's port (host:5000/name)
        name, tag = image, ""
    return JobDescriptor(
        owner=Owner("corral-canary@localhost.localdomain"),
        application=APPLICATION,
        container=Container(
            Image(name, tag=tag or "latest"),
            command=("true",),
            resources=ContainerResources(cpu=0.01, memory_mb=16, disk_mb=1, network_mbps=1, shm_mb=1),
        ),
        labels={"canary": "true"},
        batch=BatchSpec(size=1, runtime_limit_s=60),
    )


async def run_canary(
    jobs: JobManager, ledger: Ledger, clock: Clock, interval_s: float, image: str, timeout_s: float = 60.0
) -> None:
    metrics = ledger.metrics
    while True:
        await asyncio.sleep(interval_s)
        try:
            job = jobs.submit(canary_job(image))
        except CorralError as e:
            log.warning("canary not submitted: %s", e)
            metrics.canary_runs.labels("rejected").inc()
            continue
        submitted = clock()
        outcome = "timeout"
        timed = False
        while clock() - submitted < timeout_s:
            await asyncio.sleep(0.05)
            tasks = ledger.state.tasks_of(job.id)
            started = min((t.started_at for t in tasks if t.started_at is not None), default=None)
            if started is not None and not timed:
                metrics.canary_latency.observe(max(0.0, started - submitted))
                timed = True
            current = ledger.state.jobs.get(job.id)
            if current is None or not current.is_active:
                normal = current is not None and current.reason is FinishedReason.NORMAL
                outcome = "success" if normal or (current is None and timed) else "failure"
                break
        if outcome == "timeout":
            log.warning("canary job %s did not finish within %.0fs", job.id, timeout_s)
            jobs.kill_job(job.id, by="the canary")
        metrics.canary_runs.labels(outcome).inc()
