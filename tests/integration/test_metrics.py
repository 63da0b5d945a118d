"""Scraping /metrics during a scripted run: the counters, histograms and buckets move as they should."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from corral.domain.job import BatchSpec, Container, Image, Job, JobDescriptor, JobEvent, Owner
from corral.domain.states import JobState, TaskState
from corral.domain.task import Task, TaskEvent
from corral.store import WriteBatch, open_store
from tests.support.cluster import MasterProcess, cluster, wait_for
from tests.support.specs import batch_job, with_changes

pytestmark = pytest.mark.integration


def scrape(master: MasterProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = master.http.get("/metrics").text
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_counters_histograms_and_gauges_follow_a_run(tmp_path: Path) -> None:
    with cluster(tmp_path, agents=3, env={"CORRAL_CANARY_INTERVAL_S": "0.5"}) as (master, _fleet):
        before = scrape(master)
        assert [v for (name, _), v in before.items() if name == "corral_leader"] == [1.0]
        assert value(before, "corral_hosts", health="healthy") == 3
        assert value(before, "corral_cluster_capacity", resource="cpu") == 24
        good = master.submit(batch_job(["sh", "-c", "sleep 3"], size=3))
        bad = master.submit(batch_job(["sh", "-c", "exit 1"], size=2))
        huge = master.submit(with_changes(batch_job(["true"]), "container.resources.cpu", 64))
        # a task is healthy once Started (no probes); wait for it rather than scrape at once
        running = wait_for(
            lambda: s if value(s := scrape(master), "corral_tasks_health", health="healthy") >= 1 else None,
            30,
            what="a running task counted healthy",
        )
        master.wait_job_finished(good["id"])
        master.wait_job_finished(bad["id"])
        wait_for(
            lambda: value(scrape(master), "corral_canary_runs_total", outcome="success") >= 1,
            30,
            what="a canary to succeed",
        )
        after = scrape(master)

        def grew(name: str, by: float, **labels: str) -> None:
            assert value(after, name, **labels) - value(before, name, **labels) >= by, (name, labels)

        grew("corral_jobs_submitted_total", 3, type="batch")
        grew("corral_tasks_finished_total", 3, reason="normal")
        grew("corral_tasks_finished_total", 2, reason="failed")
        grew("corral_tasks_placed_total", 5)
        grew("corral_queue_wait_seconds_count", 5)
        grew("corral_submit_to_started_seconds_count", 5)
        grew("corral_scheduler_iteration_seconds_count", 1)
        grew("corral_scheduler_placements_per_iteration_count", 1)
        grew("corral_scheduler_rejections_total", 3, filter="resources:cpu")  # the 64-cpu task, on 3 hosts
        grew("corral_canary_schedule_launch_seconds_count", 1)
        assert value(running, "corral_cluster_allocated", resource="cpu") >= 0
        assert value(running, "corral_tasks_health", health="healthy") >= 1  # running, no probes: healthy
        assert value(running, "corral_tasks_relocating") == 0
        assert value(after, "corral_tasks", state="Accepted") >= 1  # the huge one waits
        assert value(after, "corral_tasks_pending") >= 1
        assert value(after, "corral_jobs", type="batch", state="Accepted") >= 1
        master.http.post(f"/api/v1/jobs/{huge['id']}/kill")


def test_the_titus_buckets_count_tasks_waiting_long(tmp_path: Path) -> None:
    data = tmp_path / "m"
    data.mkdir()
    store = open_store(f"sqlite:///{data / 'corral.db'}")
    now = time.time()
    descriptor = JobDescriptor(Owner("a@b.co"), "waiting", Container(Image("x")), batch=BatchSpec(size=2))
    job = Job(
        "job1",
        descriptor,
        JobState.ACCEPTED,
        now - 400,
        now - 400,
        history=(JobEvent(now - 400, JobState.ACCEPTED),),
    )
    old = Task("t-old", "job1", 0, TaskState.ACCEPTED, now - 400, now - 400, now - 400,
               history=(TaskEvent(now - 400, TaskState.ACCEPTED),))  # fmt: skip
    young = Task("t-young", "job1", 1, TaskState.ACCEPTED, now - 90, now - 90, now - 90,
                 history=(TaskEvent(now - 90, TaskState.ACCEPTED),))  # fmt: skip
    store.write(WriteBatch([job], [old, young]), epoch=0)
    store.close()
    master = MasterProcess(data).start()  # no agents: both stay pending
    try:
        samples = scrape(master)
        buckets = {
            s: value(samples, "corral_tasks_pending_longer_than", seconds=s)
            for s in ("60", "300", "600", "900")
        }
        assert buckets == {"60": 2.0, "300": 1.0, "600": 0.0, "900": 0.0}
    finally:
        master.close()
