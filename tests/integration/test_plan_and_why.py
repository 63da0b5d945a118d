"""``corral job plan`` and ``corral why`` against a real master and simulated agents: a dry run says where
a job's tasks would go and, for the ones that would wait, what would make them fit (a capacity group's
limit, more hosts of a host group, another job's tasks finishing) — storing nothing; and ``why`` on a
placed task ranks its host against the best others, scorer by scorer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.cluster import MasterProcess, cluster, wait_for
from tests.support.specs import batch_job, with_changes

pytestmark = pytest.mark.integration

# Three simulated hosts of 8 cpu and 32 GB each (zones a, b, c), host group "default".
AGENTS = 3


def corral(master: MasterProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CORRAL_MASTER": master.url, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "corral", *args], capture_output=True, text=True, env=env, timeout=60
    )


def plan(master: MasterProcess, spec: dict[str, Any]) -> dict[str, Any]:
    r = master.http.post("/api/v1/jobs/plan", json=spec)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def kinds(answer: dict[str, Any]) -> list[str]:
    return [s["kind"] for s in answer["suggestions"]]


def suggestion(answer: dict[str, Any], kind: str) -> dict[str, Any]:
    (found,) = [s for s in answer["suggestions"] if s["kind"] == kind]
    return found


def counts(master: MasterProcess) -> tuple[int, int]:
    jobs = master.http.get("/api/v1/jobs", params={"limit": 1000}).json()["items"]
    return len(jobs), len(master.tasks())


def job(cpu: float, size: int, **changes: Any) -> dict[str, Any]:
    spec = with_changes(
        batch_job(["sleep", "1000"], size=size, application="planned"), "container.resources.cpu", cpu
    )
    for path, value in changes.items():
        spec = with_changes(spec, path.replace("__", "."), value)
    return spec


def started(master: MasterProcess, job_id: str, n: int) -> list[dict[str, Any]]:
    return wait_for(
        lambda: len(t := master.tasks(job_id, ["Started"])) == n and t,
        what=f"{n} tasks of {job_id} started",
    )


def test_a_plan_that_fits_says_where_and_stores_nothing(tmp_path: Path) -> None:
    with cluster(tmp_path, agents=AGENTS) as (master, _fleet):
        before = counts(master)
        answer = plan(master, job(1.0, 4))
        assert (answer["job"]["tasks"], answer["placed"], answer["unplaced"]) == (4, 4, 0)
        assert sum(h["tasks"] for h in answer["hosts"]) == 4
        assert {h["host_id"] for h in answer["hosts"]} <= {
            h["id"] for h in master.http.get("/api/v1/hosts").json()["items"]
        }
        assert answer["suggestions"] == [] and answer["reasons"] == []
        assert answer["job"]["mode"] == "pack" and answer["job"]["capacity_group"] == "default"

        # Bad input gets the 400 a submission gets, with the same stable code.
        for bad in (
            with_changes(job(1.0, 1), "owner.team_email", "nobody"),
            with_changes(job(1.0, 1), "capacity_group", "nosuchgroup"),
            with_changes(job(1.0, 1), "batch.size", 0),
            with_changes(job(1.0, 1), "container.resources.cpu", "lots"),
            with_changes(job(1.0, 1), "batch", ...),
        ):
            planned = master.http.post("/api/v1/jobs/plan", json=bad)
            submitted = master.http.post("/api/v1/jobs", json=bad)
            assert planned.status_code == submitted.status_code == 400, (planned.text, submitted.text)
            assert planned.json()["code"] == submitted.json()["code"]

        # The CLI: a table for people, the answer itself with --json.
        spec = tmp_path / "job.yaml"
        spec.write_text(json.dumps(job(1.0, 4)))
        human = corral(master, "job", "plan", "-f", str(spec))
        assert human.returncode == 0, human.stderr
        assert "4 placed" in human.stdout and "nothing was stored" in human.stdout
        machine = corral(master, "--json", "job", "plan", "-f", str(spec))
        assert machine.returncode == 0, machine.stderr
        assert json.loads(machine.stdout)["placed"] == 4
        assert counts(master) == before  # nothing stored, nothing placed


def test_a_plan_blocked_by_its_capacity_groups_limit_says_how_much_more_it_needs(tmp_path: Path) -> None:
    with cluster(tmp_path, agents=AGENTS) as (master, _fleet):
        r = master.http.put(
            "/api/v1/capacity-groups/capped", json={"tier": "flex", "limit": {"cpu": 3, "memory_mb": 0}}
        )
        assert r.status_code == 200, r.text
        running = master.submit(job(1.0, 2, capacity_group="capped"))
        started(master, running["id"], 2)  # the group holds 2 of its 3 cpu
        before = counts(master)
        answer = plan(master, job(1.0, 4, capacity_group="capped"))
        assert (answer["placed"], answer["unplaced"]) == (1, 3)
        assert answer["reasons"][0]["reason"] == "group_limit"
        limit = suggestion(answer, "group_limit")
        assert limit["complete"] and limit["group"] == "capped"
        assert limit["rise"] == {"cpu": 3.0} and limit["limit"] == {"cpu": 6.0}
        assert "capped's limit rises: cpu by 3 (to 6)" in limit["message"]
        assert kinds(answer) == ["group_limit"]
        assert counts(master) == before


def test_a_plan_that_needs_more_hosts_names_the_host_group_and_how_many(tmp_path: Path) -> None:
    with cluster(tmp_path, agents=AGENTS) as (master, _fleet):
        big = job(6.0, 5)  # one a host: three fit
        answer = plan(master, big)
        assert (answer["placed"], answer["unplaced"]) == (3, 2)
        assert "no host group is configured" in suggestion(answer, "no_host_group")["message"]
        assert suggestion(answer, "scheduler_reason")["reason"] == "no_capacity"

        group = {
            "shape": {"resources": {"cpu": 16, "memory_mb": 65536}, "zones": ["zone-a"]},
            "max_size": 10,
            "provider": {"kind": "none"},  # shown and explained, never scaled
        }
        r = master.http.put("/api/v1/hostgroups/large", json=group)
        assert r.status_code == 200, r.text
        answer = plan(master, big)
        more = suggestion(answer, "more_hosts")
        assert more["complete"] and more["hosts"] == {"large": 1}
        assert more["message"].startswith("fits with 1 more host of host group large")
        assert "scheduler_reason" not in kinds(answer)

        huge = plan(master, job(32.0, 1))  # no shape holds it: the scheduler's own reason says why
        assert "shape" in suggestion(huge, "no_shape")["message"]
        assert suggestion(huge, "scheduler_reason")["reason"] == "no_capacity"


def test_a_plan_that_fits_once_another_jobs_tasks_finish(tmp_path: Path) -> None:
    with cluster(tmp_path, agents=AGENTS) as (master, _fleet):
        other = master.submit(job(6.0, 3))  # 6 of each host's 8 cpu
        started(master, other["id"], 3)
        answer = plan(master, job(4.0, 2))
        assert (answer["placed"], answer["unplaced"]) == (0, 2)
        after = suggestion(answer, "after_tasks_finish")
        # One of its tasks finishing frees a whole host: both new tasks fit there (pack mode).
        assert after["complete"] and after["jobs"] == {other["id"]: 1}
        assert len(after["task_ids"]) == 1 and len(after["on_hosts"]) == 1
        assert f"after 1 running task of job {other['id']} finish" in after["message"]
        assert len(master.tasks(other["id"], ["Started"])) == 3  # a plan stops nothing


def test_why_on_a_placed_task_ranks_its_host_against_the_best_others(tmp_path: Path) -> None:
    with cluster(tmp_path, agents=AGENTS) as (master, _fleet):
        spec = job(1.0, 2)
        waiting = master.submit(job(64.0, 1))  # fits nowhere: no ranking for a task that waits
        placed = master.submit(spec)
        task = started(master, placed["id"], 2)[0]
        r = master.http.get(f"/api/v1/tasks/{task['id']}/placement")
        assert r.status_code == 200, r.text
        ranking = r.json()["ranking"]
        assert ranking["chosen"]["host_id"] == task["host_id"]
        assert ranking["chosen"]["feasible"] and ranking["chosen"]["rank"] >= 1
        assert len(ranking["others"]) == AGENTS - 1 and ranking["feasible"] == AGENTS
        assert task["host_id"] not in {o["host_id"] for o in ranking["others"]}
        assert ranking["mode"] == "pack" and "as of now" in ranking["note"]
        weights = set(ranking["weights"])
        assert {"binpack_cpu", "binpack_memory"} <= weights
        for row in (ranking["chosen"], *ranking["others"]):
            assert set(row["contributions"]) == weights
            assert sum(row["contributions"].values()) == pytest.approx(row["score"], abs=1e-4)
        # Pack mode: its host holds the job's other task too, so it stays the fullest, best choice.
        assert ranking["chosen"]["rank"] == 1
        one = master.http.get(f"/api/v1/tasks/{task['id']}/placement", params={"top": 1}).json()
        assert len(one["ranking"]["others"]) == 1

        pending = wait_for(lambda: (t := master.tasks(waiting["id"])) and t[0], what="the big task")
        assert "ranking" not in master.http.get(f"/api/v1/tasks/{pending['id']}/placement").json()

        out = corral(master, "why", task["id"])
        assert out.returncode == 0, out.stderr
        assert "why this host" in out.stdout and task["host_id"] in out.stdout and "binpack_cpu" in out.stdout
        assert "(its host)" in out.stdout
