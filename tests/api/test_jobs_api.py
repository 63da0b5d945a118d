"""The REST API against a running master with simulated agents: jobs, tasks, hosts, events."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from httpx_sse import connect_sse

from corral.agent.pool import FleetSpec
from tests.support.cluster import Fleet, MasterProcess, client, wait_for
from tests.support.specs import batch_job, service_job, with_changes

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MasterProcess]:
    m = MasterProcess(Path(tmp_path_factory.mktemp("api"))).start()
    fleet = Fleet(m.url, FleetSpec(count=3, cpu=8, heartbeat_backoff_max_s=1.0))
    fleet.wait_connected()
    try:
        yield m
    except BaseException:
        print(m.log()[-20000:])
        raise
    finally:
        fleet.close()
        m.close()


def live(master: MasterProcess, job_id: str) -> list[dict[str, Any]]:
    return [t for t in master.tasks(job_id) if t["state"] != "Finished"]


def started(master: MasterProcess, job_id: str) -> list[dict[str, Any]]:
    return master.tasks(job_id, ["Started"])


def test_submit_get_and_list_with_filters(master: MasterProcess) -> None:
    a = master.submit(
        with_changes(batch_job(["sleep", "30"], size=1, application="alpha"), "labels", {"team": "red"})
    )
    b = master.submit(
        with_changes(service_job(1, application="beta"), "owner.team_email", "other@example.com")
    )
    assert a["state"] == "Accepted" and a["type"] == "batch"
    assert master.job(a["id"])["descriptor"]["labels"] == {"team": "red"}

    def ids(**params: Any) -> list[str]:
        return [j["id"] for j in master.http.get("/api/v1/jobs", params=params).json()["items"]]

    assert a["id"] in ids(application="alpha") and b["id"] not in ids(application="alpha")
    assert ids(owner="other@example.com") == [b["id"]]
    assert b["id"] in ids(type="service") and a["id"] not in ids(type="service")
    assert ids(label="team=red") == [a["id"]]
    assert ids(label=["team=red", "team=blue"]) == []
    assert a["id"] in ids(state="Accepted")
    for job in (a, b):
        master.http.post(f"/api/v1/jobs/{job['id']}/kill")


def test_paging_walks_active_and_finished_jobs_in_creation_order(master: MasterProcess) -> None:
    made = [master.submit(batch_job(["true"], application="pager"))["id"] for _ in range(5)]
    for job_id in made[:3]:
        master.wait_job_finished(job_id)
    seen: list[str] = []
    after = None
    while True:
        params: dict[str, Any] = {"application": "pager", "limit": 2}
        if after:
            params["after"] = after
        page = master.http.get("/api/v1/jobs", params=params).json()
        assert len(page["items"]) <= 2
        seen.extend(j["id"] for j in page["items"])
        after = page["next"]
        if not after:
            break
    assert seen == sorted(made)


def test_kill_job_kills_its_tasks_and_finishes_it(master: MasterProcess) -> None:
    job = master.submit(service_job(3, application="killme"))
    wait_for(lambda: len(started(master, job["id"])) == 3, what="3 started")
    r = master.http.post(f"/api/v1/jobs/{job['id']}/kill")
    assert r.status_code == 200 and r.json()["state"] in ("KillInitiated", "Finished")
    done = master.wait_job_finished(job["id"])
    assert done["reason"] == "killed"
    assert {t["reason"] for t in master.tasks(job["id"])} == {"killed"}
    again = master.http.post(f"/api/v1/jobs/{job['id']}/kill")
    assert (again.status_code, again.json()["code"]) == (409, "job_finished")


def test_resize_enable_disable_and_task_kill_with_shrink(master: MasterProcess) -> None:
    job = master.submit(service_job(2, application="resizer"))
    jid = job["id"]
    wait_for(lambda: len(started(master, jid)) == 2, what="2 started")

    r = master.http.put(f"/api/v1/jobs/{jid}/capacity", json={"min": 1, "desired": 4, "max": 6})
    assert r.status_code == 200 and r.json()["descriptor"]["service"]["capacity"]["desired"] == 4
    wait_for(lambda: len(started(master, jid)) == 4, what="4 started after resize up")

    r = master.http.put(f"/api/v1/jobs/{jid}/capacity", json={"min": 1, "desired": 7, "max": 6})
    assert (r.status_code, r.json()["code"], r.json()["field"]) == (400, "invalid_capacity", "capacity")

    master.http.put(f"/api/v1/jobs/{jid}/capacity", json={"min": 1, "desired": 2, "max": 6})
    wait_for(lambda: len(live(master, jid)) == 2, what="2 live after resize down")
    assert sum(t["reason"] == "scaled_down" for t in master.tasks(jid)) == 2

    victim = started(master, jid)[0]
    r = master.http.post(f"/api/v1/tasks/{victim['id']}/kill", params={"shrink": "true"})
    assert r.status_code == 200
    wait_for(lambda: len(live(master, jid)) == 1, what="1 live after a shrinking kill")
    assert master.job(jid)["descriptor"]["service"]["capacity"]["desired"] == 1
    last = started(master, jid)[0]
    r = master.http.post(f"/api/v1/tasks/{last['id']}/kill", params={"shrink": "true"})
    assert (r.status_code, r.json()["code"]) == (409, "below_min_capacity")

    r = master.http.post(f"/api/v1/tasks/{last['id']}/kill")  # no shrink: replaced
    assert r.status_code == 200
    wait_for(lambda: [t["id"] for t in started(master, jid)] not in ([], [last["id"]]), what="a replacement")

    assert master.http.put(f"/api/v1/jobs/{jid}/enabled", json={"enabled": False}).status_code == 200
    wait_for(lambda: live(master, jid) == [], what="no live tasks while disabled")
    assert master.http.put(f"/api/v1/jobs/{jid}/enabled", json={"enabled": True}).status_code == 200
    wait_for(lambda: len(started(master, jid)) == 1, what="back to desired when enabled")
    master.http.post(f"/api/v1/jobs/{jid}/kill")


def test_batch_jobs_refuse_service_operations(master: MasterProcess) -> None:
    job = master.submit(batch_job(["sleep", "30"], application="batchonly"))
    r = master.http.put(f"/api/v1/jobs/{job['id']}/capacity", json={"min": 0, "desired": 2, "max": 3})
    assert (r.status_code, r.json()["code"]) == (409, "not_a_service_job")
    r = master.http.put(f"/api/v1/jobs/{job['id']}/enabled", json={"enabled": False})
    assert (r.status_code, r.json()["code"]) == (409, "not_a_service_job")
    task = wait_for(lambda: started(master, job["id"]), what="started")[0]
    r = master.http.post(f"/api/v1/tasks/{task['id']}/kill", params={"shrink": "true"})
    assert (r.status_code, r.json()["code"]) == (409, "not_a_service_job")
    # A killed batch task runs its index again without spending a retry.
    assert master.http.post(f"/api/v1/tasks/{task['id']}/kill").status_code == 200
    rerun = wait_for(
        lambda: [t for t in started(master, job["id"]) if t["id"] != task["id"]], what="a rerun"
    )[0]
    assert (rerun["index"], rerun["attempt"], rerun["resubmit_of"]) == (0, 0, task["id"])
    master.http.post(f"/api/v1/jobs/{job['id']}/kill")


def test_runtime_limit_ends_a_task_and_is_retried_only_if_asked(master: MasterProcess) -> None:
    plain = master.submit(batch_job(["sleep", "100"], runtime_limit_s=1, application="limited"))
    retried = master.submit(
        batch_job(
            ["sleep", "100"],
            runtime_limit_s=1,
            retry_on_runtime_limit=True,
            retry={"kind": "immediate", "retries": 1},
            application="limited",
        )
    )
    job = master.wait_job_finished(plain["id"], timeout=20)
    assert job["reason"] == "failed"
    [task] = master.tasks(plain["id"])
    assert task["reason"] == "runtime_limit_exceeded"
    assert 1.0 <= task["finished_at"] - task["started_at"] < 3.0
    master.wait_job_finished(retried["id"], timeout=20)
    assert [t["reason"] for t in master.tasks(retried["id"])] == ["runtime_limit_exceeded"] * 2


def test_a_task_that_fits_nowhere_says_why(master: MasterProcess) -> None:
    job = master.submit(with_changes(batch_job(["true"], application="huge"), "container.resources.cpu", 64))
    task = wait_for(lambda: (t := master.tasks(job["id"])) and t[0].get("pending") and t[0], what="a reason")
    assert task["state"] == "Accepted"
    assert task["pending"]["reason"] == "no_capacity"
    assert "cpu" in task["pending"]["message"]
    placement = master.http.get(f"/api/v1/tasks/{task['id']}/placement").json()
    assert placement["pending"]["rejections"]["resources:cpu"] == 3
    master.http.post(f"/api/v1/jobs/{job['id']}/kill")
    assert master.wait_job_finished(job["id"])["reason"] == "killed"


def test_job_group_is_unique_among_active_jobs(master: MasterProcess) -> None:
    spec = {
        **service_job(1, application="grouped"),
        "job_group": {"stack": "prod", "detail": "api", "sequence": "v1"},
    }
    first = master.submit(spec)
    r = master.http.post("/api/v1/jobs", json=spec)
    assert (r.status_code, r.json()["code"], r.json()["field"]) == (409, "job_group_conflict", "job_group")
    master.http.post(f"/api/v1/jobs/{first['id']}/kill")
    master.wait_job_finished(first["id"])
    assert master.http.post("/api/v1/jobs", json=spec).status_code == 201  # free again once finished


def test_hosts_show_capacity_and_allocation(master: MasterProcess) -> None:
    hosts = master.http.get("/api/v1/hosts").json()["items"]
    assert [h["id"] for h in hosts] == ["sim-0000", "sim-0001", "sim-0002"]
    for h in hosts:
        assert h["state"] == "ready" and h["resources"]["cpu"] == 8
        assert h["free"]["cpu"] == pytest.approx(h["resources"]["cpu"] - h["allocated"]["cpu"])


def test_event_stream_sends_snapshot_marker_then_updates(master: MasterProcess) -> None:
    job = master.submit(batch_job(["sleep", "0.3"], size=2, application="watched"))
    events: list[tuple[str, dict[str, Any]]] = []
    finished = threading.Event()

    def listen() -> None:
        with (
            client(base_url=master.url, timeout=30) as http,
            connect_sse(http, "GET", "/api/v1/events", params={"job": job["id"]}) as source,
        ):
            for sse in source.iter_sse():
                events.append((sse.event, sse.json()))
                if sse.event == "job" and sse.json()["state"] == "Finished":
                    finished.set()
                    return

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    assert finished.wait(30), events
    kinds = [k for k, _ in events]
    marker = kinds.index("snapshot_end")
    assert kinds[0] == "job" and marker >= 1
    after = [(k, d) for k, d in events[marker + 1 :]]
    assert {d["job_id"] for k, d in after if k == "task"} == {job["id"]}
    assert "Finished" in [d["state"] for k, d in after if k == "task"]


def test_openapi_describes_the_api(master: MasterProcess) -> None:
    spec = master.http.get("/openapi.json").json()
    for path in ("/api/v1/jobs", "/api/v1/jobs/{job_id}", "/api/v1/tasks", "/api/v1/hosts", "/api/v1/events"):
        assert path in spec["paths"], path
    assert "JobSpec" in spec["components"]["schemas"]


def test_prune_removes_old_finished_jobs(master: MasterProcess) -> None:
    job = master.submit(batch_job(["true"], application="prunable"))
    master.wait_job_finished(job["id"])
    wait_for(
        lambda: (
            master.http.post("/api/v1/admin/prune", json={"older_than_s": 0}).json()["pruned_jobs"] >= 0
            and master.http.get(f"/api/v1/jobs/{job['id']}").status_code == 404
        ),
        what="the job to be pruned",
    )
