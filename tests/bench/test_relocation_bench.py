"""bench/relocation.py runs end to end on a small fleet and reports what it promises (no timing asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def test_relocation_bench_smoke() -> None:
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "relocation.py"),
            "--tasks",
            "40",
            "--hosts",
            "10",
            "--group-hosts",
            "5",
            "--partition-percent",
            "40",
            "--runs",
            "1",
            "--timeout",
            "120",
        ],
        capture_output=True,
        text=True,
        timeout=280,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    lines = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    assert len(lines) == 2
    run, summary = lines
    assert run["bench"] == summary["bench"] == "relocation"
    assert summary["summary"] == "median" and summary["runs"] == 1
    assert run["partitions"] == 3  # 5 hosts, 40 % a time: 2, 2, 1
    assert run["drain_completed"] and run["drain_state"] == "done" and run["drain_s"] > 0
    assert run["budget_held"] and run["required"] == 36 and run["min_ready"] >= 36
    assert run["on_group_before"] > 0 and run["moved"] >= run["on_group_before"]
    assert run["left_on_group"] == 0
    assert run["plans"] > 0 and run["plan_ms_mean"] > 0
    assert summary["budget_held"] and summary["drains_completed"]
