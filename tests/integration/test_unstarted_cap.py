"""The per-job cap on not-yet-started tasks, through a real master and simulated agents: a batch much
larger than the cap completes, and the job never has more tasks waiting to start than the cap."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.support.cluster import cluster
from tests.support.specs import batch_job

pytestmark = pytest.mark.integration

UNSTARTED = ["Accepted", "Launched", "StartInitiated"]


def test_a_batch_larger_than_the_cap_completes_within_the_cap(tmp_path: Path) -> None:
    env = {"CORRAL_MAX_UNSTARTED_TASKS_PER_JOB": "10"}
    with cluster(tmp_path, agents=3, env=env) as (master, _fleet):
        job = master.submit(batch_job(["sh", "-c", "sleep 0.3"], size=120))
        seen: list[int] = []
        done = threading.Event()

        def watch() -> None:
            while not done.is_set():
                seen.append(len(master.tasks(job["id"], UNSTARTED)))
                done.wait(0.02)

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            finished = master.wait_job_finished(job["id"], timeout=90)
        finally:
            done.set()
            watcher.join(10)
        assert finished["reason"] == "normal", finished
        tasks = master.tasks(job["id"])
        assert sorted(t["index"] for t in tasks) == list(range(120))
        assert max(seen) <= 10, max(seen)
        assert max(seen) >= 5  # the cap was reached, so the test proves something
