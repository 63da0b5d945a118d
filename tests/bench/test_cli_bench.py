"""bench/cli.py runs end to end against a real master and reports what it promises (no timing asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def test_cli_bench_smoke() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "cli.py"), "--runs", "2", "--jobs", "3"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    lines = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    assert [line["command"] for line in lines] == ["--help", "job ls"]
    for line in lines:
        assert line["bench"] == "cli" and line["runs"] == 2
        assert 0 < line["min_s"] <= line["median_s"] <= line["p90_s"], line
        assert line["cpu_median_s"] > 0 and line["target_s"] == 0.3
        assert isinstance(line["target_met"], bool)
