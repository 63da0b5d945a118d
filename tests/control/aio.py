"""Running the writer's loop for the length of a test scenario (pytest-asyncio is not used)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from corral.control.writer import StoreWriter


@contextlib.asynccontextmanager
async def running(writer: StoreWriter) -> AsyncIterator[asyncio.Task[None]]:
    """``writer.run()`` as a task, cancelled (and awaited) when the block ends if it still runs.

    A test that makes the loop fail awaits the task itself, so its exception is retrieved.
    """
    task = asyncio.create_task(writer.run())
    try:
        yield task
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
