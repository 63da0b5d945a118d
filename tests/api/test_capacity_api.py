"""Capacity groups, tiers, modes and draining, through the API of a running master."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from corral.agent.pool import FleetSpec
from tests.support.cluster import Fleet, MasterProcess, wait_for
from tests.support.specs import batch_job, service_job

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MasterProcess]:
    m = MasterProcess(Path(tmp_path_factory.mktemp("capacity"))).start()
    fleet = Fleet(m.url, FleetSpec(count=2, cpu=4, memory_mb=16384, heartbeat_backoff_max_s=1.0))
    fleet.wait_connected()
    try:
        yield m
    except BaseException:
        print(m.log()[-20000:])
        raise
    finally:
        fleet.close()
        m.close()


def group(name: str, tier: str = "flex", cpu: float = 0, limit_cpu: float | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "tier": tier, "guarantee": {"cpu": cpu, "memory_mb": 0}}
    if limit_cpu is not None:
        body["limit"] = {"cpu": limit_cpu}
    return body


def in_group(spec: dict[str, Any], name: str, cpu: float = 1.0) -> dict[str, Any]:
    spec["capacity_group"] = name
    spec["container"]["resources"]["cpu"] = cpu
    return spec


def kill_all(master: MasterProcess) -> None:
    for job in master.http.get("/api/v1/jobs", params={"state": "Accepted"}).json()["items"]:
        master.http.post(f"/api/v1/jobs/{job['id']}/kill")
    wait_for(
        lambda: (
            master.http.get("/api/v1/jobs", params={"state": ["Accepted", "KillInitiated"]}).json()["items"]
            == []
        ),
        what="every job to finish",
    )


def test_capacity_group_crud_and_errors(master: MasterProcess) -> None:
    http = master.http
    created = http.post("/api/v1/capacity-groups", json=group("encoding", "critical", cpu=2))
    assert created.status_code == 201 and created.json()["tier"] == "critical"
    again = http.post("/api/v1/capacity-groups", json=group("encoding"))
    assert (again.status_code, again.json()["code"]) == (409, "capacity_group_exists")
    names = [g["name"] for g in http.get("/api/v1/capacity-groups").json()["items"]]
    assert names == ["default", "encoding"]
    updated = http.put("/api/v1/capacity-groups/encoding", json={"tier": "flex", "guarantee": {"cpu": 3}})
    assert updated.json()["tier"] == "flex" and updated.json()["guarantee"]["cpu"] == 3
    bad = http.put("/api/v1/capacity-groups/encoding", json={"guarantee": {"cpu": -1}})
    assert (bad.status_code, bad.json()["field"]) == (400, "guarantee.cpu")
    over = http.put("/api/v1/capacity-groups/encoding", json={"guarantee": {"cpu": 4}, "limit": {"cpu": 2}})
    assert (over.status_code, over.json()["code"], over.json()["field"]) == (
        400,
        "invalid_capacity_group",
        "limit.cpu",
    )
    unknown = http.post("/api/v1/jobs", json=in_group(batch_job(["true"]), "nosuchgroup"))
    assert (unknown.status_code, unknown.json()["code"], unknown.json()["field"]) == (
        400,
        "unknown_capacity_group",
        "capacity_group",
    )
    job = master.submit(in_group(batch_job(["sleep", "100"]), "encoding"))
    busy = http.delete("/api/v1/capacity-groups/encoding")
    assert (busy.status_code, busy.json()["code"]) == (409, "capacity_group_in_use")
    assert http.delete("/api/v1/capacity-groups/default").json()["code"] == "default_group"
    http.post(f"/api/v1/jobs/{job['id']}/kill")
    master.wait_job_finished(job["id"])
    assert http.delete("/api/v1/capacity-groups/encoding").status_code == 204
    assert http.get("/api/v1/capacity-groups/encoding").json()["code"] == "capacity_group_not_found"


def test_critical_tier_is_served_before_flex(master: MasterProcess) -> None:
    http = master.http
    http.post("/api/v1/capacity-groups", json=group("urgent", "critical"))
    hosts = [h["id"] for h in http.get("/api/v1/hosts").json()["items"]]
    for h in hosts:
        http.post(f"/api/v1/hosts/{h}/drain")
    flex = master.submit(in_group(batch_job(["sleep", "100"], size=4), "default"))
    critical = master.submit(in_group(batch_job(["sleep", "100"], size=4), "urgent"))  # submitted later
    wait_for(lambda: all(t.get("pending") for t in master.tasks(critical["id"])), what="pending with reasons")
    assert master.tasks(flex["id"])[0]["pending"]["reason"] == "no_hosts"
    http.post(f"/api/v1/hosts/{hosts[0]}/undrain")  # room for exactly 4 one-cpu tasks
    wait_for(lambda: len(master.tasks(critical["id"], ["Started"])) == 4, what="critical tasks to start")
    assert master.tasks(flex["id"], ["Started", "Launched", "StartInitiated"]) == []
    assert {t["pending"]["reason"] for t in master.tasks(flex["id"])} == {"no_capacity"}
    http.post(f"/api/v1/hosts/{hosts[1]}/undrain")
    wait_for(lambda: len(master.tasks(flex["id"], ["Started"])) == 4, what="flex tasks once room frees")
    kill_all(master)


def test_a_group_at_its_limit_says_so_and_others_still_place(master: MasterProcess) -> None:
    master.http.post("/api/v1/capacity-groups", json=group("capped", limit_cpu=2))
    capped = master.submit(in_group(batch_job(["sleep", "100"], size=4), "capped"))
    free = master.submit(batch_job(["sleep", "100"], size=2))
    wait_for(lambda: len(master.tasks(capped["id"], ["Started"])) == 2, what="2 capped tasks")
    wait_for(lambda: len(master.tasks(free["id"], ["Started"])) == 2, what="the other group's tasks")
    waiting = wait_for(
        lambda: [t for t in master.tasks(capped["id"], ["Accepted"]) if t.get("pending")], what="explained"
    )
    assert len(waiting) == 2
    for task in waiting:
        assert task["pending"]["reason"] == "group_limit"
        assert task["pending"]["message"] == "capacity group `capped` at its limit"
    usage = master.http.get("/api/v1/capacity-groups/capped").json()["usage"]
    assert usage["cpu"] == 2
    kill_all(master)


def test_mode_switch_changes_placement_and_is_reported(master: MasterProcess) -> None:
    http = master.http
    assert http.get("/api/v1/scheduler").json()["modes"]["flex"] == "pack"
    packed = master.submit(service_job(4))
    wait_for(lambda: len(master.tasks(packed["id"], ["Started"])) == 4, what="packed tasks")
    assert len({t["host_id"] for t in master.tasks(packed["id"], ["Started"])}) == 1
    kill_all(master)

    assert (
        http.put("/api/v1/scheduler/modes/flex", json={"mode": "spread"}).json()["modes"]["flex"] == "spread"
    )
    spread = master.submit(service_job(4))
    wait_for(lambda: len(master.tasks(spread["id"], ["Started"])) == 4, what="spread tasks")
    assert Counter(t["host_id"] for t in master.tasks(spread["id"], ["Started"])).most_common(1)[0][1] == 2
    bad = http.put("/api/v1/scheduler/modes/flex", json={"mode": "scatter"})
    assert (bad.status_code, bad.json()["field"]) == (400, "mode")
    http.put("/api/v1/scheduler/modes/flex", json={"mode": "pack"})
    kill_all(master)


def test_tasks_are_assigned_ports_and_an_address_on_an_interface(master: MasterProcess) -> None:
    spec = batch_job(["sleep", "100"], size=3)
    spec["container"]["resources"]["ports"] = 2
    spec["container"]["security"] = {"security_groups": ["sg-web", "sg-db"]}
    job = master.submit(spec)
    tasks = wait_for(
        lambda: (t := master.tasks(job["id"], ["Started"])) and len(t) == 3 and t, what="started"
    )
    assert all(
        len(t["ports"]) == 2 and t["interface"] is not None and t["address"] is not None for t in tasks
    ), tasks[0]
    by_host: dict[str, list[dict[str, Any]]] = {}
    for t in tasks:
        by_host.setdefault(t["host_id"], []).append(t)
    for same_host in by_host.values():
        ports = [p for t in same_host for p in t["ports"]]
        assert len(ports) == len(set(ports))
        assert len({(t["interface"], t["address"]) for t in same_host}) == len(same_host)
    kill_all(master)


def test_mode_and_drain_survive_a_restart(tmp_path: Path) -> None:
    master = MasterProcess(tmp_path).start()
    fleet = Fleet(master.url, FleetSpec(count=1, heartbeat_backoff_max_s=0.5))
    try:
        fleet.wait_connected()
        master.http.put("/api/v1/scheduler/modes/critical", json={"mode": "pack"})
        master.http.post("/api/v1/capacity-groups", json=group("kept", "critical", cpu=4))
        master.http.post("/api/v1/hosts/sim-0000/drain")
        master.stop()
        master.start()
        assert master.http.get("/api/v1/scheduler").json()["modes"]["critical"] == "pack"
        assert master.http.get("/api/v1/capacity-groups/kept").json()["guarantee"]["cpu"] == 4
        back = wait_for(
            lambda: (r := master.http.get("/api/v1/hosts/sim-0000")).status_code == 200 and r,
            what="the agent back",
        )
        host = back.json()
        assert host["draining"] is True and host["schedulable"] is False
    finally:
        fleet.close()
        master.close()
