"""The runtime interface the agent drives."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol

from corral.domain.wire import Health, LaunchSpec, TaskReport

Reporter = Callable[[TaskReport], None]


@dataclass(frozen=True, slots=True)
class Usage:
    """What a running task uses now, where the runtime can tell."""

    cpu_seconds: float | None = None  # cpu time since it started
    memory_bytes: int | None = None  # memory now (page cache included, as the kernel counts it)


class LogsUnavailable(Exception):
    """The task's logs cannot be read here (never ran here, or gone past retention)."""


class Runtime(Protocol):
    name: str

    def bind(self, report: Reporter) -> None:
        """Give the runtime the function it calls on every task state change."""

    async def launch(self, spec: LaunchSpec) -> None:
        """Start the task (without waiting): report StartInitiated, Started and, eventually, Finished."""

    async def kill(self, task_id: str, grace_period_s: float) -> None:
        """Stop the task; it reports Finished. An unknown task is reported Finished at once."""

    async def recover(self) -> list[TaskReport]:
        """What runs already (after an agent restart): reported at registration."""

    async def logs(self, task_id: str, tail: int | None, follow: bool) -> AsyncIterator[str]:
        """Open the task's output (raising LogsUnavailable if it cannot be had); the iterator yields it,
        with ``follow`` until the task ends."""

    async def health(self) -> Health: ...

    async def images(self) -> tuple[str, ...]:
        """Images present on the host (the scheduler prefers hosts that have a task's image)."""

    async def housekeeping(self) -> None:
        """Periodic clean-up: finished containers past retention, unused images."""

    async def kill_all(self) -> None:
        """Stop every task at once, reporting nothing (the host goes away)."""

    async def close(self) -> None:
        """Release the runtime's own resources. Tasks keep running where the runtime allows it."""

    def usage(self) -> dict[str, Usage]:
        """The tasks running now and what each uses. Called from the metrics thread: reads only."""

    def errors(self) -> dict[str, int]:
        """Calls to the runtime's engine that failed since start, by call (Docker API errors)."""
