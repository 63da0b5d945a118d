"""Several masters on one PostgreSQL: one leads, a standby takes over, fencing stops a paused ex-leader."""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from corral.agent.pool import FleetSpec
from tests.support.cluster import Fleet, MasterProcess, client, wait_for
from tests.support.postgres import fresh_database
from tests.support.specs import batch_job, service_job

pytestmark = pytest.mark.integration

HA_ENV = {"CORRAL_LOST_AFTER_S": "30"}  # agents have time to find the new leader


class Pair:
    def __init__(self, tmp: Path, url: str) -> None:
        self.a = MasterProcess(tmp / "a", HA_ENV, store_url=url).start()
        self.b = MasterProcess(tmp / "b", HA_ENV, store_url=url).start(wait=False)
        wait_for(self.b.answers, 30, what="the standby to answer")
        self.urls = f"{self.a.url},{self.b.url}"

    def leader(self) -> MasterProcess:
        return wait_for(lambda: next((m for m in (self.a, self.b) if m.leads()), None), 30, what="a leader")

    def close(self) -> None:
        for m in (self.a, self.b):
            if m.proc is not None and m.proc.poll() is None:
                m.signal(signal.SIGCONT)
            m.close()


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    with fresh_database() as url:
        p = Pair(tmp_path, url)
        try:
            yield p
        except BaseException:
            for m in (p.a, p.b):
                print(f"---- {m.url} ----\n" + m.log()[-15000:])
            raise
        finally:
            p.close()


def test_standbys_redirect_and_agents_and_clients_follow_the_leader(pair: Pair) -> None:
    leader, standby = pair.a, pair.b
    assert leader.leads() and not standby.leads()
    ready = standby.http.get("/readyz")
    assert ready.status_code == 503 and ready.json() == {"status": "standby", "leader": leader.url}
    status = standby.http.get("/api/v1/status").json()
    assert status["role"] == "standby" and status["leader_url"] == leader.url
    redirected = standby.http.post("/api/v1/jobs", json=batch_job(["sleep", "1"]))
    assert redirected.status_code == 307 and redirected.headers["location"] == f"{leader.url}/api/v1/jobs"
    with client(base_url=standby.url, follow_redirects=True) as follower:  # a client that follows
        assert follower.post("/api/v1/jobs", json=batch_job(["sleep", "1"])).status_code == 201
    fleet = Fleet(f"{standby.url},{leader.url}", FleetSpec(count=2, heartbeat_backoff_max_s=0.5))
    try:
        fleet.wait_connected()
        hosts = leader.http.get("/api/v1/hosts").json()["items"]
        assert {h["id"] for h in hosts} == {"sim-0000", "sim-0001"}
    finally:
        fleet.close()


