"""Printing: rich tables for people, JSON for programs (``--json``)."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

# Piped output is not cut at 80 columns: ids and reasons are what people grep for.
_WIDTH = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 200
console = Console(width=_WIDTH)
errors = Console(stderr=True)

STATE_STYLE = {
    "Accepted": "yellow",
    "Launched": "cyan",
    "StartInitiated": "cyan",
    "Started": "green",
    "KillInitiated": "magenta",
    "Disconnected": "red",
    "Finished": "dim",
    "ready": "green",
    "unreachable": "red",
}


def emit_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=True))


def styled(state: str) -> str:
    style = STATE_STYLE.get(state)
    return f"[{style}]{state}[/{style}]" if style else state


def ago(ts: float | None) -> str:
    if not ts:
        return "-"
    seconds = max(0.0, time.time() - ts)
    if seconds < 60:
        return f"{seconds:.0f}s ago"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m ago"
    if seconds < 86400:
        return f"{seconds / 3600:.1f}h ago"
    return f"{seconds / 86400:.1f}d ago"


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    t = Table(title=title, title_justify="left", header_style="bold")
    for c in columns:
        t.add_column(c)
    for row in rows:
        t.add_row(*(str(v) if v is not None else "-" for v in row))
    console.print(t)


def job_summary(job: dict[str, Any]) -> tuple[Any, ...]:
    d = job["descriptor"]
    if job["type"] == "batch":
        size = str(d["batch"]["size"])
    else:
        c = d["service"]["capacity"]
        size = f"{c['min']}/{c['desired']}/{c['max']}" + ("" if d["service"]["enabled"] else " (disabled)")
    counts = job.get("task_counts") or {}
    tasks = " ".join(f"{k}={v}" for k, v in counts.items()) or "-"
    return (
        job["id"],
        d["application"],
        job["type"],
        size,
        styled(job["state"]),
        job.get("reason") or "",
        tasks,
        ago(job["created_at"]),
    )


JOB_COLUMNS = ("ID", "APPLICATION", "TYPE", "SIZE", "STATE", "REASON", "LIVE TASKS", "CREATED")


def task_summary(task: dict[str, Any]) -> tuple[Any, ...]:
    reason = task.get("reason") or ""
    if task["state"] == "Accepted" and task.get("pending"):
        reason = task["pending"]["message"]
    elif task.get("exit_code") is not None and reason:
        reason = f"{reason} (exit {task['exit_code']})"
    return (
        task["id"],
        task["job_id"],
        "-" if task["index"] is None else task["index"],
        styled(task["state"]),
        task.get("health", "-") + (f" v{task['version']}" if task.get("version", 1) != 1 else ""),
        task.get("host_id") or "-",
        reason,
        task["attempt"],
        ago(task["updated_at"]),
    )


TASK_COLUMNS = ("ID", "JOB", "INDEX", "STATE", "HEALTH", "HOST", "REASON", "RETRY", "SINCE")
