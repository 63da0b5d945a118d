"""A partitioned drain at sim scale: a host group emptied a slice at a time, within a service's budget.

One master in its own process; two simulated fleets in this one, over real WebSockets: GROUP_HOSTS hosts
in host group ``upgrade`` and the rest of HOSTS in ``stay``. A service of TASKS tasks (a readiness probe,
``disruption_budget: {availability_percentage: BUDGET_PERCENT}``, 90 by default) is spread over all of
them; once every task is ready the group is drained PARTITION_PERCENT at a time. Meanwhile a poller counts
the job's ready tasks every 0.25 s (a task asked to stop does not count) and keeps the lowest count: the
budget holds if it never falls below ceil(BUDGET_PERCENT % of TASKS).

    drain_s        the drain's POST -> its state ``done`` (polled every 0.25 s)
    min_ready      the fewest ready tasks seen while it ran (``required``: ceil(BUDGET_PERCENT % of tasks))
    moved          tasks that finished with reason ``relocated`` (``moved_again``: of them, replacements
                   placed on a later partition's host, not yet draining, and so moved twice)
    on_group_before  the tasks on the group's hosts when the drain began
    plan_ms_*      the relocation planner's time per plan, measured inside the master (``/status``
                   drains): the mean over every plan, and p50/max of the last plan sampled at each poll

Prints one JSON line per run and a final line with medians; exits 1 if the budget was broken or a drain
did not finish within --timeout:
    python bench/relocation.py --tasks 2000 --hosts 200 --group-hosts 40 --runs 1
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.cluster import Fleet, MasterProcess, client, wait_for

from corral.agent.pool import FleetSpec

# Heartbeats as bench/control_plane.py runs large fleets (the tests' 0.3 s would flood the master).
ENV = {"CORRAL_HEARTBEAT_INTERVAL_S": "5", "CORRAL_HEARTBEAT_TIMEOUT_S": "60", "CORRAL_LOST_AFTER_S": "120"}
GROUP = "upgrade"
POLL_S = 0.25
HOST = {"cpu": 16, "memory_mb": 65536, "network_mbps": 10_000}  # 32 tasks of 0.5 cpu each


def service(tasks: int, budget_percent: float) -> dict[str, Any]:
    return {
        "owner": {"team_email": "bench@example.com"},
        "application": "relocation",
        "container": {
            "image": {"name": "corral/busybox", "tag": "latest"},
            "command": ["sh", "-c", "while true; do sleep 60; done"],
            "resources": {"cpu": 0.5, "memory_mb": 256, "disk_mb": 100, "network_mbps": 10},
            "health": {
                "readiness": {"exec": {"command": ["true"]}, "interval_s": 1, "timeout_s": 0.5, "failures": 2}
            },
        },
        "service": {
            "capacity": {"min": 0, "desired": tasks, "max": tasks},
            "retry_policy": {"kind": "exponential", "initial_delay_ms": 100, "max_delay_ms": 1000},
        },
        "disruption_budget": {"availability_percentage": budget_percent},
    }


def started_tasks(http: httpx.Client, job_id: str) -> list[dict[str, Any]]:
    """The job's Started tasks (every ready task is one), a page of 5000 at a time."""
    items: list[dict[str, Any]] = []
    after = None
    while True:
        params: dict[str, Any] = {"job": job_id, "state": "Started", "limit": 5000}
        if after:
            params["after"] = after
        r = http.get("/api/v1/tasks", params=params)
        r.raise_for_status()
        page = r.json()
        items.extend(page["items"])
        after = page["next"]
        if not after:
            return items


def ready_count(http: httpx.Client, job_id: str) -> int:
    return sum(1 for t in started_tasks(http, job_id) if t.get("ready") and not t.get("kill_reason"))


