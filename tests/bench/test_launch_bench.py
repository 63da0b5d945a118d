"""bench/launch.py runs and reports what it promises (no timing is asserted: figures are for people)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KEYS = {
    "corral_per_s",
    "raw_per_s",
    "ratio",
    "started_ms_p50",
    "started_ms_p99",
    "control_plane_ms_p50",
    "control_plane_ms_p99",
}

pytestmark = pytest.mark.e2e


def test_launch_bench_smoke() -> None:
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "launch.py"),
            "--containers",
            "4",
            "--concurrency",
            "2",
            "--runs",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    assert len(lines) == 2 and lines[-1]["summary"] == "median"
    for line in lines:
        assert line.keys() >= KEYS
        assert line["corral_per_s"] > 0 and line["raw_per_s"] > 0
        assert line["control_plane_ms_p50"] <= line["control_plane_ms_p99"] <= line["started_ms_p99"]
