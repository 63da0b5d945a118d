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


def test_a_host_group_drains_a_partition_at_a_time(tmp_path: Path) -> None:
    from corral.agent.pool import FleetSpec
    from tests.support.cluster import Fleet

    with cluster(tmp_path, agents=0) as (master, _none):
        old = Fleet(
            master.url, FleetSpec(count=5, id_prefix="old", host_group="old", heartbeat_backoff_max_s=1.0)
        )
        spare: Fleet | None = None
        try:
            old.wait_connected()
            spec = probed_service(10, ["true"])
            spec["disruption_budget"] = {"availability_percentage": 75}
            job_id = master.submit(spec)["id"]
            wait_for(lambda: len(ready(master, job_id)) == 10, 30, what="10 ready tasks")
            spare = Fleet(
                master.url, FleetSpec(count=3, id_prefix="new", host_group="new", heartbeat_backoff_max_s=1.0)
            )
            spare.wait_connected()

            poller = Poller(master, job_id)
            on_group = {t["id"] for t in ready(master, job_id)}  # every task is on the group's hosts
            answer = master.http.post("/api/v1/hosts/groups/old/drain", json={"partition_percent": 40})
            assert answer.status_code == 200, answer.text
            assert [len(p["hosts"]) for p in answer.json()["partitions"]] == [2, 2, 1]
            seen: list[int] = []

            def done() -> bool:
                # Hosts first, then the drain: the drain only moves on, so the hosts draining then are a
                # subset of what the drain allows when it is read.
                draining = {
                    h["id"] for h in master.http.get("/api/v1/hosts").json()["items"] if h["draining"]
                }
                status = master.http.get("/api/v1/hosts/groups/old/drain").json()
                seen.append(status["current"])
                current = status["current"]
                # Only the partitions up to the current one drain; earlier ones are empty.
                for part in status["partitions"]:
                    if part["index"] > current and status["state"] != "done":
                        assert not draining & set(part["hosts"]), status
                    if part["index"] < current:
                        assert sum(part["tasks_remaining"].values()) == 0, status
                return bool(status["state"] == "done")

            wait_for(done, 90, interval=0.1, what="the group drain to finish")
            assert poller.stop() >= 8, "the availability budget (75 % of 10) was broken"
            assert sorted(set(seen)) == [0, 1, 2]
            tasks = [t for t in ready(master, job_id)]
            assert len(tasks) == 10 and all(t["host_id"].startswith("new") for t in tasks)
            # Hosts of later partitions took no new tasks meanwhile (cordoned): nothing was moved twice.
            moved = [t for t in master.tasks(job_id) if t["reason"] == "relocated"]
            assert {t["id"] for t in moved} == on_group
            hosts = master.http.get("/api/v1/hosts").json()["items"]
            assert not any(h["cordoned"] for h in hosts)
            again = master.http.post("/api/v1/hosts/groups/old/drain/resume")
            assert again.status_code == 409 and again.json()["code"] == "group_drain_done"
        finally:
            if spare is not None:
                spare.close()
            old.close()
