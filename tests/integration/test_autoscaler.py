"""The cluster autoscaler end to end on the ``local`` provider (real ``corral agent`` processes, sim
runtime): a burst scales a group up in one decision to exactly the hosts the trial placement needs, the
load removed brings it back down, hosts whose tasks fit elsewhere are consolidated without a service
going below its budget, and ``corral hostgroup explain`` says why each host is kept."""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from corral.domain.hostgroup import HostGroup
from corral.providers import ProviderContext
from corral.providers.local import LocalProvider
from tests.integration.test_rollouts import Poller, probed_service, ready
from tests.support.cluster import AGENT_TOKEN, MasterProcess, process_alive, wait_for
from tests.support.specs import batch_job

pytestmark = pytest.mark.integration

SHAPE = {
    "resources": {"cpu": 8.0, "memory_mb": 32768, "disk_mb": 100_000, "network_mbps": 10_000, "gpu": 0},
    "zones": ["zone-a", "zone-b"],
    "instance_type": "sim-8",
}


def group_body(**kw: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "shape": SHAPE,
        "min_size": 2,
        "max_size": 12,
        "min_idle": 0,
        "scale_up_cooldown_s": 0.5,
        "scale_down_cooldown_s": 1.0,
        "unneeded_for_s": 1.0,
        "pending_after_s": 0.5,
        "removal_deadline_s": 1.0,
        "provider": {"kind": "local", "config": {"runtime": "sim", "grace_s": "3"}},
    }
    body.update(kw)
    return body


@contextlib.contextmanager
def autoscaled(tmp: Path) -> Iterator[MasterProcess]:
    master = MasterProcess(tmp / "master").start()
    try:
        yield master
    except BaseException:
        print("---- master log ----\n" + master.log()[-30000:])
        raise
    finally:
        master.close()
        # The local provider's agents outlive the master (as machines would): terminate what is left.
        provider = LocalProvider(ProviderContext(master.url, AGENT_TOKEN, data_dir=master.data_dir))
        root = master.data_dir / "providers" / "local"
        for group_dir in root.iterdir() if root.exists() else []:
            group = HostGroup(group_dir.name)
            with contextlib.suppress(Exception):
                provider.terminate(group, [i.host_id for i in provider.list(group)])


def group_hosts(master: MasterProcess, group: str, state: str = "ready") -> list[dict[str, Any]]:
    hosts = master.http.get("/api/v1/hosts", params={"limit": 1000}).json()
    items = hosts["items"] if isinstance(hosts, dict) else hosts
    return [h for h in items if h["attributes"]["host_group"] == group and h["state"] == state]


def actions(master: MasterProcess, group: str) -> list[dict[str, Any]]:
    explain = master.http.get(f"/api/v1/hostgroups/{group}/explain")
    assert explain.status_code == 200, explain.text
    recent: list[dict[str, Any]] = explain.json()["recent"]
    return recent


def terminated(master: MasterProcess, group: str) -> list[str]:
    notes = [a["detail"] for a in actions(master, group) if a["action"] == "terminate"]
    return [h for detail in notes for h in detail.split(", ")]


def put_group(master: MasterProcess, name: str, **kw: Any) -> None:
    answer = master.http.put(f"/api/v1/hostgroups/{name}", json=group_body(**kw))
    assert answer.status_code == 200, answer.text


def test_a_burst_scales_up_exactly_once_and_the_group_comes_back_down(tmp_path: Path) -> None:
    with autoscaled(tmp_path) as master:
        put_group(master, "burst")
        wait_for(lambda: len(group_hosts(master, "burst")) == 2, 60, what="min size: 2 hosts")
        spec = batch_job(["sleep", "1000"], size=44)
        spec["container"]["resources"].update(cpu=1.0, memory_mb=1024)
        job = master.submit(spec)
        # 2 hosts of 8 cpu hold 16 tasks; 28 more need exactly 4 hosts of 8.
        wait_for(lambda: len(master.tasks(job["id"], ["Started"])) == 44, 90, what="all 44 tasks started")
        ups = [a for a in actions(master, "burst") if a["action"] == "scale_to"]
        assert [a["detail"].split()[0] for a in ups] == ["2", "6"], ups
        assert len(group_hosts(master, "burst")) == 6

        master.http.post(f"/api/v1/jobs/{job['id']}/kill")
        # A termination is noted once the provider's call returns (the agent has stopped by then).
        wait_for(lambda: len(terminated(master, "burst")) >= 4, 90, what="4 hosts terminated")
        assert len(group_hosts(master, "burst")) == 2
        assert len(set(terminated(master, "burst"))) == len(terminated(master, "burst")) == 4
        explain = master.http.get("/api/v1/hostgroups/burst/explain").json()
        kinds = {h["host_id"]: h.get("kind") for h in explain["hosts"] if h["state"] == "ready"}
        assert set(kinds.values()) <= {"min_size", "cooldown"}, explain["hosts"]