def test_the_leader_killed_during_a_burst_loses_nothing(pair: Pair) -> None:
    # Room for every task, addresses included (each task takes one on an interface): 4 x 8 x 64.
    spec = FleetSpec(
        count=4, cpu=64, memory_mb=1 << 20, heartbeat_backoff_max_s=0.5, addresses_per_interface=64
    )
    fleet = Fleet(pair.urls, spec)
    try:
        fleet.wait_connected()
        first = pair.leader()
        service = first.submit(service_job(5))
        wait_for(lambda: len(first.tasks(service["id"], ["Started"])) == 5, 30, what="the service up")
        running = {t["id"] for t in first.tasks(service["id"], ["Started"])}

        acked: dict[int, str] = {}  # submission number -> job id, for every 2xx
        lock = threading.Lock()
        counter = iter(range(2000))

        def submit() -> None:
            with client(timeout=10, follow_redirects=True) as http:
                for n in counter:
                    spec = batch_job(["sleep", "600"], application="burst")
                    spec["container"]["resources"].update(
                        cpu=0.01, memory_mb=16, shm_mb=8, network_mbps=1, disk_mb=10
                    )
                    spec["labels"] = {"submission": str(n)}
                    deadline = time.monotonic() + 30
                    bases = pair.urls.split(",")
                    while time.monotonic() < deadline:
                        base = bases[0]
                        try:
                            r = http.post(f"{base}/api/v1/jobs", json=spec)
                        except httpx.ConnectError:  # refused: certainly not taken, safe to send elsewhere
                            bases.append(bases.pop(0))
                            continue
                        except httpx.TransportError:
                            break  # cut off mid-request: it may or may not be taken, so never sent again
                        if r.status_code == 503:  # no leader right now: not taken, safe to send again
                            time.sleep(0.1)
                            continue
                        if r.status_code == 201:
                            with lock:
                                acked[n] = r.json()["id"]
                        break

        threads = [threading.Thread(target=submit) for _ in range(8)]
        for t in threads:
            t.start()
        wait_for(lambda: len(acked) >= 400, 60, interval=0.01, what="a quarter of the burst")
        first.kill()  # kill -9 the leader mid-burst
        for t in threads:
            t.join(120)
        second = pair.leader()
        assert second is not first
        assert len(acked) >= 1000, f"only {len(acked)} submissions were acknowledged"

        jobs: list[dict[str, Any]] = []
        after = None
        while True:
            params: dict[str, Any] = {"application": "burst", "limit": 1000}
            if after:
                params["after"] = after
            page = second.http.get("/api/v1/jobs", params=params).json()
            jobs.extend(page["items"])
            after = page["next"]
            if not after:
                break
        per_submission = Counter(j["descriptor"]["labels"]["submission"] for j in jobs)
        assert max(per_submission.values()) == 1  # nothing duplicated
        by_id = {j["id"] for j in jobs}
        assert all(job_id in by_id for job_id in acked.values())  # every acknowledged submission exists
        # Every job gets exactly one task, and they all start on the agents, which found the new leader.
        wait_for(
            lambda: len(second.tasks(states=["Started"])) == len(jobs) + 5, 120, what="every task started"
        )
        tasks = [t for t in second.tasks() if t["job_id"] in by_id]
        assert Counter(t["job_id"] for t in tasks) == Counter({j: 1 for j in by_id})
        # The service's tasks ran through the failover: the same tasks, still Started.
        assert {t["id"] for t in second.tasks(service["id"], ["Started"])} == running
        assert second.http.get("/api/v1/status").json()["hosts"] == {"ready": 4}
    finally:
        fleet.close()


def test_an_idempotency_key_finds_its_job_after_a_failover(pair: Pair) -> None:
    """The new leader holds no key in memory: it looks each up in the store (on PostgreSQL, from its event
    loop on a connection of its own, store/pgkeys.py)."""
    first = pair.leader()
    spec = batch_job(["sleep", "600"], application="keyed")
    made = first.http.post("/api/v1/jobs", json=spec, headers={"Idempotency-Key": "k-failover"})
    assert made.status_code == 201, made.text
    first.kill()
    second = pair.leader()
    assert second is not first
    again = second.http.post("/api/v1/jobs", json=spec, headers={"Idempotency-Key": "k-failover"})
    assert again.status_code == 200, again.text
    assert again.json()["id"] == made.json()["id"]
    other = dict(spec, application="another")
    reused = second.http.post("/api/v1/jobs", json=other, headers={"Idempotency-Key": "k-failover"})
    assert reused.status_code == 409 and reused.json()["code"] == "idempotency_key_reused"
    fresh = second.http.post("/api/v1/jobs", json=other, headers={"Idempotency-Key": "k-new"})
    assert fresh.status_code == 201 and fresh.json()["id"] != made.json()["id"]
    assert len(second.http.get("/api/v1/jobs", params={"application": "keyed"}).json()["items"]) == 1


