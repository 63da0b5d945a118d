"""bench/packing.py in its quick form: the JSON it prints has every figure, and a batch — the real
``schedule()`` in pack mode — packs the quick instances within the target of the L2 bound at 30 % and
at 3 % slack. Timings are not asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REQUIRED = {
    "set",
    "slack_pct",
    "instances",
    "tasks",
    "hosts",
    "bound",
    "l2_hosts",
    "batch_hosts",
    "batch_over_pct",
    "batch_pending",
    "batch_ms",
    "online_hosts",
    "online_over_pct",
    "online_pending",
    "online_ms",
    "settled_hosts",
    "settled_over_pct",
    "settled_pending",
    "consolidation_rounds",
    "moves",
    "consolidate_ms",
    "violations",
    "target",
    "target_met",
}
BATCH_TARGET = 0.5  # % over the bound, averaged over the instances of a set


def test_the_quick_run_reports_every_figure_and_batches_pack_within_the_target() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "packing.py"), "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert {(line["set"], line["slack_pct"]) for line in lines} == {
        (name, slack) for name in ("u250", "u500") for slack in (30, 3)
    }
    for line in lines:
        where = (line["set"], line["slack_pct"])
        assert line.keys() >= REQUIRED, (where, REQUIRED - line.keys())
        assert line["bound"] == "L2" and line["quick"] is True
        assert line["violations"] == 0, where
        assert 0 < line["l2_hosts"] <= line["batch_hosts"] <= line["hosts"], where
        assert line["l2_hosts"] <= line["online_hosts"] <= line["hosts"], where
        assert line["l2_hosts"] <= line["settled_hosts"] <= line["hosts"], where
        # Consolidation only frees hosts; only a retried pending task could take one again.
        assert line["settled_hosts"] <= line["online_hosts"] or line["online_pending"] > 0, where
        assert line["batch_pending"] == 0, where
        assert line["batch_over_pct"] <= BATCH_TARGET, where
        assert line["batch_ms"] > 0 and line["online_ms"] > 0, where
