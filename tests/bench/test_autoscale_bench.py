"""bench/autoscale.py runs end to end on a small burst and reports what it promises (no timing asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def test_autoscale_bench_smoke() -> None:
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "autoscale.py"),
            *("--tasks", "200", "--hosts", "2", "--host-cpu", "32", "--service-tasks", "12"),
            *("--cooldown", "1", "--runs", "1", "--timeout", "180"),
        ],
        capture_output=True,
        text=True,
        timeout=400,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    run, summary = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    assert run["bench"] == summary["bench"] == "autoscale" and summary["runs"] == 1
    # 2 hosts of 32 cpu with 6 cpu of service: 58 tasks fit; 142 more need exactly 5 hosts of 32.
    assert run["expected_new_hosts"] == 5 and run["asked_for_tasks"] == 5 and run["exact"]
    assert run["scale_up_decisions"] == 1 and run["peak_hosts"] >= 7
    assert run["final_hosts"] <= run["floor_hosts"] == 2  # the service's 6 cpu on one host, one idle
    assert run["budget_held"] and run["min_ready"] >= run["required"]
    assert run["terminated"] >= 5 and run["terminated_twice"] == 0
    assert run["hosts_over_time"] and summary["exact"] and summary["at_once"]