def test_a_frozen_leader_that_wakes_up_cannot_write(pair: Pair) -> None:
    fleet = Fleet(pair.urls, FleetSpec(count=2, heartbeat_backoff_max_s=0.5, ping_interval_s=1.0))
    try:
        fleet.wait_connected()
        old = pair.leader()
        job = old.submit(service_job(3))
        wait_for(lambda: len(old.tasks(job["id"], ["Started"])) == 3, 30, what="the service up")
        old.signal(signal.SIGSTOP)
        new = wait_for(lambda: pair.b if pair.b.leads() else None, 30, what="the standby to take over")
        wait_for(
            lambda: new.http.get("/api/v1/status").json().get("hosts") == {"ready": 2},
            30,
            what="the agents to follow",
        )
        took_over = time.time()
        old.signal(signal.SIGCONT)  # it wakes up believing it leads, with stale sessions to clean up
        wait_for(
            lambda: old.http.get("/api/v1/status").json()["role"] == "standby",
            30,
            what="the old leader to step down",
        )
        assert "writes refused" in old.log() or "another master holds the lease" in old.log()
        # Nothing the old leader tried after the takeover reached the store.
        for task in new.tasks(job["id"]):
            assert task["state"] == "Started"
            assert all(e["at"] < took_over or e["state"] != "Disconnected" for e in task["history"])
        status = old.http.get("/api/v1/status").json()
        assert status["leader_url"] == new.url
    finally:
        fleet.close()


def test_a_store_with_a_newer_schema_or_a_bad_row_is_not_led(tmp_path: Path) -> None:
    import psycopg

    from tests.support.postgres import SERVER

    with fresh_database() as url:
        m = MasterProcess(tmp_path / "m", store_url=url).start()
        job = m.submit(batch_job(["sleep", "100"]))
        m.close()
        schema = url.rsplit("%3D", 1)[1]
        with psycopg.connect(f"postgresql://{SERVER}", autocommit=True) as conn:
            conn.execute(
                f"UPDATE {schema}.corral_jobs SET body = '{{\"broken\": 1}}' WHERE id = %s", (job["id"],)
            )
        broken = MasterProcess(tmp_path / "broken", store_url=url).start(wait=False)
        assert broken.proc is not None and broken.proc.wait(30) != 0
        assert f"job {job['id']} cannot be decoded" in broken.log() and "refusing to lead" in broken.log()
        broken.http.close()
        with psycopg.connect(f"postgresql://{SERVER}", autocommit=True) as conn:
            conn.execute(f"UPDATE {schema}.corral_schema_version SET version = version + 1")
            assert conn.execute(f"SELECT count(*) FROM {schema}.corral_jobs").fetchone() == (1,)
        newer = MasterProcess(tmp_path / "newer", store_url=url).start(wait=False)
        assert newer.proc is not None and newer.proc.wait(30) != 0
        assert "newer than this Corral knows" in newer.log()
        newer.http.close()


def test_the_leader_rides_out_lost_database_connections(tmp_path: Path) -> None:
    import psycopg

    from tests.support.postgres import SERVER

    with fresh_database() as url:
        m = MasterProcess(tmp_path / "m", HA_ENV, store_url=url).start()
        try:
            before = m.submit(batch_job(["sleep", "100"]))
            with psycopg.connect(f"postgresql://{SERVER}", autocommit=True) as conn:
                killed = conn.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = 'test' AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
                ).fetchone()
            assert killed is not None and killed[0] >= 1  # the master's pooled connections are gone
            after = m.submit(batch_job(["sleep", "100"]))  # it reconnects and goes on
            assert m.leads()
            assert {j["id"] for j in m.http.get("/api/v1/jobs").json()["items"]} == {
                before["id"],
                after["id"],
            }
        finally:
            m.close()


