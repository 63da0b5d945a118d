"""Launching real containers on one agent: Corral against raw ``docker run``, in the same run.

Corral: one batch job of N short containers (``true``) submitted through the API; the docker agent
launches them with its launch concurrency C. Raw: C workers running ``docker run`` of the same image,
limits and init, N in all. Both measured to the last container's exit.

Prints one JSON line per run and a median line:
    python bench/launch.py --containers 100 --concurrency 8 --runs 3

    corral_per_s / raw_per_s   containers per second, submission (or first docker run) to the last exit
    ratio                      corral_per_s / raw_per_s (target >= 0.8)
    started_ms_p50 / p99       job submission -> the task's Started (master's clock), per task
    control_plane_ms_p50 / p99 job submission -> the launch message at the agent, per task (target p99 <= 50)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.cluster import MasterProcess, wait_for
from tests.support.docker_node import IMAGE, DockerNode, remove_containers

from corral.agent.runtimes.docker import DockerConfig
from corral.domain.resources import Resources
from corral.domain.wire import LaunchSpec

CPU, MEMORY_MB = 0.1, 32


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def raw_docker(n: int, concurrency: int, label: str) -> float:
    """Seconds for ``n`` ``docker run``s of the same image and limits, ``concurrency`` at a time."""
    cmd = [
        "docker", "run", "--init", "--label", label, f"--cpus={CPU}", f"--memory={MEMORY_MB}m",
        f"--memory-swap={MEMORY_MB}m", "--pids-limit=4096", "--shm-size=8m", IMAGE, "true",
    ]  # fmt: skip
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(lambda _: subprocess.run(cmd, capture_output=True).returncode, range(n)))
    elapsed = time.perf_counter() - started
    if any(results):
        raise RuntimeError(f"{sum(1 for r in results if r)} raw docker runs failed")
    return elapsed


def remove_labelled(label: str) -> None:
    client = docker.from_env()
    for c in client.api.containers(all=True, filters={"label": [label]}):
        with contextlib.suppress(Exception):
            client.api.remove_container(c["Id"], force=True)
    client.close()


def corral_run(master: MasterProcess, node: DockerNode, n: int) -> dict:
    received: dict[str, float] = {}
    lock = threading.Lock()

    def on_launch(spec: LaunchSpec) -> None:
        with lock:
            received[spec.task_id] = time.time()

    assert node.agent is not None
    node.agent.on_launch = on_launch
    spec = {
        "owner": {"team_email": "bench@example.com"},
        "application": "launchbench",
        "container": {
            "image": {"name": "corral/busybox", "tag": "latest"},
            "command": ["true"],
            "resources": {"cpu": CPU, "memory_mb": MEMORY_MB, "shm_mb": 8, "disk_mb": 10, "network_mbps": 1},
        },
        "batch": {"size": n},
    }
    submitted = time.time()
    started = time.perf_counter()
    job = master.submit(spec)
    master.wait_job_finished(job["id"], timeout=600)
    elapsed = time.perf_counter() - started
    tasks = master.tasks(job["id"])
    if len(tasks) != n or any(t["reason"] != "normal" for t in tasks):
        raise RuntimeError(f"not every container ran cleanly: {[t['reason'] for t in tasks][:10]}")
    started_ms = [
        (next(e["at"] for e in t["history"] if e["state"] == "Started") - submitted) * 1000 for t in tasks
    ]
    if set(received) != {t["id"] for t in tasks}:
        raise RuntimeError("the agent did not see one launch per task")
    control_ms = [(received[t["id"]] - submitted) * 1000 for t in tasks]
    return {"elapsed": elapsed, "started_ms": started_ms, "control_ms": control_ms}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--containers", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    n, c = args.containers, args.concurrency
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        master = MasterProcess(Path(tmp), {"CORRAL_SQLITE_SYNCHRONOUS": "FULL"}).start()
        host = f"launchbench-{int(time.time()) % 100000}"
        # The host is booked big enough to hold every container at once: the benchmark measures launching,
        # not waiting for room.
        room = Resources(
            cpu=CPU * n + 1, memory_mb=MEMORY_MB * n + 1024, disk_mb=100_000, network_mbps=10_000
        )
        config = DockerConfig(host, launch_concurrency=c, log_retention_s=3600)
        node = DockerNode(master.url, host, config, room)
        try:
            wait_for(lambda: master.http.get(f"/api/v1/hosts/{host}").status_code == 200, 30)
            for run in range(args.runs):
                label = f"corral.bench=raw-{run}"
                # Alternate which goes first, so neither always meets a warmer (or busier) daemon.
                if run % 2 == 0:
                    raw = raw_docker(n, c, label)
                    ours = corral_run(master, node, n)
                else:
                    ours = corral_run(master, node, n)
                    raw = raw_docker(n, c, label)
                remove_labelled(label)
                remove_containers(host)
                line = {
                    "bench": "launch",
                    "run": run,
                    "containers": n,
                    "concurrency": c,
                    "corral_per_s": round(n / ours["elapsed"], 2),
                    "raw_per_s": round(n / raw, 2),
                    "ratio": round(raw / ours["elapsed"], 3),
                    "started_ms_p50": round(percentile(ours["started_ms"], 50), 1),
                    "started_ms_p99": round(percentile(ours["started_ms"], 99), 1),
                    "control_plane_ms_p50": round(percentile(ours["control_ms"], 50), 1),
                    "control_plane_ms_p99": round(percentile(ours["control_ms"], 99), 1),
                }
                lines.append(line)
                print(json.dumps(line), flush=True)
        finally:
            node.close()
            master.close()
    summary = {"bench": "launch", "summary": "median", "containers": n, "concurrency": c, "runs": len(lines)}
    for key in ("corral_per_s", "raw_per_s", "ratio", "started_ms_p50", "started_ms_p99",
                "control_plane_ms_p50", "control_plane_ms_p99"):  # fmt: skip
        summary[key] = statistics.median(line[key] for line in lines)
    summary["targets_met"] = summary["ratio"] >= 0.8 and summary["control_plane_ms_p99"] <= 50
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
