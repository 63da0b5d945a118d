"""Failover and cold start of the master with many active tasks, on PostgreSQL.

Two masters share one PostgreSQL; simulated agents (this process) run the tasks. With TASKS active
tasks running, the leader is killed (SIGKILL) and a probe job is submitted to the standby at once:

    failover_s     leader death -> the probe's first placement by the new leader (target <= 5 s median)
    takeover_s     leader death -> the standby leads (the lease runs out, then it loads the store)
    load_s         the new leader's load of every active job and task
    cold_start_s   a master process started on the store -> leading (target <= 10 s)
    rss_mb         resident memory of a leader holding every task, agents connected (target <= 1 GB)

Prints one JSON line per failover and per cold start, and a median line:
    python bench/failover.py --tasks 100000 --hosts 500 --runs 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.cluster import Fleet, MasterProcess, client, wait_for
from tests.support.postgres import fresh_database

from corral.agent.pool import FleetSpec

# Production-like timing (not the tests' fast one): the lease is what a failover waits for.
ENV = {
    "CORRAL_LEASE_TTL_S": "3.0",
    "CORRAL_LEASE_POLL_S": "0.25",
    "CORRAL_HEARTBEAT_INTERVAL_S": "2.0",
    "CORRAL_HEARTBEAT_TIMEOUT_S": "30",
    "CORRAL_LOST_AFTER_S": "120",
    "CORRAL_SQLITE_SYNCHRONOUS": "FULL",
}


def job(size: int, n: int) -> dict[str, Any]:
    return {
        "owner": {"team_email": "bench@example.com"},
        "application": f"fleet{n}",
        "container": {
            "image": {"name": "corral/busybox", "tag": "latest"},
            "command": ["sleep", "100000"],
            "resources": {"cpu": 0.1, "memory_mb": 64, "shm_mb": 8, "disk_mb": 10, "network_mbps": 1},
        },
        "service": {"capacity": {"min": 0, "desired": size, "max": size}},
    }


def started(master: MasterProcess) -> int:
    try:
        return int(master.http.get("/api/v1/status", timeout=30).json().get("tasks", {}).get("Started", 0))
    except (httpx.HTTPError, ValueError):
        return 0


def caught_up(master: MasterProcess, tasks: int) -> Any:
    """A check that ``master`` runs at least ``tasks`` tasks."""
    return lambda: started(master) >= tasks


def rss_mb(master: MasterProcess) -> float:
    assert master.proc is not None
    for line in Path(f"/proc/{master.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def probe(standby: MasterProcess, killed_at: float) -> dict[str, float]:
    spec = job(1, 999_999)
    spec["batch"], spec["application"] = {"size": 1}, "probe"
    del spec["service"]
    with client(timeout=30) as http:
        while True:  # 503 until it leads: not taken, so safe to send again
            r = http.post(f"{standby.url}/api/v1/jobs", json=spec)
            if r.status_code == 201:
                job_id = r.json()["id"]
                break
            time.sleep(0.02)
        leading_at = time.time()

        def launched() -> float | None:
            tasks = http.get(f"{standby.url}/api/v1/tasks", params={"job": job_id}).json()["items"]
            return next((e["at"] for t in tasks for e in t["history"] if e["state"] == "Launched"), None)

        placed_at = wait_for(launched, 120, interval=0.01, what="the probe's placement")
        status = http.get(f"{standby.url}/api/v1/status").json()
    return {
        "failover_s": round(placed_at - killed_at, 3),
        "takeover_s": round(leading_at - killed_at, 3),
        "load_s": round(status["loaded"]["seconds"], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--hosts", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    per_job = min(1000, args.tasks)
    lines: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp, fresh_database() as url:
        a = MasterProcess(Path(tmp) / "a", ENV, store_url=url).start()
        b = MasterProcess(Path(tmp) / "b", ENV, store_url=url).start(wait=False)
        wait_for(b.answers, 60)
        room = FleetSpec(
            count=args.hosts,
            cpu=64,
            memory_mb=1 << 20,
            network_mbps=100_000,
            addresses_per_interface=64,
            heartbeat_backoff_max_s=2.0,
        )
        fleet = Fleet(f"{a.url},{b.url}", room)
        try:
            fleet.wait_connected(300)
            for n in range(args.tasks // per_job):
                a.submit(job(per_job, n))
            wait_for(lambda: started(a) >= args.tasks, 900, interval=1.0, what="every task to start")
            ready = {
                "bench": "failover",
                "phase": "ready",
                "tasks": started(a),
                "rss_mb": round(rss_mb(a), 1),
            }
            print(json.dumps(ready), flush=True)
            leader, standby = a, b
            for run in range(args.runs):
                memory = rss_mb(leader)
                killed_at = time.time()
                leader.kill()
                line = {"bench": "failover", "run": run, "tasks": args.tasks, "hosts": args.hosts,
                        "leader_rss_mb": round(memory, 1)} | probe(standby, killed_at)  # fmt: skip
                lines.append(line)
                print(json.dumps(line), flush=True)
                leader.start(wait=False)  # back as the standby
                wait_for(leader.answers, 60)
                every = caught_up(standby, args.tasks + run + 1)  # every probe keeps running too
                wait_for(every, 600, interval=1.0, what="the fleet on the new leader")
                leader, standby = standby, leader
            cold: list[float] = []
            for run in range(args.runs):
                standby.stop()
                leader.stop()  # a clean stop releases the lease
                began = time.time()
                leader.start(wait=False)
                wait_for(leader.leads, 120, interval=0.01, what="the cold start")
                cold.append(round(time.time() - began, 3))
                print(
                    json.dumps(
                        {"bench": "failover", "run": run, "cold_start_s": cold[-1], "tasks": args.tasks}
                    )
                )
                standby.start(wait=False)
                wait_for(standby.answers, 60)
        finally:
            fleet.close()
            a.close()
            b.close()
    summary = {
        "bench": "failover",
        "summary": "median",
        "tasks": args.tasks,
        "hosts": args.hosts,
        "runs": len(lines),
        "failover_s": statistics.median(x["failover_s"] for x in lines),
        "takeover_s": statistics.median(x["takeover_s"] for x in lines),
        "load_s": statistics.median(x["load_s"] for x in lines),
        "cold_start_s": statistics.median(cold),
        "leader_rss_mb": max(x["leader_rss_mb"] for x in lines),
    }
    summary["targets_met"] = (
        summary["failover_s"] <= 5 and summary["cold_start_s"] <= 10 and summary["leader_rss_mb"] <= 1024
    )
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
