"""Hosts have their own identity (issue 11, point 6): an agent joins with a join token and gets a
credential bound to its host; from then on nobody else registers that host.

Reproduced before: a second agent registering as a live host's id with the shared agent token, reporting
no task, made that host's tasks lost and replaced; when the real agent came back its tasks were killed,
and the two kept replacing each other.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from corral.agent.pool import FleetSpec
from tests.support.cluster import AGENT_TOKEN, Fleet, MasterProcess, wait_for
from tests.support.specs import service_job

pytestmark = pytest.mark.integration


def register(agent_id: str) -> dict[str, Any]:
    return {
        "type": "register",
        "agent_id": agent_id,
        "resources": {"cpu": 4, "memory_mb": 8192, "disk_mb": 10000, "network_mbps": 1000, "gpu": 0},
        "runtime": "sim",
        "tasks": [],
    }


async def try_register(url: str, token: str, agent_id: str) -> tuple[int | None, str, dict[str, Any] | None]:
    """Register as ``agent_id`` with ``token``: the close code and reason if refused, else the reply."""
    stream = url.replace("http://", "ws://") + "/api/v1/agents/stream"
    async with connect(stream, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        await ws.send(json.dumps(register(agent_id)))
        try:
            reply: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 10))
        except ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd is not None else None
            return code, closed.rcvd.reason if closed.rcvd is not None else "", None
        return None, "", reply


def started(master: MasterProcess, job: str) -> set[str]:
    return {t["id"] for t in master.tasks(job, ["Started"])}


@pytest.fixture
def cluster_of_one(tmp_path: Path) -> Any:
    master = MasterProcess(tmp_path / "m").start()
    fleet = Fleet(master.url, FleetSpec(count=1, cpu=8, heartbeat_backoff_max_s=0.3))
    try:
        fleet.wait_connected()
        yield master, fleet
    except BaseException:
        print("---- master log ----\n" + master.log()[-20000:])
        raise
    finally:
        fleet.close()
        master.close()


def test_an_impostor_with_the_join_token_is_refused_and_the_host_keeps_its_tasks(cluster_of_one: Any) -> None:
    master, fleet = cluster_of_one
    job = master.submit(service_job(3))["id"]
    wait_for(lambda: len(started(master, job)) == 3, what="3 tasks running")
    before = started(master, job)

    code, reason, reply = asyncio.run(try_register(master.url, AGENT_TOKEN, "sim-0000"))
    assert reply is None and code == 4409 and reason.startswith("host_claimed"), (code, reason, reply)

    alerts = master.http.get("/api/v1/admin/alerts").json()["items"]
    impostors = [a for a in alerts if a["kind"] == "impostor"]
    assert len(impostors) == 1 and impostors[0]["host_id"] == "sim-0000"
    # The live session and the host's tasks were never touched: same tasks, still running, host ready.
    assert master.http.get("/api/v1/hosts/sim-0000").json()["state"] == "ready"
    assert started(master, job) == before
    assert all(t["reason"] is None for t in master.tasks(job))
    assert fleet.pool.agent("sim-0000").registrations == 1

    # A retrying impostor counts attempts on the same alert, it does not fill the list.
    asyncio.run(try_register(master.url, AGENT_TOKEN, "sim-0000"))
    impostors = [
        a for a in master.http.get("/api/v1/admin/alerts").json()["items"] if a["kind"] == "impostor"
    ]
    assert len(impostors) == 1 and impostors[0]["attempts"] == 2
    r = master.http.post(f"/api/v1/admin/alerts/{impostors[0]['id']}/resolve", json={"action": "dismiss"})
    assert r.status_code == 200, r.text
    assert master.http.get("/api/v1/admin/alerts").json()["items"] == []


def test_a_credential_registers_its_own_host_only(cluster_of_one: Any) -> None:
    master, _fleet = cluster_of_one
    r = master.http.post(
        "/api/v1/admin/tokens",
        json={"name": "rack7", "team": "agents", "role": "agent", "host": "rack7-host"},
    )
    assert r.status_code == 201, r.text
    bound = r.json()["secret"]
    code, reason, _ = asyncio.run(try_register(master.url, bound, "sim-0000"))
    assert code == 4403 and reason.startswith("wrong_host"), (code, reason)
    code, _, reply = asyncio.run(try_register(master.url, bound, "rack7-host"))
    assert code is None and reply is not None and reply["type"] == "registered"
    assert reply.get("credential", "") == ""  # it has its own: nothing is minted
    bad = master.http.post(
        "/api/v1/admin/tokens", json={"name": "nope", "team": "payments", "role": "user", "host": "x"}
    )
    assert (bad.status_code, bad.json()["code"]) == (400, "invalid_host")


def test_a_host_rejoins_after_an_operator_revokes_its_credential(cluster_of_one: Any) -> None:
    master, fleet = cluster_of_one
    tokens = master.http.get("/api/v1/admin/tokens").json()["items"]
    [own] = [t for t in tokens if t.get("host") == "sim-0000" and t["state"] == "active"]
    assert own["role"] == "agent" and own["name"] == "host-sim-0000"
    agent = fleet.pool.agent("sim-0000")
    registrations = agent.registrations
    assert master.http.post(f"/api/v1/admin/tokens/{own['id']}/revoke").status_code == 200
    # Its session ends; its credential is refused; it joins again with the join token and gets a new one.
    wait_for(lambda: agent.registrations > registrations, what="the agent to join again")
    tokens = master.http.get("/api/v1/admin/tokens").json()["items"]
    fresh = [t for t in tokens if t.get("host") == "sim-0000" and t["state"] == "active"]
    assert len(fresh) == 1 and fresh[0]["id"] != own["id"]
    wait_for(lambda: master.http.get("/api/v1/hosts/sim-0000").json()["state"] == "ready", what="host back")


async def register_and_vanish(url: str, token: str, agent_id: str) -> None:
    """Register, then close before reading the reply: the agent never learns its new credential."""
    stream = url.replace("http://", "ws://") + "/api/v1/agents/stream"
    async with connect(stream, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        await ws.send(json.dumps(register(agent_id)))


def test_an_agent_that_never_received_its_credential_joins_again(tmp_path: Path) -> None:
    """Under load the master froze, agents gave up their connections before the `registered` message
    with their new credential came, and every registration after was refused as an impostor: the
    autoscaler's new hosts stayed locked out. Now the credential that never arrived is replaced."""
    master = MasterProcess(tmp_path / "m").start()
    try:
        asyncio.run(register_and_vanish(master.url, AGENT_TOKEN, "lost-0000"))
        wait_for(lambda: _host_state(master, "lost-0000") == "unreachable", 30, what="the session gone")
        code, reason, reply = asyncio.run(try_register(master.url, AGENT_TOKEN, "lost-0000"))
        assert code is None and reply is not None and reply["type"] == "registered", (code, reason, reply)
        assert reply["credential"], reply  # a fresh credential, this time received
        alerts = master.http.get("/api/v1/admin/alerts").json()["items"]
        assert not [a for a in alerts if a["kind"] == "impostor"], alerts
        tokens = master.http.get("/api/v1/admin/tokens").json()
        items = tokens["items"] if isinstance(tokens, dict) else tokens
        bound = [t for t in items if t.get("host") == "lost-0000"]
        assert sorted(t["revoked_at"] is None for t in bound) == [False, True], bound  # old revoked, new live
        # Once presented, a credential is the host's own: the join token no longer registers it.
        asyncio.run(try_register(master.url, reply["credential"], "lost-0000"))
        code, reason, _ = asyncio.run(try_register(master.url, AGENT_TOKEN, "lost-0000"))
        assert code == 4409 and reason.startswith("host_claimed"), (code, reason)
    except BaseException:
        print("---- master log ----\n" + master.log()[-20000:])
        raise
    finally:
        master.close()


def _host_state(master: MasterProcess, host_id: str) -> str | None:
    r = master.http.get(f"/api/v1/hosts/{host_id}")
    return r.json().get("state") if r.status_code == 200 else None
