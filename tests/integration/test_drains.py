"""Draining a host moves its tasks: services make before break within their budgets, batch after a deadline."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_rollouts import Poller, probed_service, ready
from tests.support.cluster import MasterProcess, cluster, wait_for
from tests.support.specs import batch_job

pytestmark = pytest.mark.integration


def kill_time(task: dict[str, Any]) -> float:
    return next(e["at"] for e in task["history"] if e["state"] in ("KillInitiated", "Finished"))


def busiest_host(master: MasterProcess, job_id: str) -> str:
    hosts = Counter(t["host_id"] for t in ready(master, job_id))
    return hosts.most_common(1)[0][0]


def test_a_drain_moves_a_service_make_before_break_within_its_budget(tmp_path: Path) -> None:
    with cluster(tmp_path, agents=3) as (master, _fleet):
        spec = probed_service(4, ["true"])
        spec["disruption_budget"] = {"availability_percentage": 75}
        job_id = master.submit(spec)["id"]
        wait_for(lambda: len(ready(master, job_id)) == 4, 30, what="4 ready tasks")
        batch = master.submit(batch_job(["sleep", "1000"], size=3))
        wait_for(lambda: len(master.tasks(batch["id"], ["Started"])) == 3, 30, what="batch started")
        host = busiest_host(master, job_id)
        on_host = {t["id"] for t in master.tasks(job_id) if t["host_id"] == host and t["state"] == "Started"}
        batch_on_host = {t["id"] for t in master.tasks(batch["id"]) if t["host_id"] == host}

        poller = Poller(master, job_id)
        answer = master.http.post(f"/api/v1/hosts/{host}/drain", json={"deadline_s": 1.0})
        assert answer.status_code == 200, answer.text
        status = master.http.get(f"/api/v1/hosts/{host}/drain").json()
        assert status["draining"] and status["remaining"] >= len(on_host)
        wait_for(
            lambda: master.http.get(f"/api/v1/hosts/{host}/drain").json()["remaining"] == 0,
            60,
            what="the host to empty",
        )
        assert poller.stop() >= 3, "the availability budget (75 % of 4) was broken"

        tasks = {t["id"]: t for t in master.tasks(job_id)}
        moved = [t for t in tasks.values() if t["id"] in on_host]
        assert moved and all(t["reason"] == "relocated" for t in moved)
        for old in moved:
            note = next(e["detail"] for e in old["history"] if e["detail"].startswith("relocating: "))
            new = tasks[note.split()[1]]
            assert new["host_id"] != host
            assert new["ready_since"] is not None and new["ready_since"] <= kill_time(old), (old, new)
        assert len(ready(master, job_id)) == 4

        # Batch tasks waited for the deadline, then ran again elsewhere without spending a retry.
        reruns = [
            t for t in master.tasks(batch["id"]) if t["id"] not in batch_on_host and t["host_id"] != host
        ]
        assert all(t["reason"] == "relocated" for t in master.tasks(batch["id"]) if t["id"] in batch_on_host)
        assert len([t for t in reruns if t["state"] != "Finished"]) == 3
        assert all(t["attempt"] == 0 for t in reruns)
        master.http.post(f"/api/v1/hosts/{host}/undrain").raise_for_status()
