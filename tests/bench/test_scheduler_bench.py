"""bench/scheduler.py in its quick form: every scenario runs and reports sane numbers. No timings are
asserted — this only keeps the benchmark working."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = {
    "hetero_5000",
    "hetero_5000_spread",
    "identical_5000",
    "iter200_10000_mixed",
    "iter200_10000_distinct",
    "small_mix_pack",
    "large",
    "large_75_stream",
}
REQUIRED = {
    "scenario",
    "mode",
    "runs",
    "hosts",
    "tasks",
    "placed",
    "pending",
    "classes",
    "placements_per_s",
    "iteration_ms_p50",
    "iteration_ms_p99",
    "hosts_used",
    "lower_bound_hosts",
    "packing_ratio",
    "cpu_allocated_pct",
    "violations",
    "zone_balance_uneven",
}


def test_every_scenario_reports_sane_numbers() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "scheduler.py"), "--quick", "--runs", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert {line["scenario"] for line in lines} == SCENARIOS
    assert len(lines) == len(SCENARIOS)
    for line in lines:
        name = line["scenario"]
        assert line.keys() >= REQUIRED, (name, REQUIRED - line.keys())
        assert line["runs"] == 1
        assert line["mode"] == ("spread" if name.endswith("_spread") else "pack")
        assert line["placed"] > 0, name
        assert line["placed"] + line["pending"] <= line["tasks"] or name.startswith("iter200"), name
        assert line["placements_per_s"] > 0, name
        assert 0 < line["iteration_ms_p50"] <= line["iteration_ms_p99"], name
        assert 0 <= line["cpu_allocated_pct"] <= 100, name
        assert 0 < line["lower_bound_hosts"] <= line["hosts_used"] <= line["hosts"], name
        assert line["violations"] == 0, name
        assert line["zone_balance_uneven"] >= 0, name
        if name.startswith("iter200"):  # what one class costs: the worst case's figure
            assert line["us_per_class"] > 0, name