def test_consolidation_moves_a_service_within_its_budget_and_removes_hosts(tmp_path: Path) -> None:
    with autoscaled(tmp_path) as master:
        put_group(master, "svc", min_size=4, max_size=6)
        wait_for(lambda: len(group_hosts(master, "svc")) == 4, 60, what="4 hosts")
        spec = probed_service(4, ["true"])
        spec["container"]["resources"]["cpu"] = 1.0
        spec["disruption_budget"] = {"availability_percentage": 75}
        spec["container"]["soft_constraints"] = {"unique_host": "true"}
        service = master.submit(spec)["id"]
        wait_for(lambda: len(ready(master, service)) == 4, 60, what="4 ready tasks")
        spread = {t["host_id"] for t in ready(master, service)}
        assert len(spread) == 4  # one task per host: each host is busy, none idle

        poller = Poller(master, service)
        put_group(master, "svc", min_size=1, max_size=6)  # now 3 hosts are more than the service needs
        wait_for(lambda: len(group_hosts(master, "svc")) <= 2, 120, what="consolidation to remove hosts")
        assert poller.stop() >= 3, "the availability budget (75 % of 4) was broken"
        assert len(ready(master, service)) == 4
        moved = [t for t in master.tasks(service) if t.get("reason") == "relocated"]
        assert moved, "no task was moved make-before-break"
        explain = master.http.get("/api/v1/hostgroups/svc/explain").json()
        assert all(h["verdict"] in ("kept", "removing", "terminating") for h in explain["hosts"])


def test_a_host_gone_silent_is_replaced_then_terminated(tmp_path: Path) -> None:
    """Point 4 end to end: an agent frozen (SIGSTOP: its process lives, the provider still lists it) goes
    unreachable; past ``replace_after_s`` the group asks for a new host as it drains the bad one, and
    terminates the bad one through the provider only after — which ends the frozen process."""
    with autoscaled(tmp_path) as master:
        put_group(master, "bad", replace_after_s=1.0, replace_max_percent=50.0)
        wait_for(lambda: len(group_hosts(master, "bad")) == 2, 60, what="min size: 2 hosts")
        first = {h["id"] for h in group_hosts(master, "bad")}
        job = master.submit(batch_job(["sleep", "1000"], size=2))
        wait_for(lambda: len(master.tasks(job["id"], ["Started"])) == 2, 60, what="2 tasks started")
        folder = master.data_dir / "providers" / "local" / "bad" / "instances"
        records = {r["instance_id"]: r for r in (json.loads(p.read_text()) for p in folder.glob("*.json"))}
        victim = sorted(first)[0]
        pid = int(records[victim]["pid"])
        os.kill(pid, signal.SIGSTOP)
        try:
            wait_for(
                lambda: victim in terminated(master, "bad"), 90, what=f"{victim} replaced and terminated"
            )
            wait_for(lambda: len(group_hosts(master, "bad")) == 2, 60, what="the group back to 2 ready hosts")
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        now = {h["id"] for h in group_hosts(master, "bad")}
        assert victim not in now and len(now - first) == 1, (first, now)
        wait_for(lambda: not process_alive(pid), 30, what="the frozen agent's process ended by the provider")
        done = [(a["action"], a["detail"]) for a in actions(master, "bad")]
        ups = [i for i, (kind, detail) in enumerate(done) if kind == "scale_to" and "replace" in detail]
        down = [i for i, (kind, _) in enumerate(done) if kind == "terminate"]
        assert ups and down and ups[0] < down[0], done  # the new host asked before the bad one goes
        assert terminated(master, "bad") == [victim]
        # The job's task on the bad host was lost and replaced: the batch still runs 2 tasks.
        wait_for(lambda: len(master.tasks(job["id"], ["Started"])) == 2, 60, what="2 tasks running again")
