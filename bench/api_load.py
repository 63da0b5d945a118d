"""The front door under load: concurrent clients submitting small jobs to a master on PostgreSQL with a
simulated fleet, each submission answered only once it is durable.

Measures what the clients see — jobs/s and per-request latency (p50, p99) — and whether the queue keeps
draining meanwhile: the pending tasks at the end of the submissions and how long until every task runs.
Each submission carries an Idempotency-Key, as the CLI sends one. One JSON line per run, then the medians:

    python bench/api_load.py --hosts 500 --clients 16 --jobs 4000 --tasks-per-job 4 --runs 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.cluster import Fleet, MasterProcess, async_client, wait_for
from tests.support.postgres import fresh_database

from corral.agent.pool import FleetSpec


def job_spec(index: int, tasks: int) -> dict:
    return {
        "owner": {"team_email": "bench@example.com"},
        "application": f"load{index % 50}",
        "labels": {"bench": "api_load"},
        "container": {
            "image": {"name": "corral/busybox", "tag": "latest"},
            "command": ["sleep", "3600"],
            "resources": {"cpu": 0.05, "memory_mb": 32, "disk_mb": 10, "network_mbps": 1, "shm_mb": 1},
        },
        "batch": {"size": tasks},
    }


async def load(url: str, clients: int, jobs: int, tasks: int, keys: bool) -> tuple[list[float], float]:
    """``clients`` concurrent clients, each submitting one job after another: every latency, and the wall."""
    latencies: list[float] = []
    counter = iter(range(jobs))

    async def client() -> None:
        async with async_client(base_url=url, timeout=120) as http:
            for i in counter:
                headers = {"Idempotency-Key": str(uuid.uuid4())} if keys else {}
                sent = time.perf_counter()
                r = await http.post("/api/v1/jobs", json=job_spec(i, tasks), headers=headers)
                latencies.append(time.perf_counter() - sent)
                if r.status_code != 201:
                    raise RuntimeError(f"submission refused: {r.status_code} {r.text[:200]}")

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return latencies, time.perf_counter() - started


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


@contextmanager
def store(kind: str) -> Iterator[str]:
    if kind == "sqlite":
        yield ""
        return
    with fresh_database() as url:
        yield url


def run_once(args: argparse.Namespace) -> dict:
    env = {
        "CORRAL_HEARTBEAT_INTERVAL_S": "5",
        "CORRAL_HEARTBEAT_TIMEOUT_S": "60",
        "CORRAL_LOST_AFTER_S": "120",
        "CORRAL_SQLITE_SYNCHRONOUS": "FULL",
    }
    with tempfile.TemporaryDirectory() as tmp, store(args.store) as url:
        master = MasterProcess(Path(tmp), env, store_url=url).start()
        fleet = Fleet(
            master.url, FleetSpec(count=args.hosts, cpu=64, memory_mb=262144, heartbeat_backoff_max_s=2)
        )
        try:
            fleet.wait_connected(180)
            wait_for(
                lambda: master.http.get("/api/v1/status").json()["hosts"].get("ready") == args.hosts,
                120,
                what="every host registered",
            )
            latencies, wall = asyncio.run(
                load(master.url, args.clients, args.jobs, args.tasks_per_job, args.keys)
            )
            ended = time.perf_counter()
            status = master.http.get("/api/v1/status").json()
            pending_at_end = status["pending"]
            total = args.jobs * args.tasks_per_job

            def all_started() -> bool:
                return int(master.http.get("/api/v1/status").json()["tasks"].get("Started", 0)) >= total

            wait_for(all_started, 600, interval=0.05, what="every task to start")
            drain = time.perf_counter() - ended  # from the last answer until every task runs
            return {
                "bench": "api_load",
                "store": args.store,
                "hosts": args.hosts,
                "clients": args.clients,
                "jobs": args.jobs,
                "tasks_per_job": args.tasks_per_job,
                "idempotency_keys": args.keys,
                "jobs_per_s": round(args.jobs / wall, 1),
                "p50_ms": round(percentile(latencies, 50) * 1000, 1),
                "p99_ms": round(percentile(latencies, 99) * 1000, 1),
                "max_ms": round(max(latencies) * 1000, 1),
                "pending_at_end": pending_at_end,
                "drain_s": round(drain, 3),
                "wall_s": round(wall, 2),
            }
        except BaseException:
            print(master.log()[-5000:], file=sys.stderr)
            raise
        finally:
            fleet.close()
            master.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hosts", type=int, default=500)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--jobs", type=int, default=4000)
    parser.add_argument("--tasks-per-job", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--store", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--no-keys", dest="keys", action="store_false", help="send no Idempotency-Key")
    args = parser.parse_args()
    runs = []
    for _ in range(args.runs):
        result = run_once(args)
        runs.append(result)
        print(json.dumps(result), flush=True)
    summary = {"bench": "api_load", "summary": "median", "runs": len(runs)}
    for key in ("jobs_per_s", "p50_ms", "p99_ms", "max_ms", "pending_at_end", "drain_s"):
        summary[key] = statistics.median(r[key] for r in runs)
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
