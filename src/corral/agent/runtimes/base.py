"""The runtime interface the agent drives."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from corral.domain.wire import LaunchSpec, TaskReport

Reporter = Callable[[TaskReport], None]


class Runtime(Protocol):
    name: str

    def bind(self, report: Reporter) -> None:
        """Give the runtime the function it calls on every task state change."""

    async def launch(self, spec: LaunchSpec) -> None:
        """Start the task; report StartInitiated, Started and, eventually, Finished."""

    async def kill(self, task_id: str, grace_period_s: float) -> None:
        """Stop the task; it reports Finished. An unknown task is reported Finished at once."""

    async def recover(self) -> list[TaskReport]:
        """What runs already (after an agent restart): reported at registration."""

    async def close(self) -> None: ...