class ReadyPoller:
    """Counts the job's ready tasks every POLL_S on its own connection; keeps the lowest count seen."""

    def __init__(self, url: str, job_id: str) -> None:
        self.http = client(base_url=url, timeout=60)
        self.job_id = job_id
        self.lowest: int | None = None
        self.polls = 0
        self.errors = 0
        self.poll_s: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="ready-poller")
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            began = time.perf_counter()
            try:
                count = ready_count(self.http, self.job_id)
            except httpx.HTTPError:
                self.errors += 1
            else:
                self.polls += 1
                self.poll_s.append(time.perf_counter() - began)
                self.lowest = count if self.lowest is None else min(self.lowest, count)
            self._stop.wait(POLL_S)

    def stop(self) -> int | None:
        self._stop.set()
        self._thread.join(120)
        self.http.close()
        return self.lowest


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_once(args: argparse.Namespace) -> dict[str, Any]:
    tasks, hosts, group_hosts = args.tasks, args.hosts, args.group_hosts
    required = math.ceil(tasks * args.budget_percent / 100 - 1e-9)
    with tempfile.TemporaryDirectory() as tmp:
        master = MasterProcess(Path(tmp), ENV, store_url=args.store_url).start()
        fleets: list[Fleet] = []
        try:
            for prefix, group, count in (("up", GROUP, group_hosts), ("st", "stay", hosts - group_hosts)):
                spec = FleetSpec(
                    count=count, id_prefix=prefix, host_group=group, heartbeat_backoff_max_s=2.0, **HOST
                )
                fleets.append(Fleet(master.url, spec))
            for fleet in fleets:
                fleet.wait_connected(120)
            wait_for(
                lambda: master.http.get("/api/v1/status").json()["hosts"].get("ready") == hosts,
                120,
                what=f"{hosts} hosts ready",
            )
            # Flex jobs pack by default; spread them so the group holds its share of the service.
            mode = master.http.put("/api/v1/scheduler/modes/flex", json={"mode": "spread"})
            assert mode.status_code == 200, mode.text
            job_id = master.submit(service(tasks, args.budget_percent))["id"]
            submitted = time.perf_counter()
            wait_for(
                lambda: ready_count(master.http, job_id) == tasks,
                args.timeout,
                interval=1.0,
                what=f"{tasks} ready tasks",
            )
            ready_s = time.perf_counter() - submitted
            before = started_tasks(master.http, job_id)
            on_group = sum(1 for t in before if (t.get("host_id") or "").startswith("up-"))

            poller = ReadyPoller(master.url, job_id)
            began = time.perf_counter()
            body = {"partition_percent": args.partition_percent}
            answer = master.http.post(f"/api/v1/hosts/groups/{GROUP}/drain", json=body)
            assert answer.status_code == 200, answer.text
            partitions = len(answer.json()["partitions"])
            samples: list[float] = []
            plans_seen = 0
            drain_s: float | None = None
            state = ""
            deadline = time.monotonic() + args.timeout
            while time.monotonic() < deadline:
                try:
                    state = master.http.get(f"/api/v1/hosts/groups/{GROUP}/drain").json()["state"]
                    drains = master.http.get("/api/v1/status").json()["drains"]
                except httpx.HTTPError:
                    time.sleep(POLL_S)
                    continue
                if drains["plans"] > plans_seen:
                    plans_seen = drains["plans"]
                    samples.append(drains["last_plan_ms"])
                if state == "done":
                    drain_s = time.perf_counter() - began
                    break
                time.sleep(POLL_S)
            lowest = poller.stop()
            drains = master.http.get("/api/v1/status").json()["drains"]
            every = master.tasks(job_id)
            moved = sum(1 for t in every if t.get("reason") == "relocated")
            # A replacement placed on a later partition's host (not yet draining) is moved again.
            moved_again = sum(
                1 for t in every if t.get("reason") == "relocated" and t.get("relocations", 0) > 0
            )
            ready_after = ready_count(master.http, job_id)
            left_on_group = sum(
                1 for t in every if t["state"] != "Finished" and (t.get("host_id") or "").startswith("up-")
            )
            plans = drains["plans"]
            result = {
                "bench": "relocation",
                "tasks": tasks,
                "hosts": hosts,
                "group_hosts": group_hosts,
                "partition_percent": args.partition_percent,
                "budget_percent": args.budget_percent,
                "partitions": partitions,
                "on_group_before": on_group,
                "moved": moved,
                "moved_again": moved_again,
                "left_on_group": left_on_group,
                "drain_completed": drain_s is not None,
                "drain_state": state,
                "drain_s": round(drain_s, 3) if drain_s is not None else None,
                "min_ready": lowest,
                "required": required,
                "budget_held": lowest is not None and lowest >= required,
                "ready_after": ready_after,
                "plans": plans,
                "plan_ms_mean": round(drains["plan_ms_total"] / plans, 3) if plans else None,
                "plan_ms_p50": round(statistics.median(samples), 3) if samples else None,
                "plan_ms_max": round(max(samples), 3) if samples else None,
                "plan_samples": len(samples),
                "ready_polls": poller.polls,
                "ready_poll_errors": poller.errors,
                "ready_poll_ms_p50": round(1000 * percentile(poller.poll_s, 0.5), 1),
                "ready_poll_ms_max": round(1000 * max(poller.poll_s, default=0.0), 1),
                "time_to_ready_s": round(ready_s, 3),
            }
            if not (result["budget_held"] and result["drain_completed"]):
                print(f"---- master log (last 20000 chars) ----\n{master.log()[-20000:]}", file=sys.stderr)
            return result
        except BaseException:
            print(f"---- master log (last 20000 chars) ----\n{master.log()[-20000:]}", file=sys.stderr)
            raise
        finally:
            for fleet in fleets:
                fleet.close()
            master.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--hosts", type=int, default=200, help="every host, the group's included")
    parser.add_argument("--group-hosts", type=int, default=40, help="hosts of the drained group")
    parser.add_argument("--partition-percent", type=float, default=20.0)
    parser.add_argument(
        "--budget-percent", type=float, default=90.0, help="the service's availability_percentage"
    )
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument(
        "--timeout", type=float, default=900.0, help="for the tasks to be ready, then the drain"
    )
    parser.add_argument(
        "--store-url", default="", help="e.g. a PostgreSQL URL (default: SQLite in a temp dir)"
    )
    args = parser.parse_args()
    if not 0 < args.group_hosts < args.hosts:
        parser.error("--group-hosts must be more than 0 and fewer than --hosts")
    results = []
    for run in range(args.runs):
        result = run_once(args) | {"run": run}
        results.append(result)
        print(json.dumps(result), flush=True)

    def median(key: str) -> float | None:
        values = [r[key] for r in results if r[key] is not None]
        return statistics.median(values) if values else None

    summary = {
        "bench": "relocation",
        "summary": "median",
        "tasks": args.tasks,
        "hosts": args.hosts,
        "group_hosts": args.group_hosts,
        "partition_percent": args.partition_percent,
        "runs": len(results),
        "drain_s": median("drain_s"),
        "moved": median("moved"),
        "on_group_before": median("on_group_before"),
        "plans": median("plans"),
        "plan_ms_mean": median("plan_ms_mean"),
        "plan_ms_p50": median("plan_ms_p50"),
        "plan_ms_max": max((r["plan_ms_max"] for r in results if r["plan_ms_max"] is not None), default=None),
        "min_ready": min((r["min_ready"] for r in results if r["min_ready"] is not None), default=None),
        "required": results[0]["required"],
        "budget_held": all(r["budget_held"] for r in results),
        "drains_completed": all(r["drain_completed"] for r in results),
    }
    print(json.dumps(summary), flush=True)
    if not (summary["budget_held"] and summary["drains_completed"]):
        sys.exit(1)


if __name__ == "__main__":
    main()
