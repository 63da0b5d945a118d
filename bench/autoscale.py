"""The cluster autoscaler on the ``local`` provider (real ``corral agent`` processes, sim runtime).

One master in its own process; a host group ``burst`` whose hosts the local provider starts and stops
(``--hosts`` of them at first: min size). A service of ``--service-tasks`` tasks (readiness probe,
``availability_percentage`` ``--budget``) runs on them; then a burst of ``--tasks`` batch tasks of 1 cpu
arrives at once. The autoscaler asks for the exact shortfall (trial placement); once every task started
the burst is killed and the group comes back down (idle hosts, then consolidation: the service's tasks are
moved make before break onto fewer hosts) to what the service needs plus ``--min-idle``.

    expected_new_hosts  what the burst needs beyond the room already free: ceil(tasks left / tasks per
                        host), worked out here from the hosts' free cpu before the burst
    asked_for_tasks     the hosts the autoscaler's scale-up asked for the pending tasks (its reason says)
    asked_new_hosts     the size it asked for less the size before (asked_for_tasks + 1 kept idle)
    scale_up_decisions  provider calls that raised the size during the burst (1: all at once)
    decision_s          burst submitted -> the scale-up asked of the provider (the pending tasks wait
                        ``pending_after_s`` = 1 s first)
    scale_up_s          burst submitted -> every task Started
    scale_down_s        burst killed -> the group at its floor (hosts the service needs + min idle)
    min_ready           the fewest ready service tasks seen throughout (``required``: the budget's floor)
    hosts_over_time     [seconds since the burst, ready hosts in the group], sampled every 0.5 s
    trial_ms_max        the longest trial placement inside the master (``/api/v1/status`` autoscaler)

Prints one JSON line per run and a final line with medians; exits 1 if the budget broke, the scale-up was
not exact and at once, or a phase timed out:
    python bench/autoscale.py --tasks 5000 --hosts 10 --host-cpu 128 --runs 1
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import re
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.cluster import AGENT_TOKEN, MasterProcess, wait_for

from corral.domain.hostgroup import HostGroup
from corral.providers import ProviderContext
from corral.providers.local import LocalProvider

ENV = {
    "CORRAL_HEARTBEAT_INTERVAL_S": "2",
    "CORRAL_HEARTBEAT_TIMEOUT_S": "30",
    "CORRAL_LOST_AFTER_S": "60",
    "CORRAL_AUTOSCALE_INTERVAL_S": "0.5",
    "CORRAL_PROVIDER_LIST_S": "1",
}
GROUP = "burst"
SAMPLE_S = 0.5


def group_body(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "shape": {
            "resources": {
                "cpu": args.host_cpu,
                "memory_mb": int(args.host_cpu * 4096),
                "disk_mb": 1_000_000,
                "network_mbps": 100_000,
                "gpu": 0,
            },
            "zones": ["zone-a", "zone-b", "zone-c"],
            "instance_type": f"sim-{args.host_cpu:g}",
        },
        "min_size": 1,
        "max_size": args.max_size,
        "min_idle": args.min_idle,
        "scale_up_cooldown_s": 2.0,
        "scale_down_cooldown_s": args.cooldown,
        "unneeded_for_s": args.cooldown,
        "pending_after_s": 1.0,
        "removal_deadline_s": 5.0,
        "provider": {"kind": "local", "config": {"runtime": "sim", "grace_s": "5"}},
    }


def service(tasks: int, budget: float) -> dict[str, Any]:
    return {
        "owner": {"team_email": "bench@example.com"},
        "application": "steady",
        "container": {
            "image": {"name": "corral/busybox", "tag": "latest"},
            "command": ["sh", "-c", "while true; do sleep 60; done"],
            "resources": {"cpu": 0.5, "memory_mb": 512, "disk_mb": 100, "network_mbps": 10},
            "health": {"readiness": {"exec": {"command": ["true"]}, "interval_s": 1, "timeout_s": 0.5}},
        },
        "service": {
            "capacity": {"min": 0, "desired": tasks, "max": tasks},
            "retry_policy": {"kind": "exponential", "initial_delay_ms": 100, "max_delay_ms": 1000},
        },
        "disruption_budget": {"availability_percentage": budget},
    }


def burst(tasks: int) -> dict[str, Any]:
    return {
        "owner": {"team_email": "bench@example.com"},
        "application": "burst",
        "container": {
            "image": {"name": "corral/busybox", "tag": "latest"},
            "command": ["sleep", "100000"],
            "resources": {"cpu": 1.0, "memory_mb": 1024, "disk_mb": 100, "network_mbps": 10},
        },
        "batch": {"size": tasks, "retry_policy": {"kind": "immediate", "retries": 0}},
    }


def hosts(master: MasterProcess) -> list[dict[str, Any]]:
    r = master.http.get("/api/v1/hosts", params={"limit": 5000})
    r.raise_for_status()
    body = r.json()
    items: list[dict[str, Any]] = body["items"] if isinstance(body, dict) else body
    return [h for h in items if h["attributes"]["host_group"] == GROUP and h["state"] == "ready"]


def count(master: MasterProcess, job_id: str, state: str) -> int:
    r = master.http.get(f"/api/v1/jobs/{job_id}")
    r.raise_for_status()
    counts: dict[str, int] = r.json().get("task_counts", {})
    return int(counts.get(state, 0))


def ready_count(master: MasterProcess, job_id: str) -> int:
    total, after = 0, None
    while True:
        params: dict[str, Any] = {"job": job_id, "state": "Started", "limit": 5000}
        if after:
            params["after"] = after
        r = master.http.get("/api/v1/tasks", params=params)
        r.raise_for_status()
        page = r.json()
        items = page["items"] if isinstance(page, dict) else page
        total += sum(1 for t in items if t.get("ready") and not t.get("kill_reason"))
        after = page.get("next") if isinstance(page, dict) else None
        if not after:
            return total


def explain(master: MasterProcess) -> dict[str, Any]:
    r = master.http.get(f"/api/v1/hostgroups/{GROUP}/explain")
    r.raise_for_status()
    out: dict[str, Any] = r.json()
    return out


class Sampler(threading.Thread):
    """Hosts in the group and the service's ready tasks, every SAMPLE_S, from ``start`` on."""

    def __init__(self, master: MasterProcess, service_id: str) -> None:
        super().__init__(daemon=True)
        self.master = master
        self.service_id = service_id
        self.start_at = time.monotonic()
        self.series: list[tuple[float, int]] = []
        self.min_ready = 1 << 30
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            with contextlib.suppress(Exception):
                self.series.append((round(time.monotonic() - self.start_at, 1), len(hosts(self.master))))
                self.min_ready = min(self.min_ready, ready_count(self.master, self.service_id))
            self.done.wait(SAMPLE_S)


