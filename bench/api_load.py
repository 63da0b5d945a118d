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
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.cluster import ADMIN_TOKEN, AGENT_TOKEN, MasterProcess, wait_for
from tests.support.postgres import fresh_database


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


class Connection:
    """One keep-alive HTTP/1.1 connection that POSTs JSON: the load generator shares the machine's two
    cores with the master, so it spends as little as it can per request (httpx took a third of a core
    for 250 requests a second, a core the master then lacked)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str) -> None:
        self.reader, self.writer, self.host = reader, writer, host

    @classmethod
    async def open(cls, url: str) -> Connection:
        parts = urlsplit(url)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        return cls(reader, writer, parts.netloc)

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        head = [f"POST {path} HTTP/1.1", f"Host: {self.host}", "Content-Type: application/json"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        head.append(f"Content-Length: {len(body)}")
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        status_line = await self.reader.readuntil(b"\r\n")
        length = 0
        while (line := await self.reader.readuntil(b"\r\n")) != b"\r\n":
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        return int(status_line.split()[1]), await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


async def load(url: str, clients: int, jobs: int, tasks: int, keys: bool) -> tuple[list[float], float]:
    """``clients`` concurrent clients, each submitting one job after another: every latency, and the wall."""
    latencies: list[float] = []
    counter = iter(range(jobs))

    async def client() -> None:
        conn = await Connection.open(url)
        try:
            for i in counter:
                headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
                if keys:
                    headers["Idempotency-Key"] = str(uuid.uuid4())
                body = json.dumps(job_spec(i, tasks)).encode()
                sent = time.perf_counter()
                status, answer = await conn.post("/api/v1/jobs", body, headers)
                latencies.append(time.perf_counter() - sent)
                if status != 201:
                    raise RuntimeError(f"submission refused: {status} {answer[:200]!r}")
        finally:
            conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return latencies, time.perf_counter() - started


def _sample(metrics: str, name: str) -> float:
    for line in metrics.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


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
        **dict(e.split("=", 1) for e in os.environ.get("BENCH_ENV", "").split() if e),
    }
    with tempfile.TemporaryDirectory() as tmp, store(args.store) as url:
        master = MasterProcess(Path(tmp), env, store_url=url).start()
        # The simulated fleet runs in a process of its own (`corral agent --runtime sim`), as the clients
        # do in this one: each side has its own interpreter, so neither's work shows as the master's latency.
        fleet = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "corral",
                "agent",
                "--runtime",
                "sim",
                "--count",
                str(args.hosts),
                "--master",
                master.url,
                "--cpu",
                "64",
                "--memory-mb",
                "262144",
                "--state-dir",
                str(Path(tmp) / "agents"),
                "--log-level",
                "warning",
            ],
            env={**os.environ, "CORRAL_AGENT_TOKEN": AGENT_TOKEN},
        )
        try:
            wait_for(
                lambda: master.http.get("/api/v1/status").json()["hosts"].get("ready") == args.hosts,
                120,
                what="every host registered",
            )
            # Hosts that join with a join token are ready before their own credentials are minted and
            # stored: measure once the fleet has joined, not while 500 credential writes still run.
            wait_for(
                lambda: (
                    sum(1 for t in master.http.get("/api/v1/admin/tokens").json()["items"] if t.get("host"))
                    >= args.hosts
                ),
                120,
                what="every host's credential stored",
            )
            latencies, wall = asyncio.run(
                load(master.url, args.clients, args.jobs, args.tasks_per_job, args.keys)
            )
            ended = time.perf_counter()
            status = master.http.get("/api/v1/status").json()
            pending_at_end = status["pending"]
            metrics = master.http.get("/metrics").text
            iterations = _sample(metrics, "corral_scheduler_iteration_seconds_count")
            iteration_s = _sample(metrics, "corral_scheduler_iteration_seconds_sum")
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
                "iterations": int(iterations),
                "iteration_mean_ms": round(1000 * iteration_s / max(iterations, 1), 2),
                "write_batches": status["writer"]["batches"],
                "mean_commit_ms": status["writer"].get("mean_commit_ms"),
                "records_per_batch": round(
                    status["writer"]["records"] / max(status["writer"]["batches"], 1), 1
                ),
            }
        except BaseException:
            print(master.log()[-5000:], file=sys.stderr)
            raise
        finally:
            fleet.terminate()
            fleet.wait(30)
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
