"""How long the ``corral`` command takes to answer, as a person at a terminal feels it.

A real master (its own process, SQLite in a temp dir, a few jobs) and the real console script
(``corral`` beside this interpreter), each command run RUNS times as a fresh process:

    --help      the whole command tree built and its help printed (target <= 0.3 s median)
    job ls      one client command: imports, a request to the master, a table (target <= 0.3 s median)

Wall time of each process, start to exit (and the CPU it used, which a busy machine disturbs less).
Like an installed corral, the commands run with their bytecode compiled (a private PYTHONPYCACHEPREFIX,
even where PYTHONDONTWRITEBYTECODE is set); one untimed run first fills it and the disk cache.
Prints one JSON line per command:
    python bench/cli.py --runs 15
    python bench/cli.py --master http://127.0.0.1:8080   # a master already running (CORRAL_TOKEN)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.cluster import ADMIN_TOKEN, MasterProcess
from tests.support.specs import batch_job

TARGET_S = 0.3
COMMANDS = {"--help": ["--help"], "job ls": ["job", "ls"]}


def console_script() -> str:
    """The ``corral`` installed beside this interpreter (the virtualenv's), else the one on PATH."""
    beside = Path(sys.executable).parent / "corral"
    found = str(beside) if beside.exists() else shutil.which("corral")
    if not found:
        raise SystemExit("no corral console script beside this python or on PATH (pip install -e .)")
    return found


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile: a value that was measured, never an interpolation."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(corral: str, args: list[str], expect: str, runs: int, env: dict[str, str]) -> dict[str, Any]:
    walls: list[float] = []
    cpus: list[float] = []
    for run in range(runs + 1):
        cpu_before = children_cpu_s()
        began = time.perf_counter()
        done = subprocess.run([corral, *args], capture_output=True, text=True, env=env, timeout=120)
        wall = time.perf_counter() - began
        if done.returncode != 0 or expect not in done.stdout:
            said = done.stdout + done.stderr
            raise SystemExit(f"corral {' '.join(args)} exited {done.returncode} without {expect!r}:\n{said}")
        if run > 0:  # run 0 fills the bytecode and disk caches
            walls.append(wall)
            cpus.append(children_cpu_s() - cpu_before)
    median = statistics.median(walls)
    return {
        "runs": runs,
        "median_s": round(median, 4),
        "p90_s": round(percentile(walls, 0.9), 4),
        "min_s": round(min(walls), 4),
        "cpu_median_s": round(statistics.median(cpus), 4),
        "target_s": TARGET_S,
        "target_met": median <= TARGET_S,
    }


def run_all(corral: str, master: str, token: str, listed: str, runs: int) -> None:
    with tempfile.TemporaryDirectory() as pycache:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env |= {
            "CORRAL_MASTER": master,
            "CORRAL_TOKEN": token,
            "COLUMNS": "200",
            "PYTHONPYCACHEPREFIX": pycache,
        }
        expect = {"--help": "Usage", "job ls": listed}
        for name, command in COMMANDS.items():
            line = {"bench": "cli", "command": name} | measure(corral, command, expect[name], runs, env)
            print(json.dumps(line), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=15, help="timed runs of each command")
    parser.add_argument("--jobs", type=int, default=20, help="jobs the master holds for `job ls` to list")
    parser.add_argument("--master", default="", help="time against this running master instead of a new one")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    corral = console_script()
    if args.master:
        run_all(corral, args.master, os.environ.get("CORRAL_TOKEN", ""), "jobs (", args.runs)
        return
    with tempfile.TemporaryDirectory() as tmp:
        master = MasterProcess(Path(tmp)).start()
        try:
            for i in range(args.jobs):
                master.submit(batch_job(["sleep", "3600"], application=f"clibench{i}"))
            run_all(corral, master.url, ADMIN_TOKEN, f"jobs ({args.jobs})", args.runs)
        finally:
            master.close()


if __name__ == "__main__":
    main()