def test_a_rollout_survives_the_leader_killed_mid_way(pair: Pair) -> None:
    """The new leader carries the rollout on from the tasks as they are: nothing replaced twice."""
    from tests.integration.test_rollouts import probed_service, with_version

    fleet = Fleet(pair.urls, FleetSpec(count=3, heartbeat_backoff_max_s=0.5))
    try:
        fleet.wait_connected()
        first = pair.leader()
        spec = probed_service(6, ["true"], max_surge=1, max_unavailable=0, min_healthy_s=1.0)
        spec["container"]["health"]["readiness"]["interval_s"] = 0.5
        spec["container"]["health"]["readiness"]["timeout_s"] = 0.5
        job_id = first.submit(spec)["id"]

        def ready(m: MasterProcess, version: int | None = None) -> list[dict[str, Any]]:
            return [
                t
                for t in m.tasks(job_id)
                if t["state"] == "Started" and t.get("ready") and (version is None or t["version"] == version)
            ]

        wait_for(lambda: len(ready(first)) == 6, 30, what="6 ready tasks")
        first.http.put(f"/api/v1/jobs/{job_id}/spec", json=with_version(spec, "v2")).raise_for_status()
        wait_for(lambda: len(ready(first, 2)) >= 2, 60, what="the rollout under way")
        first.kill()
        second = pair.leader()
        assert second is not first

        def phase() -> str:
            r = second.http.get(f"/api/v1/jobs/{job_id}/rollout").json().get("rollout") or {}
            return str(r.get("phase"))

        wait_for(lambda: phase() == "succeeded", 90, what="the new leader to finish the rollout")

        # The last old task may still be stopping when the rollout counts as done: wait for it to end.
        def settled() -> list[dict[str, Any]] | None:
            tasks = second.tasks(job_id)
            return tasks if all(t["version"] == 2 for t in tasks if t["state"] != "Finished") else None

        tasks = wait_for(settled, 30, what="the last old task to stop")
        assert sorted(t["version"] for t in tasks if t["state"] != "Finished") == [2] * 6
        # One replacement per old task: 6 of version 1, 6 of version 2, and none made twice.
        made = Counter(t["version"] for t in tasks)
        assert made == {1: 6, 2: 6}, made
    finally:
        fleet.close()


def test_a_drain_survives_the_leader_killed_mid_way(pair: Pair) -> None:
    """The new leader finishes the drain from the tasks as they are: each task moved once, budget held."""
    from tests.integration.test_rollouts import Poller, probed_service

    fleet = Fleet(pair.urls, FleetSpec(count=4, heartbeat_backoff_max_s=0.5))
    try:
        fleet.wait_connected()
        first = pair.leader()
        spec = probed_service(8, ["true"])
        spec["disruption_budget"] = {"availability_percentage": 75}
        job_id = first.submit(spec)["id"]

        def ready(m: MasterProcess) -> list[dict[str, Any]]:
            return [
                t
                for t in m.tasks(job_id)
                if t["state"] == "Started" and t.get("ready") and not t.get("kill_reason")
            ]

        wait_for(lambda: len(ready(first)) == 8, 30, what="8 ready tasks")
        host = Counter(t["host_id"] for t in ready(first)).most_common(1)[0][0]
        on_host = {t["id"] for t in ready(first) if t["host_id"] == host}
        assert len(on_host) >= 2
        first.http.post(f"/api/v1/hosts/{host}/drain").raise_for_status()
        wait_for(
            lambda: any(t["reason"] == "relocated" for t in first.tasks(job_id) if t["id"] in on_host),
            60,
            what="the first task moved",
        )
        first.kill()
        second = pair.leader()
        assert second is not first
        poller = Poller(second, job_id, lambda: len(ready(second)))
        wait_for(
            lambda: second.http.get(f"/api/v1/hosts/{host}/drain").json().get("remaining") == 0,
            90,
            what="the new leader to finish the drain (once the host has registered with it)",
        )
        assert poller.stop() >= 6  # 75 % of 8
        tasks = second.tasks(job_id)
        assert all(t["reason"] == "relocated" for t in tasks if t["id"] in on_host)
        # One replacement per moved task (a relocation the old leader started is not started again).
        assert len(tasks) == 8 + len(on_host), Counter(t["state"] for t in tasks)
        assert len(ready(second)) == 8
    finally:
        fleet.close()
