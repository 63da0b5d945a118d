"""The whole lifecycle through the real API, store and agent protocol: master in a subprocess,
simulated agents over WebSockets."""

from __future__ import annotations

import random
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.support.cluster import cluster, wait_for
from tests.support.specs import batch_job, service_job

pytestmark = pytest.mark.integration


def by_index(tasks: list[dict]) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = {}
    for t in tasks:
        out.setdefault(t["index"], []).append(t)
    return out


def test_batch_job_of_50_tasks_completes(tmp_path: Path) -> None:
    with cluster(tmp_path, agents=4) as (master, _fleet):
        job = master.submit(batch_job(["sh", "-c", "sleep 0.5"], size=50))
        done = master.wait_job_finished(job["id"], timeout=60)
        assert done["reason"] == "normal", done
        tasks = master.tasks(job["id"])
        assert len(tasks) == 50  # one task per index: nothing retried, nothing duplicated
        assert sorted(t["index"] for t in tasks) == list(range(50))
        assert all(
            t["state"] == "Finished" and t["reason"] == "normal" and t["exit_code"] == 0 for t in tasks
        )
        states = [e["state"] for e in tasks[0]["history"]]
        assert states == ["Accepted", "Launched", "StartInitiated", "Started", "Finished"]


def test_failing_tasks_retry_per_policy_and_the_job_ends_with_the_right_reasons(tmp_path: Path) -> None:
    with cluster(tmp_path) as (master, _fleet):
        failing = master.submit(
            batch_job(["sh", "-c", "sleep 0.1; exit 3"], size=3, retry={"kind": "immediate", "retries": 2})
        )
        delayed = master.submit(
            batch_job(
                ["sh", "-c", "exit 1"],
                size=1,
                retry={"kind": "delayed", "retries": 2, "initial_delay_ms": 400, "delay_ms": 800},
            )
        )
        fine = master.submit(
            batch_job(["sh", "-c", "sleep 0.2"], size=2, retry={"kind": "immediate", "retries": 2})
        )

        job = master.wait_job_finished(failing["id"])
        assert job["reason"] == "failed"
        assert job["reason_detail"] == "3 of 3 tasks failed"
        for index, attempts in by_index(master.tasks(failing["id"])).items():
            assert sorted(t["attempt"] for t in attempts) == [0, 1, 2], index  # 1 run + 2 retries
            assert {(t["reason"], t["exit_code"]) for t in attempts} == {("failed", 3)}

        job = master.wait_job_finished(delayed["id"])
        assert job["reason"] == "failed"
        attempts = sorted(master.tasks(delayed["id"]), key=lambda t: t["attempt"])
        assert [t["attempt"] for t in attempts] == [0, 1, 2]
        # Each retry waited out its delay before it was placed.
        for previous, retry, delay in ((attempts[0], attempts[1], 0.4), (attempts[1], attempts[2], 0.8)):
            launched = next(e["at"] for e in retry["history"] if e["state"] == "Launched")
            assert retry["ready_at"] == pytest.approx(previous["finished_at"] + delay, abs=0.01)
            assert launched >= previous["finished_at"] + delay - 0.01

        job = master.wait_job_finished(fine["id"])
        assert job["reason"] == "normal"
        assert len(master.tasks(fine["id"])) == 2


FAILURES = 20  # about what 6 s of random failures used to be