def run_once(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="corral-autoscale-") as tmp:
        master = MasterProcess(Path(tmp) / "master", ENV).start()
        try:
            return _scenario(master, args)
        finally:
            master.close()
            provider = LocalProvider(ProviderContext(master.url, AGENT_TOKEN, data_dir=master.data_dir))
            group = HostGroup(GROUP)
            with contextlib.suppress(Exception):
                provider.terminate(group, [i.host_id for i in provider.list(group)])


def _scenario(master: MasterProcess, args: argparse.Namespace) -> dict[str, Any]:
    body = group_body(args)
    body["min_size"] = args.hosts
    master.http.put(f"/api/v1/hostgroups/{GROUP}", json=body).raise_for_status()
    wait_for(lambda: len(hosts(master)) == args.hosts, args.timeout, what=f"{args.hosts} hosts")
    svc = master.submit(service(args.service_tasks, args.budget))["id"]
    required = math.ceil(args.service_tasks * args.budget / 100)
    wait_for(lambda: ready_count(master, svc) == args.service_tasks, args.timeout, what="service ready")
    body["min_size"] = 1  # from now on the group may shrink to what its work needs
    master.http.put(f"/api/v1/hostgroups/{GROUP}", json=body).raise_for_status()

    free_cpu = [h["free"]["cpu"] if "free" in h else None for h in hosts(master)]
    per_host = int(args.host_cpu)
    room = sum(int(f) for f in free_cpu if f is not None) if all(f is not None for f in free_cpu) else 0
    expected = math.ceil(max(0, args.tasks - room) / per_host)
    size_before = len(hosts(master))

    sampler = Sampler(master, svc)
    sampler.start()
    t0 = time.monotonic()
    wall0 = time.time()
    job = master.submit(burst(args.tasks))["id"]

    def decided() -> dict[str, Any] | None:
        ups = [a for a in explain(master)["recent"] if a["action"] == "scale_to" and a["at"] >= wall0]
        return ups[0] if ups else None

    first = wait_for(decided, args.timeout, what="a scale-up decision")
    decision_s = first["at"] - wall0  # the master's clock when it decided
    wait_for(lambda: count(master, job, "Started") == args.tasks, args.timeout, what="every task started")
    scale_up_s = time.monotonic() - t0
    ups = [a for a in explain(master)["recent"] if a["action"] == "scale_to" and a["at"] >= wall0]
    asked = int(first["detail"].split()[0]) - size_before
    found = re.search(r"(\d+) for pending tasks", first["detail"])
    for_tasks = int(found.group(1)) if found else 0
    peak = len(hosts(master))

    t1 = time.monotonic()
    master.http.post(f"/api/v1/jobs/{job}/kill").raise_for_status()
    floor = math.ceil(args.service_tasks * 0.5 / args.host_cpu) + args.min_idle
    wait_for(lambda: len(hosts(master)) <= floor, args.timeout, what=f"the group back to {floor} hosts")
    scale_down_s = time.monotonic() - t1
    wait_for(lambda: ready_count(master, svc) == args.service_tasks, args.timeout, what="service whole")
    sampler.done.set()
    sampler.join(5)
    status = master.http.get("/api/v1/status").json().get("autoscaler", {})
    terminations = [a for a in explain(master)["recent"] if a["action"] == "terminate"]
    terminated = [h for a in terminations for h in a["detail"].split(", ")]
    return {
        "bench": "autoscale",
        "tasks": args.tasks,
        "host_cpu": args.host_cpu,
        "hosts_before": size_before,
        "expected_new_hosts": expected if room else None,
        "asked_new_hosts": asked,  # with min_idle, one more host than the tasks need, kept idle
        "asked_for_tasks": for_tasks,
        "exact": (for_tasks == expected) if room else None,
        "scale_up_decisions": len(ups),
        "peak_hosts": peak,
        "decision_s": round(decision_s, 2),
        "scale_up_s": round(scale_up_s, 2),
        "scale_down_s": round(scale_down_s, 2),
        "floor_hosts": floor,
        "final_hosts": len(hosts(master)),
        "terminated": len(terminated),
        "terminated_twice": len(terminated) - len(set(terminated)),
        "required": required,
        "min_ready": sampler.min_ready,
        "budget_held": sampler.min_ready >= required,
        "trial_ms_max": status.get("trial_ms_max"),
        "hosts_over_time": sampler.series,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", type=int, default=5000, help="burst size (1 cpu each)")
    p.add_argument("--hosts", type=int, default=10, help="hosts in the group before the burst")
    p.add_argument("--host-cpu", type=float, default=128.0, help="cpu of a host of the group's shape")
    p.add_argument("--service-tasks", type=int, default=100, help="the steady service's tasks (0.5 cpu)")
    p.add_argument("--budget", type=float, default=90.0, help="its availability_percentage")
    p.add_argument("--min-idle", type=int, default=1)
    p.add_argument("--max-size", type=int, default=200)
    p.add_argument("--cooldown", type=float, default=3.0, help="scale-down cooldown, seconds")
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--timeout", type=float, default=600.0)
    args = p.parse_args()
    results = []
    for i in range(args.runs):
        print(f"run {i + 1}/{args.runs}", file=sys.stderr)
        result = run_once(args)
        results.append(result)
        print(json.dumps(result), flush=True)
    summary = {
        "bench": "autoscale",
        "summary": "median",
        "runs": len(results),
        "decision_s": statistics.median(r["decision_s"] for r in results),
        "scale_up_s": statistics.median(r["scale_up_s"] for r in results),
        "scale_down_s": statistics.median(r["scale_down_s"] for r in results),
        "exact": all(r["exact"] is not False for r in results),
        "at_once": all(r["scale_up_decisions"] == 1 for r in results),
        "budget_held": all(r["budget_held"] for r in results),
        "terminated_twice": sum(r["terminated_twice"] for r in results),
    }
    print(json.dumps(summary), flush=True)
    ok = all(summary[k] for k in ("exact", "at_once", "budget_held")) and not summary["terminated_twice"]
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
