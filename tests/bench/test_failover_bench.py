"""bench/failover.py runs end to end on a small fleet and reports what it promises (no timing asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def test_failover_bench_smoke() -> None:
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "failover.py"),
            "--tasks",
            "600",
            "--hosts",
            "6",
            "--runs",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    lines = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    summary = lines[-1]
    assert summary["summary"] == "median" and summary["tasks"] == 600
    for key in ("failover_s", "takeover_s", "load_s", "cold_start_s", "leader_rss_mb"):
        assert summary[key] > 0, key
    assert summary["failover_s"] >= summary["load_s"]
