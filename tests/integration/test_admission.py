"""Admission against a running master: the global pending cap, team quotas and team-scoped reads."""

from __future__ import annotations

import contextlib
from pathlib import Path

import httpx
import pytest
from httpx_sse import connect_sse

from corral.agent.pool import FleetSpec
from tests.support.cluster import Fleet, MasterProcess, wait_for
from tests.support.specs import batch_job, service_job

pytestmark = pytest.mark.integration


def token(master: MasterProcess, name: str, team: str, role: str = "user") -> httpx.Client:
    teams = {t["name"] for t in master.http.get("/api/v1/admin/teams").json()["items"]}
    if team not in teams:
        master.http.put(f"/api/v1/admin/teams/{team}", json={})
    r = master.http.post("/api/v1/admin/tokens", json={"name": name, "team": team, "role": role})
    assert r.status_code == 201, r.text
    return httpx.Client(base_url=master.url, headers={"Authorization": f"Bearer {r.json()['secret']}"})


def snapshot_jobs(http: httpx.Client) -> set[str]:
    """The jobs in the event stream's snapshot, as this caller sees it."""
    jobs = set()
    with connect_sse(http, "GET", "/api/v1/events") as source:
        for sse in source.iter_sse():
            if sse.event == "snapshot_end":
                return jobs
            if sse.event == "job":
                jobs.add(sse.json()["id"])
    raise AssertionError("the stream ended before its snapshot did")


def test_the_pending_cap_refuses_new_work_and_loses_nothing_accepted(tmp_path: Path) -> None:
    master = MasterProcess(tmp_path / "m", {"CORRAL_MAX_PENDING_TASKS": "20"}).start()
    try:
        accepted = []
        for _ in range(4):  # no agents yet: every task waits
            r = master.http.post("/api/v1/jobs", json=batch_job(["sleep", "0.1"], size=5))
            assert r.status_code == 201, r.text
            accepted.append(r.json()["id"])
        wait_for(lambda: len(master.tasks(states=["Accepted"])) == 20, what="20 tasks waiting")
        refused = master.http.post("/api/v1/jobs", json=batch_job(["true"]))
        assert refused.status_code == 429 and refused.json()["code"] == "queue_full"
        assert int(refused.headers["retry-after"]) > 0
        grown = master.http.post("/api/v1/jobs", json=service_job(0))
        assert grown.status_code == 201  # a job that asks for nothing yet fits
        resized = master.http.put(
            f"/api/v1/jobs/{grown.json()['id']}/capacity", json={"min": 0, "desired": 1, "max": 2}
        )
        assert resized.status_code == 429 and resized.json()["code"] == "queue_full"
        # A crash right after: every accepted job is still there, with every task.
        master.kill()
        master.start()
        assert {j["id"] for j in master.http.get("/api/v1/jobs").json()["items"]} >= set(accepted)
        assert len(master.tasks(states=["Accepted"])) == 20
        fleet = Fleet(master.url, FleetSpec(count=2, cpu=8, heartbeat_backoff_max_s=0.5))
        try:
            fleet.wait_connected()
            for job_id in accepted:  # all of it runs to completion once there is room
                assert master.wait_job_finished(job_id, 60)["reason"] == "normal"
            assert master.http.post("/api/v1/jobs", json=batch_job(["true"])).status_code == 201
        finally:
            fleet.close()
    except BaseException:
        print(master.log()[-20000:])
        raise
    finally:
        master.close()


def test_team_quotas_and_team_scoped_reads(tmp_path: Path) -> None:
    master = MasterProcess(tmp_path / "m", {"CORRAL_READ_SCOPE": "team"}).start()
    closing = contextlib.ExitStack()
    try:
        master.http.put("/api/v1/admin/teams/payments", json={"max_active_jobs": 1, "max_active_tasks": 3})
        alice = closing.enter_context(token(master, "alice", "payments"))
        bob = closing.enter_context(token(master, "bob", "search"))
        first = alice.post("/api/v1/jobs", json=service_job(2))
        assert first.status_code == 201, first.text
        job = first.json()["id"]
        second = alice.post("/api/v1/jobs", json=batch_job(["true"]))
        assert second.status_code == 403 and second.json()["code"] == "quota_exceeded"
        grow = alice.put(f"/api/v1/jobs/{job}/capacity", json={"min": 0, "desired": 4, "max": 50})
        assert grow.status_code == 403 and "active tasks" in grow.json()["message"]
        assert alice.put(f"/api/v1/jobs/{job}/capacity", json={"min": 0, "desired": 3, "max": 50}).is_success
        # Reads scoped to teams: bob sees neither the job nor its tasks; alice and admins do.
        assert bob.get(f"/api/v1/jobs/{job}").status_code == 403
        assert job not in {j["id"] for j in bob.get("/api/v1/jobs").json()["items"]}
        task = wait_for(lambda: master.tasks(job), what="a task")[0]["id"]
        assert bob.get(f"/api/v1/tasks/{task}").status_code == 403
        assert bob.get("/api/v1/tasks", params={"job": job}).json()["items"] == []
        assert alice.get(f"/api/v1/tasks/{task}").status_code == 200
        assert job in {j["id"] for j in alice.get("/api/v1/jobs").json()["items"]}
        assert master.http.get(f"/api/v1/jobs/{job}").status_code == 200
        assert snapshot_jobs(bob) == set() and snapshot_jobs(alice) == {job}  # the event stream too
        assert snapshot_jobs(master.http) == {job}
    except BaseException:
        print(master.log()[-20000:])
        raise
    finally:
        closing.close()
        master.close()