def test_service_job_keeps_10_running_while_tasks_fail_at_random(tmp_path: Path) -> None:
    rng = random.Random(11)
    with cluster(tmp_path, agents=3) as (master, fleet):
        job = master.submit(service_job(10))
        started = lambda: [t for t in master.tasks(job["id"], ["Started"])]  # noqa: E731
        wait_for(lambda: len(started()) == 10, what="10 started tasks")
        # Fail FAILURES tasks, one every 0.05-0.3 s (a pace, not a deadline: a slow machine just takes
        # longer; the deadline only stops a run in which tasks cannot be failed at all).
        failed = 0
        deadline = time.monotonic() + 120
        while failed < FAILURES:
            assert time.monotonic() < deadline, f"only {failed} of {FAILURES} tasks failed in 120 s"
            running = started()
            live = [
                t for t in master.tasks(job["id"]) if t["state"] != "Finished" and not t.get("kill_reason")
            ]
            assert len(live) <= 10, f"more live tasks than desired: {len(live)}"
            if running:
                victim = rng.choice(running)
                reason = rng.choice([None, None, "crashed"])
                if fleet.fail_task(victim["id"], exit_code=rng.choice([1, 2, 137]), reason=reason):
                    failed += 1
            time.sleep(rng.uniform(0.05, 0.3))
        wait_for(lambda: len(started()) == 10, timeout=30, what="10 started tasks again after the failures")
        tasks = master.tasks(job["id"])
        assert sum(t["state"] != "Finished" for t in tasks) == 10
        ended = Counter(t["reason"] for t in tasks if t["state"] == "Finished")
        assert ended["failed"] + ended["crashed"] >= failed - 1, ended


def test_a_killed_agent_has_its_tasks_marked_lost_and_replaced_elsewhere(tmp_path: Path) -> None:
    with cluster(tmp_path, agents=3) as (master, fleet):
        job = master.submit(service_job(6))
        wait_for(lambda: len(master.tasks(job["id"], ["Started"])) == 6, what="6 started tasks")
        victims = Counter(t["host_id"] for t in master.tasks(job["id"], ["Started"]))
        doomed = victims.most_common(1)[0][0]
        lost_ids = {t["id"] for t in master.tasks(job["id"], ["Started"]) if t["host_id"] == doomed}
        fleet.crash_agent(doomed)

        def replaced() -> bool:
            tasks = master.tasks(job["id"])
            started = [t for t in tasks if t["state"] == "Started"]
            return len(started) == 6 and all(t["host_id"] != doomed for t in started)

        wait_for(replaced, timeout=30, what="the lost tasks to be replaced on other hosts")
        tasks = {t["id"]: t for t in master.tasks(job["id"])}
        for task_id in lost_ids:
            lost = tasks[task_id]
            assert lost["state"] == "Finished" and lost["reason"] == "lost", lost
            assert "Disconnected" in [e["state"] for e in lost["history"]]
        host = master.http.get(f"/api/v1/hosts/{doomed}").json()
        assert host["state"] == "unreachable"


def test_master_restarted_mid_run_reloads_everything_and_the_run_completes(tmp_path: Path) -> None:
    with cluster(tmp_path, agents=3) as (master, _fleet):
        batch = master.submit(batch_job(["sh", "-c", "sleep 2"], size=30))
        service = master.submit(service_job(5))
        wait_for(lambda: len(master.tasks(service["id"], ["Started"])) == 5, what="service started")
        wait_for(lambda: len(master.tasks(batch["id"], ["Started"])) >= 10, what="batch started")
        before = {t["id"]: t for t in master.tasks()}
        service_ids = {t["id"] for t in master.tasks(service["id"], ["Started"])}

        master.kill()  # SIGKILL mid-run: nothing flushed on the way out
        time.sleep(0.5)
        master.start()

        job = master.wait_job_finished(batch["id"], timeout=60)
        assert job["reason"] == "normal"
        tasks = master.tasks(batch["id"])
        per_index = by_index(tasks)
        assert sorted(per_index) == list(range(30))
        for index, attempts in per_index.items():
            assert [t["reason"] for t in attempts] == ["normal"], (index, attempts)  # once, and only once
        # Every task the first master knew is still known, with nothing gone backwards.
        after = {t["id"]: t for t in master.tasks()}
        assert set(before) <= set(after)
        # The service's tasks ran through the restart: same tasks, not replacements.
        wait_for(
            lambda: {t["id"] for t in master.tasks(service["id"], ["Started"])} == service_ids,
            what="the service's original tasks to be Started again",
        )
        assert len([t for t in master.tasks(service["id"]) if t["state"] != "Finished"]) == 5
        status = master.http.get("/api/v1/status").json()
        assert status["loaded"]["jobs"] == 2
        assert status["alerts"] == []
