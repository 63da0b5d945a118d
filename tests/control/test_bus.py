"""EventBus: fan-out to subscribers with filters; a slow subscriber is cut off and blocks nobody."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from corral.control.bus import BusEvent, EventBus


def _payload(**data: Any) -> Callable[[], dict[str, Any]]:
    return lambda: data


def _listening(bus: EventBus) -> bool:
    return bus.active


def _drain(queue: asyncio.Queue[BusEvent]) -> list[BusEvent]:
    out = []
    while not queue.empty():
        out.append(queue.get_nowait())
    return out


def test_every_subscriber_gets_every_event_in_order() -> None:
    async def scenario() -> None:
        bus = EventBus()
        a, b = bus.subscribe(), bus.subscribe()
        bus.publish("job", lambda: {"id": "j1"})
        bus.publish("task", lambda: {"id": "t1"})
        for sub in (a, b):
            assert await sub.get() == BusEvent("job", {"id": "j1"})
            assert await sub.get() == BusEvent("task", {"id": "t1"})

    asyncio.run(scenario())


def test_filters_apply_per_subscriber() -> None:
    async def scenario() -> None:
        bus = EventBus()
        tasks_only = bus.subscribe(lambda e: e.kind == "task")
        job_j2 = bus.subscribe(lambda e: e.kind == "job" and e.data["id"] == "j2")
        everything = bus.subscribe()
        for kind, ident in (("job", "j1"), ("task", "t1"), ("job", "j2"), ("host", "h1")):
            bus.publish(kind, _payload(id=ident))
        assert [e.data["id"] for e in _drain(tasks_only.queue)] == ["t1"]
        assert [e.data["id"] for e in _drain(job_j2.queue)] == ["j2"]
        assert [e.data["id"] for e in _drain(everything.queue)] == ["j1", "t1", "j2", "h1"]

    asyncio.run(scenario())


def test_slow_subscriber_overflows_without_blocking_others() -> None:
    async def scenario() -> None:
        bus = EventBus(queue_size=3)
        slow = bus.subscribe()
        fast = bus.subscribe()
        got: list[int] = []
        for i in range(10):
            bus.publish("task", _payload(n=i))  # never blocks, whoever is behind
            got.append((await asyncio.wait_for(fast.get(), timeout=1)).data["n"])
        assert got == list(range(10))
        assert fast.overflowed is False

        assert slow.overflowed is True
        events = _drain(slow.queue)
        assert events[-1].kind == "overflow"  # the reader learns why its stream ends
        assert "resubscribe" in events[-1].data["message"]
        assert [e.data["n"] for e in events[:-1]] == [1, 2]
        bus.publish("task", lambda: {"n": 99})
        assert slow.queue.empty()  # cut off: nothing more after the overflow marker

    asyncio.run(scenario())


def test_no_subscribers_means_no_event_is_built() -> None:
    built: list[int] = []

    def data() -> dict[str, Any]:
        built.append(1)
        return {}

    bus = EventBus()
    assert not _listening(bus)
    bus.publish("job", data)
    assert built == []
    sub = bus.subscribe()
    assert _listening(bus)
    bus.publish("job", data)
    assert built == [1]
    sub.close()
    assert not _listening(bus)
    bus.publish("job", data)
    assert built == [1]


def test_closed_subscription_gets_nothing_more() -> None:
    async def scenario() -> None:
        bus = EventBus()
        kept, closed = bus.subscribe(), bus.subscribe()
        closed.close()
        bus.publish("host", lambda: {"id": "h1"})
        assert closed.queue.empty()
        assert (await kept.get()).data == {"id": "h1"}

    asyncio.run(scenario())
