"""``corral top``: one frame rendered from an overview, and the command against a running master."""

from __future__ import annotations

import io
import json
import re
from typing import Any

from rich.console import Console

from corral.cli.top import meter, render
from tests.cli.test_cli import corral, master  # noqa: F401 - the module's master fixture
from tests.support.cluster import MasterProcess, wait_for
from tests.support.specs import batch_job, with_changes


def host(host_id: str, cpu_used: float, healthy: bool = True, state: str = "ready") -> dict[str, Any]:
    return {
        "id": host_id,
        "state": state,
        "healthy": healthy,
        "draining": False,
        "enabled": True,
        "attributes": {"zone": "zone-a"},
        "tasks": int(cpu_used),
        "resources": {"cpu": 8.0, "memory_mb": 8192},
        "allocated": {"cpu": cpu_used, "memory_mb": 1024},
    }


OVERVIEW: dict[str, Any] = {
    "at": 1_800_000_000.0,
    "leader": "master-1",
    "alerts": 2,
    "hosts": {"healthy": 2, "unreachable": 1},
    "resources": {
        "cpu": {"capacity": 16.0, "allocated": 15.5},
        "memory": {"capacity": 16384.0, "allocated": 2048.0},
        "disk": {"capacity": 2_097_152.0, "allocated": 0.0},
        "network": {"capacity": 2000.0, "allocated": 100.0},
    },
    "queue": {
        "pending": 7,
        "waiting_retry": 2,
        "oldest_s": 1000.0,
        "longer_than": {"60": 5, "300": 3, "600": 1, "900": 0},
        "by_group": {"batchy": 7},
    },
    "scheduler": {"iterations": 1234, "placed": 56789, "last_ms": 3.25, "last_tasks": 7, "last_placed": 0},
    "busiest": [
        {
            "job_id": "job-web",
            "application": "web",
            "type": "service",
            "capacity_group": "default",
            "running": 12,
            "pending": 0,
            "cpu": 6.0,
            "memory_mb": 3072,
        },
        {
            "job_id": "job-etl",
            "application": "etl",
            "type": "batch",
            "capacity_group": "batchy",
            "running": 3,
            "pending": 7,
            "cpu": 9.5,
            "memory_mb": 512,
        },
    ],
}


def frame(*args: Any, **kwargs: Any) -> str:
    out = Console(record=True, width=160, file=io.StringIO())
    out.print(render(*args, **kwargs))
    return out.export_text()


def test_a_frame_shows_fleet_queue_jobs_and_hosts() -> None:
    hosts = [
        host("h-idle", 0.0),
        host("h-full", 7.5),
        host("h-gone", 0.0, healthy=False, state="unreachable"),
    ]
    text = frame(OVERVIEW, hosts, "http://m:8080", host_rows=2)
    assert "leader master-1" in text and "2 reconciliation alert(s)" in text
    assert "2 healthy" in text and "1 unreachable" in text
    assert "97%  15.5 / 16" in text  # cpu allocation, red from 95%
    assert "2.0 TB" in text and "2.0 GB / 16.0 GB" in text
    assert re.search(r"pending\s+7 ", text) and "backing off 2" in text and re.search(r"oldest\s+17m", text)
    assert ">1m:5  >5m:3  >10m:1  >15m:0" in text
    assert "3.2 ms last iteration, 0/7 placed; 56,789 in 1,234 iterations" in text
    lines = text.splitlines()
    web = next(line for line in lines if "job-web" in line)
    etl = next(line for line in lines if "job-etl" in line)
    assert lines.index(web) < lines.index(etl)  # as the master ranked them
    assert [cell.strip() for cell in web.split("│")[5:9]] == ["12", "0", "6", "3.0 GB"]
    # the unhealthy host first, then the fullest; two rows of three
    assert "hosts (2 of 3)" in text
    shown = [line for line in lines if "h-" in line]
    assert [s.split()[1] for s in shown] == ["h-gone", "h-full"]
    assert "unreachable" in shown[0] and "94%" in shown[1]


def test_a_master_that_stops_answering_shows_on_the_last_frame() -> None:
    text = frame(OVERVIEW, [], "http://m:8080", problem="http://m:8080: connection refused")
    assert "connection refused (showing the last answer; retrying)" in text


def test_meter() -> None:
    assert meter(0, 0, 10).plain == "░░░░░░░░░░   0%"
    assert meter(5, 10, 10).plain == "█████░░░░░  50%"
    assert meter(20, 10, 10).plain == "██████████ 100%"


def test_top_once_and_json_against_a_master(master: MasterProcess) -> None:  # noqa: F811
    running = master.submit(batch_job(["sh", "-c", "sleep 30"], size=2, application="topapp"))
    stuck = master.submit(
        with_changes(batch_job(["true"], application="stuckapp"), "container.resources.cpu", 99)
    )
    wait_for(lambda: len(master.tasks(running["id"], ["Started"])) == 2, 20, what="2 started")
    result = corral(master, "top", "--once", "--jobs", "5")
    assert result.returncode == 0, result.stderr
    assert "corral top" in result.stdout and "busiest jobs" in result.stdout
    assert running["id"] in result.stdout and stuck["id"] in result.stdout
    data = json.loads(corral(master, "--json", "top").stdout)
    assert data["overview"]["queue"]["pending"] >= 1
    assert {h["id"] for h in data["hosts"]} == {"sim-0000", "sim-0001"}
    for job in (running, stuck):
        master.http.post(f"/api/v1/jobs/{job['id']}/kill")
    assert corral("http://127.0.0.1:9", "top", "--once").returncode == 2  # nothing listens there
