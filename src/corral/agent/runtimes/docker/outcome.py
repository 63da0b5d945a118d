"""How a container's end becomes a task's end: exit code, OOM kill, or the runtime limit."""

from __future__ import annotations

from typing import Any

from corral.domain.states import FinishedReason


def outcome(state: dict[str, Any], memory_mb: int | None) -> tuple[FinishedReason | None, str, int | None]:
    """(reason, detail, exit code) from a container's ``State``; reason None: the exit code decides."""
    code = state.get("ExitCode")
    exit_code = int(code) if code is not None else None
    if state.get("OOMKilled"):
        limit = f" of {memory_mb} MB" if memory_mb else ""
        return FinishedReason.FAILED, f"OOM killed: the container exceeded its memory limit{limit}", exit_code
    error = state.get("Error") or ""
    if error:
        return FinishedReason.LOCAL_SYSTEM_ERROR, f"docker: {error}", exit_code
    return None, f"exited {exit_code}", exit_code
