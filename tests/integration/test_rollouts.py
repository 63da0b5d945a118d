"""Updating a service through the real API, store and agent protocol (simulated agents run the probes)."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.cluster import MasterProcess, cluster, wait_for
from tests.support.specs import service_job

pytestmark = pytest.mark.integration

PROBE = {"interval_s": 0.2, "timeout_s": 0.2, "failures": 2}


def probed_service(desired: int, ready_command: list[str], **rolling: Any) -> dict[str, Any]:
    spec = service_job(desired, ["sh", "-c", "echo v1; while true; do sleep 60; done"])
    spec["container"]["health"] = {"readiness": {"exec": {"command": ready_command}, **PROBE}}
    spec["update_strategy"] = {"rolling": {"min_healthy_s": 0.5, "progress_deadline_s": 20, **rolling}}
    return spec


def with_version(spec: dict[str, Any], name: str, ready_command: list[str] | None = None) -> dict[str, Any]:
    new = copy.deepcopy(spec)
    new["container"]["command"] = ["sh", "-c", f"echo {name}; while true; do sleep 60; done"]
    if ready_command is not None:
        new["container"]["health"]["readiness"]["exec"]["command"] = ready_command
    return new


def live(master: MasterProcess, job_id: str) -> list[dict[str, Any]]:
    return [t for t in master.tasks(job_id) if t["state"] != "Finished" and not t.get("kill_reason")]


def ready(master: MasterProcess, job_id: str) -> list[dict[str, Any]]:
    return [t for t in live(master, job_id) if t.get("ready")]


class Poller:
    """Counts the job's ready tasks every 50 ms until stopped; keeps the lowest count seen."""

    def __init__(self, master: MasterProcess, job_id: str, count: Callable[[], int] | None = None) -> None:
        self.master, self.job_id = master, job_id
        self.count = count or (lambda: len(ready(master, job_id)))
        self.lowest: int | None = None
        self.polls = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            try:
                count = self.count()
            except (httpx.HTTPError, RuntimeError):  # a leader changing hands, a test ending: no count
                continue
            self.polls += 1
            self.lowest = count if self.lowest is None else min(self.lowest, count)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(10)
        if self.lowest is None:  # stopped before its first count came back (a loaded machine): count now
            self.lowest = self.count()
        return self.lowest


def rollout_phase(master: MasterProcess, job_id: str) -> str:
    r = master.http.get(f"/api/v1/jobs/{job_id}/rollout").json()
    return str((r.get("rollout") or {}).get("phase"))


def test_a_rolling_update_keeps_the_service_available_and_a_failing_version_is_reverted(
    tmp_path: Path,
) -> None:
    with cluster(tmp_path, agents=3) as (master, _fleet):
        spec = probed_service(4, ["true"], max_surge=1, max_unavailable=1)
        job = master.submit(spec)
        job_id = job["id"]
        wait_for(lambda: len(ready(master, job_id)) == 4, 30, what="4 ready tasks")

        poller = Poller(master, job_id)
        answer = master.http.put(f"/api/v1/jobs/{job_id}/spec", json=with_version(spec, "v2"))
        assert answer.status_code == 200, answer.text
        assert answer.json()["rollout_started"] and answer.json()["version"] == 2
        wait_for(lambda: rollout_phase(master, job_id) == "succeeded", 60, what="the rollout to succeed")
        assert poller.stop() >= 3, "fewer than desired - max_unavailable ready during the rollout"
        assert poller.polls > 10
        assert sorted(t["version"] for t in live(master, job_id)) == [2, 2, 2, 2]

        # A version whose readiness probe fails is reverted to version 2, which was healthy.
        poller = Poller(master, job_id)
        bad = master.http.put(f"/api/v1/jobs/{job_id}/spec", json=with_version(spec, "v3", ["false"]))
        assert bad.status_code == 200, bad.text
        wait_for(
            lambda: master.job(job_id)["version"] == 2 and rollout_phase(master, job_id) == "succeeded",
            60,
            what="the revert to version 2",
        )
        assert poller.stop() >= 3
        wait_for(lambda: sorted(t["version"] for t in ready(master, job_id)) == [2, 2, 2, 2], 30)
        versions = master.http.get(f"/api/v1/jobs/{job_id}/versions").json()["items"]
        assert [(v["number"], v["outcome"]) for v in versions] == [
            (3, "failed"),
            (2, "healthy"),
            (1, "healthy"),
        ]
        assert [v["current"] for v in versions] == [False, True, False]
        history = " | ".join(e["message"] for e in master.job(job_id)["history"])
        assert "version 3 failed" in history and "unhealthy" in history

        # By hand: back to version 1 (a new version, 4, with version 1's container).
        back = master.http.post(f"/api/v1/jobs/{job_id}/rollback", json={"to": 1})
        assert back.status_code == 200, back.text
        wait_for(lambda: rollout_phase(master, job_id) == "succeeded", 60, what="the rollback")
        assert master.job(job_id)["version"] == 4


