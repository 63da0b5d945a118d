"""Throughput through the whole control plane: API submission -> store -> plan -> simulated agents
report Started. A master in its own process; the simulated fleet in this one, over real WebSockets.

Prints one JSON line per run and a final line with medians:
    python bench/control_plane.py --hosts 1000 --tasks 20000 --runs 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.cluster import Fleet, MasterProcess, async_client, wait_for

from corral.agent.pool import FleetSpec


def job_spec(size: int, index: int) -> dict:
    return {
        "owner": {"team_email": "bench@example.com"},
        "application": f"bench{index}",
        "container": {
            "image": {"name": "corral/busybox", "tag": "latest"},
            "command": ["sleep", "3600"],
            "resources": {"cpu": 0.5, "memory_mb": 256, "disk_mb": 100, "network_mbps": 10},
        },
        "batch": {"size": size},
    }


async def submit_all(url: str, jobs: int, size: int) -> None:
    async with async_client(base_url=url, timeout=120) as http:
        sem = asyncio.Semaphore(16)

        async def one(i: int) -> None:
            async with sem:
                r = await http.post("/api/v1/jobs", json=job_spec(size, i))
                r.raise_for_status()

        await asyncio.gather(*(one(i) for i in range(jobs)))


def run_once(hosts: int, tasks: int, job_size: int, env: dict[str, str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        master = MasterProcess(
            Path(tmp), {"CORRAL_HEARTBEAT_INTERVAL_S": "5", "CORRAL_HEARTBEAT_TIMEOUT_S": "60", **env}
        )
        master.start()
        fleet = Fleet(
            master.url, FleetSpec(count=hosts, cpu=16, memory_mb=65536, heartbeat_backoff_max_s=2.0)
        )
        try:
            fleet.wait_connected(120)
            wait_for(lambda: master.http.get("/api/v1/status").json()["hosts"].get("ready") == hosts, 60)
            jobs = tasks // job_size
            started = time.perf_counter()
            asyncio.run(submit_all(master.url, jobs, job_size))
            submitted = time.perf_counter() - started

            def all_started() -> bool:
                status = master.http.get("/api/v1/status").json()
                return status["tasks"].get("Started", 0) >= jobs * job_size

            wait_for(all_started, timeout=600, interval=0.02, what="every task to start")
            elapsed = time.perf_counter() - started
            status = master.http.get("/api/v1/status").json()
            return {
                "bench": "control_plane",
                "hosts": hosts,
                "tasks": jobs * job_size,
                "job_size": job_size,
                "tasks_per_s": round(jobs * job_size / elapsed, 1),
                "elapsed_s": round(elapsed, 3),
                "submit_s": round(submitted, 3),
                "scheduler_iterations": status["scheduler"]["iterations"],
                "store_batches": status["writer"]["batches"],
            }
        finally:
            fleet.close()
            master.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--tasks", type=int, default=20000)
    parser.add_argument("--job-size", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results = []
    for run in range(args.runs):
        result = run_once(args.hosts, args.tasks, args.job_size, {}) | {"run": run}
        results.append(result)
        print(json.dumps(result), flush=True)
    summary = {
        "bench": "control_plane",
        "summary": "median",
        "hosts": args.hosts,
        "tasks": results[0]["tasks"],
        "runs": len(results),
        "tasks_per_s": statistics.median(r["tasks_per_s"] for r in results),
        "elapsed_s": statistics.median(r["elapsed_s"] for r in results),
    }
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
