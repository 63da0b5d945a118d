"""The event bus behind the SSE stream: job, task and host changes fanned out to subscribers.

Publishing never blocks the leader: each subscriber has a bounded queue, and one that falls too far
behind is cut off (it gets an ``overflow`` event and must resubscribe, taking a fresh snapshot).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class BusEvent:
    kind: str  # "job" | "task" | "host" | "overflow"
    data: dict[str, Any]


class Subscription:
    def __init__(self, bus: EventBus, queue_size: int, accept: Callable[[BusEvent], bool] | None) -> None:
        self._bus = bus
        self.queue: asyncio.Queue[BusEvent] = asyncio.Queue(queue_size)
        self.accept = accept
        self.overflowed = False

    def offer(self, event: BusEvent) -> None:
        if self.overflowed or (self.accept is not None and not self.accept(event)):
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True
            # Make room for the marker so the reader learns why the stream ends.
            self.queue.get_nowait()
            self.queue.put_nowait(BusEvent("overflow", {"message": "subscriber fell behind; resubscribe"}))

    async def get(self) -> BusEvent:
        return await self.queue.get()

    def close(self) -> None:
        self._bus.unsubscribe(self)


class EventBus:
    def __init__(self, queue_size: int = 10_000) -> None:
        self.queue_size = queue_size
        self._subs: set[Subscription] = set()

    @property
    def active(self) -> bool:
        return bool(self._subs)

    def subscribe(self, accept: Callable[[BusEvent], bool] | None = None) -> Subscription:
        sub = Subscription(self, self.queue_size, accept)
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs.discard(sub)

    def publish(self, kind: str, data: Callable[[], dict[str, Any]]) -> None:
        """Offer an event to every subscriber; ``data`` is only built when someone listens."""
        if not self._subs:
            return
        event = BusEvent(kind, data())
        for sub in list(self._subs):
            sub.offer(event)