def test_canaries_wait_for_promotion(tmp_path: Path) -> None:
    with cluster(tmp_path, agents=2) as (master, _fleet):
        spec = probed_service(3, ["true"], canaries=1)
        job_id = master.submit(spec)["id"]
        wait_for(lambda: len(ready(master, job_id)) == 3, 30, what="3 ready tasks")
        master.http.put(f"/api/v1/jobs/{job_id}/spec", json=with_version(spec, "v2")).raise_for_status()
        status = wait_for(
            lambda: (
                (s := master.http.get(f"/api/v1/jobs/{job_id}/rollout").json())["waiting_for"].startswith(
                    "promotion"
                )
                and s
            ),
            30,
            what="the canary to be healthy",
        )
        assert {v["version"]: v["ready"] for v in status["versions"]} == {1: 3, 2: 1}
        assert {v["version"]: v["desired"] for v in status["versions"]} == {1: 3, 2: 1}
        assert {v["version"]: v["healthy"] for v in status["versions"]}[2] == 1
        promoted = master.http.post(f"/api/v1/jobs/{job_id}/promote")
        assert promoted.status_code == 200, promoted.text
        wait_for(lambda: rollout_phase(master, job_id) == "succeeded", 60, what="the rollout after promotion")
        assert sorted(t["version"] for t in live(master, job_id)) == [2, 2, 2]
        again = master.http.post(f"/api/v1/jobs/{job_id}/promote")
        assert again.status_code == 409 and again.json()["code"] == "no_canaries"


BAD_PROBES = [
    (
        {"readiness": {"http": {"port_index": 0}}},
        "invalid_probe_port",
        "container.health.readiness.http.port_index",
    ),
    ({"liveness": {"tcp": {}, "exec": {"command": ["true"]}}}, "invalid_probe", "container.health.liveness"),
    (
        {"liveness": {"exec": {"command": ["true"]}, "failures": 0}},
        "invalid_probe",
        "container.health.liveness.failures",
    ),
    (
        {"readiness": {"exec": {"command": ["true"]}, "interval_s": 1, "timeout_s": 5}},
        "invalid_probe",
        "container.health.readiness.timeout_s",
    ),
]


def test_bad_probes_and_updates_are_refused_with_the_field_named(tmp_path: Path) -> None:
    master = MasterProcess(tmp_path / "m").start()
    try:
        for health, code, field in BAD_PROBES:
            spec = service_job(1)
            spec["container"]["health"] = health
            answer = master.http.post("/api/v1/jobs", json=spec)
            assert answer.status_code == 400, answer.text
            assert (answer.json()["code"], answer.json().get("field")) == (code, field)
        job_id = master.submit(service_job(1))["id"]
        moved = service_job(1, application="elsewhere")
        answer = master.http.put(f"/api/v1/jobs/{job_id}/spec", json=moved)
        assert answer.status_code == 400 and answer.json()["code"] == "immutable_field"
        spec = service_job(1)
        spec["update_strategy"] = {"rolling": {"max_surge": 0, "max_unavailable": "0%"}}
        answer = master.http.put(f"/api/v1/jobs/{job_id}/spec", json=spec)
        assert answer.status_code == 400 and answer.json()["code"] == "invalid_update_strategy"
        assert (
            master.http.post(f"/api/v1/jobs/{job_id}/rollback", json={}).json()["code"]
            == "no_earlier_version"
        )
    finally:
        master.close()


def test_a_red_black_deploy_replaces_the_job_once_healthy_and_rolls_back_fast(tmp_path: Path) -> None:
    with cluster(tmp_path, agents=2) as (master, _fleet):
        spec = probed_service(3, ["true"])
        spec["job_group"] = {"stack": "prod", "detail": "api", "sequence": "v001"}
        old_id = master.submit(spec)["id"]
        wait_for(lambda: len(ready(master, old_id)) == 3, 30, what="3 ready tasks of v001")

        def serving() -> int:  # ready tasks of every job of the application
            return sum(
                1
                for t in master.tasks()
                if t["state"] == "Started" and t.get("ready") and not t.get("kill_reason")
            )

        poller = Poller(master, old_id, serving)
        answer = master.http.post("/api/v1/jobs/red-black", json=with_version(spec, "v2"))
        assert answer.status_code == 201, answer.text
        new = answer.json()
        assert new["descriptor"]["job_group"]["sequence"] == "v002"
        assert new["red_black"]["previous"] == old_id
        new_id = new["id"]
        wait_for(lambda: master.job(new_id)["red_black"]["phase"] == "done", 60, what="the deploy")
        assert poller.stop() >= 3  # the old job served at full size until the new one was healthy
        assert master.job(old_id)["descriptor"]["service"]["enabled"] is False
        wait_for(lambda: not live(master, old_id), 30, what="the old job's tasks to stop")
        assert len(ready(master, new_id)) == 3

        back = master.http.post(f"/api/v1/jobs/{new_id}/rollback", json={})
        assert back.status_code == 200, back.text
        wait_for(
            lambda: len(ready(master, old_id)) == 3 and not live(master, new_id), 60, what="the rollback"
        )
        assert master.job(new_id)["red_black"]["phase"] == "rolled_back"

        # A next job that never becomes ready is disabled; the old one serves on.
        bad = master.http.post("/api/v1/jobs/red-black", json=with_version(spec, "v3", ["false"]))
        assert bad.status_code == 201, bad.text
        assert bad.json()["descriptor"]["job_group"]["sequence"] == "v003"
        bad_id = bad.json()["id"]
        wait_for(lambda: master.job(bad_id)["red_black"]["phase"] == "failed", 60, what="the failed deploy")
        assert master.job(old_id)["descriptor"]["service"]["enabled"] is True
        assert len(ready(master, old_id)) == 3
