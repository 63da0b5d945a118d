"""The agent protocol at the wire: heartbeats, reconnects, and the reconciliation safety rule."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.support.cluster import AGENT_TOKEN, MasterProcess, cluster, wait_for
from tests.support.specs import batch_job, service_job

AGENT = {"Authorization": f"Bearer {AGENT_TOKEN}"}

pytestmark = pytest.mark.integration


def register_message(agent_id: str, tasks: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "type": "register",
        "agent_id": agent_id,
        "resources": {"cpu": 4, "memory_mb": 8192, "disk_mb": 10000, "network_mbps": 1000, "gpu": 0},
        "attributes": {"zone": "zone-x", "instance_type": "test", "host_group": "default", "custom": {}},
        "runtime": "sim",
        "tasks": tasks,
    }


async def register_and_listen(
    url: str,
    agent_id: str,
    tasks: list[dict[str, Any]],
    seconds: float,
    until: Callable[[dict[str, Any]], bool] | None = None,
) -> list[dict]:
    """Register as an agent reporting ``tasks`` and return every message the master sends for a while
    (or until a message satisfies ``until``)."""
    received: list[dict] = []
    async with connect(
        url.replace("http://", "ws://") + "/api/v1/agents/stream", additional_headers=AGENT
    ) as ws:
        await ws.send(json.dumps(register_message(agent_id, tasks)))
        deadline = time.monotonic() + seconds
        beats = 0
        while (left := deadline - time.monotonic()) > 0:
            try:  # heartbeats keep the session alive while the master has nothing to say
                received.append(json.loads(await asyncio.wait_for(ws.recv(), min(left, 0.3))))
                if until is not None and until(received[-1]):
                    break
            except TimeoutError:
                pass
            beats += 1
            await ws.send(json.dumps({"type": "heartbeat", "seq": beats}))
    return received


def test_an_agent_that_stops_heartbeating_goes_unreachable_and_its_tasks_come_back(tmp_path: Path) -> None:
    with cluster(tmp_path, agents=2) as (master, fleet):
        job = master.submit(service_job(2))
        wait_for(lambda: len(master.tasks(job["id"], ["Started"])) == 2, what="2 started")
        ids = {t["id"] for t in master.tasks(job["id"])}
        host = master.tasks(job["id"])[0]["host_id"]
        agent = fleet.pool.agent(host)
        agent.paused = True  # the connection stays open, but the agent falls silent
        wait_for(
            lambda: master.http.get(f"/api/v1/hosts/{host}").json()["state"] == "unreachable",
            what="the host to be unreachable",
        )
        disconnected = [t for t in master.tasks(job["id"]) if t["host_id"] == host]
        assert disconnected and all(t["state"] == "Disconnected" for t in disconnected)
        agent.paused = False  # it reconnects (the master closed the silent connection) and re-registers
        wait_for(
            lambda: master.http.get(f"/api/v1/hosts/{host}").json()["state"] == "ready",
            what="the host to come back",
        )
        wait_for(lambda: len(master.tasks(job["id"], ["Started"])) == 2, what="tasks Started again")
        # Same tasks as before: back from Disconnected, not replaced.
        assert {t["id"] for t in master.tasks(job["id"])} == ids


async def heartbeats(ws: Any) -> None:
    seq = 0
    while True:
        await asyncio.sleep(0.3)
        seq += 1
        await ws.send(json.dumps({"type": "heartbeat", "seq": seq}))


def test_a_few_unknown_tasks_are_killed_but_many_raise_an_alert_and_nothing_is_killed(tmp_path: Path) -> None:
    master = MasterProcess(tmp_path / "m").start()
    try:
        few = [{"task_id": f"ghost-{i}", "state": "Started"} for i in range(2)]
        # Held until the new leader has settled (CORRAL_UNKNOWN_TASK_SETTLE_S), then killed: within budget.
        messages = asyncio.run(
            register_and_listen(master.url, "host-few", few, 20, until=lambda m: m["type"] == "kill")
        )
        kills = [m for m in messages if m["type"] == "kill"]
        assert {k["task_id"] for m in kills for k in m["tasks"]} == {"ghost-0", "ghost-1"}
        assert master.http.get("/api/v1/status").json()["alerts"] == []

        many = [{"task_id": f"stranger-{i}", "state": "Started"} for i in range(12)]
        messages = asyncio.run(register_and_listen(master.url, "host-many", many, 3.0))
        assert [
            m for m in messages if m["type"] == "kill"
        ] == []  # a master that lost its state kills nothing
        alerts = master.http.get("/api/v1/status").json()["alerts"]
        assert len(alerts) == 1 and alerts[0]["host_id"] == "host-many"
        assert len(alerts[0]["unknown_tasks"]) == 12
        assert "none were killed" in alerts[0]["message"]
    finally:
        master.close()


def test_a_finished_report_is_forgotten_only_after_the_master_recorded_it(tmp_path: Path) -> None:
    with cluster(tmp_path, agents=1) as (master, fleet):
        job = master.submit(batch_job(["sh", "-c", "sleep 0.2"], size=3))
        master.wait_job_finished(job["id"])
        agent = fleet.pool.agents[0]
        # The master told the agent to forget what it recorded: the agent's table is empty again.
        wait_for(lambda: fleet.run(lambda: len(agent.table)) == 0, what="the agent to forget finished tasks")


def test_launches_and_kills_travel_as_batches(tmp_path: Path) -> None:
    master = MasterProcess(tmp_path / "m").start()
    try:

        async def scenario() -> list[dict]:
            url = master.url.replace("http://", "ws://") + "/api/v1/agents/stream"
            async with connect(url, additional_headers=AGENT) as ws:
                await ws.send(json.dumps(register_message("batcher", [])))
                assert json.loads(await ws.recv())["type"] == "registered"
                job = await asyncio.to_thread(master.submit, batch_job(["sleep", "100"], size=6))
                launch = json.loads(await asyncio.wait_for(ws.recv(), 10))
                reports = [{"task_id": t["task_id"], "state": "Started"} for t in launch["tasks"]]
                await ws.send(json.dumps({"type": "status", "updates": reports}))
                await asyncio.to_thread(master.http.post, f"/api/v1/jobs/{job['id']}/kill")
                kill = json.loads(await asyncio.wait_for(ws.recv(), 10))
                return [launch, kill]

        launch, kill = asyncio.run(scenario())
        assert launch["type"] == "launch" and len(launch["tasks"]) == 6  # one frame for the whole placement
        assert launch["tasks"][0]["container"]["command"] == ["sleep", "100"]
        assert kill["type"] == "kill" and len(kill["tasks"]) == 6
        assert {k["reason"] for k in kill["tasks"]} == {"killed"}
    finally:
        master.close()


def test_a_registration_with_impossible_resources_is_refused(tmp_path: Path) -> None:
    master = MasterProcess(tmp_path / "m").start()
    try:

        async def scenario() -> tuple[int | None, str]:
            url = master.url.replace("http://", "ws://") + "/api/v1/agents/stream"
            async with connect(url, additional_headers=AGENT) as ws:
                bad = register_message("liar", [])
                bad["resources"]["cpu"] = -8
                await ws.send(json.dumps(bad))
                with pytest.raises(ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), 5)
                assert ws.close_code is not None
                return ws.close_code, ws.close_reason or ""

        code, reason = asyncio.run(scenario())
        assert code == 1008 and "bad_register" in reason
        assert master.http.get("/api/v1/hosts").json()["items"] == []
    finally:
        master.close()


def test_a_launch_lost_on_the_way_is_sent_again_not_counted_lost(tmp_path: Path) -> None:
    master = MasterProcess(tmp_path / "m").start()
    try:

        async def scenario() -> tuple[list[str], list[str]]:
            url = master.url.replace("http://", "ws://") + "/api/v1/agents/stream"
            async with connect(url, additional_headers=AGENT) as ws:
                await ws.send(json.dumps(register_message("flaky", [])))
                registered = json.loads(await ws.recv())
                assert registered["type"] == "registered"
                await asyncio.to_thread(master.submit, batch_job(["sleep", "100"], size=2))
                first = json.loads(await asyncio.wait_for(ws.recv(), 10))
            # The connection dropped before the agent started anything: it comes back knowing nothing
            # (but with the credential the master minted for its host on the first registration).
            own = {"Authorization": f"Bearer {registered['credential']}"}
            async with connect(url, additional_headers=own) as ws:
                await ws.send(json.dumps(register_message("flaky", [])))
                assert json.loads(await ws.recv())["type"] == "registered"
                again = json.loads(await asyncio.wait_for(ws.recv(), 10))
            return [t["task_id"] for t in first["tasks"]], [t["task_id"] for t in again["tasks"]]

        first, again = asyncio.run(scenario())
        assert sorted(first) == sorted(again)  # the same tasks, launched again
        tasks = master.tasks()
        assert len(tasks) == 2 and all(t["reason"] != "lost" for t in tasks)
    finally:
        master.close()


def test_an_operator_resolves_a_reconciliation_alert(tmp_path: Path) -> None:
    master = MasterProcess(tmp_path / "m").start()
    try:
        many = [{"task_id": f"orphan-{i}", "state": "Started"} for i in range(9)]

        async def scenario() -> list[dict]:
            url = master.url.replace("http://", "ws://") + "/api/v1/agents/stream"
            async with connect(url, additional_headers=AGENT) as ws:
                await ws.send(json.dumps(register_message("orphans", many)))
                assert json.loads(await ws.recv())["type"] == "registered"
                beating = asyncio.create_task(heartbeats(ws))
                # Held until the leader has settled, then judged: 9 > the budget of 5, so an alert.
                alerts = await asyncio.to_thread(
                    wait_for,
                    lambda: master.http.get("/api/v1/admin/alerts").json()["items"],
                    what="the alert",
                )
                assert len(alerts) == 1
                metrics = await asyncio.to_thread(lambda: master.http.get("/metrics").text)
                assert "corral_reconciliation_alerts 1.0" in metrics
                wrong = await asyncio.to_thread(
                    lambda: master.http.post("/api/v1/admin/alerts/nope/resolve", json={"action": "kill"})
                )
                assert (wrong.status_code, wrong.json()["code"]) == (404, "alert_not_found")
                done = await asyncio.to_thread(
                    lambda: master.http.post(
                        f"/api/v1/admin/alerts/{alerts[0]['id']}/resolve", json={"action": "kill"}
                    )
                )
                assert done.status_code == 200
                kill = json.loads(await asyncio.wait_for(ws.recv(), 10))
                beating.cancel()
                return [kill]

        [kill] = asyncio.run(scenario())
        assert kill["type"] == "kill" and {k["task_id"] for k in kill["tasks"]} == {
            t["task_id"] for t in many
        }
        assert master.http.get("/api/v1/admin/alerts").json()["items"] == []
        assert "corral_reconciliation_alerts 0.0" in master.http.get("/metrics").text
    finally:
        master.close()
