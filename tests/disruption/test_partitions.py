"""Partitioned drains: how a group is cut, and the drain's states (running, paused, cancelled, done)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corral.disruption.partitions import (
    GroupDrain,
    advance,
    cancel,
    hosts_to_drain,
    partitions,
    pause,
    resume,
    start_drain,
)

HOSTS = tuple(f"h{i:02d}" for i in range(10))


def test_hosts_are_sorted_and_cut_into_slices_of_the_percent() -> None:
    assert partitions(["c", "a", "b", "d"], 50) == [("a", "b"), ("c", "d")]
    assert partitions(HOSTS, 30) == [HOSTS[0:3], HOSTS[3:6], HOSTS[6:9], HOSTS[9:]]  # the last one smaller
    assert [len(p) for p in partitions(HOSTS, 25)] == [3, 3, 3, 1]
    assert partitions(HOSTS, 100) == [tuple(HOSTS)]
    assert partitions(["a", "b", "c"], 1) == [("a",), ("b",), ("c",)]  # at least one host each
    assert partitions([], 10) == []


def test_a_host_named_twice_is_one_host() -> None:
    assert partitions(["b", "a", "b"], 50) == [("a",), ("b",)]


@pytest.mark.parametrize("percent", [0, -5, 100.5, float("nan")])
def test_the_percent_is_more_than_0_and_at_most_100(percent: float) -> None:
    with pytest.raises(ValueError, match="at most 100 %"):
        partitions(HOSTS, percent)


@given(hosts=st.sets(st.text("abcdefgh", min_size=1, max_size=4), max_size=40), percent=st.floats(0.5, 100))
def test_partitions_cover_every_host_once_in_order(hosts: set[str], percent: float) -> None:
    parts = partitions(sorted(hosts, reverse=True), percent)
    assert [h for part in parts for h in part] == sorted(hosts)
    if parts:
        size = len(parts[0])
        assert all(len(part) == size for part in parts[:-1])
        assert 0 < len(parts[-1]) <= size
        assert len(parts) <= max(1, -(-100 // percent))


def test_a_drain_starts_on_its_first_partition() -> None:
    drain = start_drain("g", HOSTS, 50, now=100.0)
    assert (drain.current, drain.state, drain.started_at, drain.partition_started_at) == (
        0,
        "running",
        100.0,
        100.0,
    )
    assert hosts_to_drain(drain) == tuple(HOSTS[:5])
    assert drain.describe() == "partition 1 of 2 (5 hosts): running"


def test_a_drain_of_no_hosts_is_done() -> None:
    drain = start_drain("g", [], 50, now=100.0)
    assert drain.state == "done"
    assert hosts_to_drain(drain) == ()
    assert drain.describe() == "g: no hosts, done"


def test_it_advances_when_every_host_of_the_partition_is_empty() -> None:
    drain = start_drain("g", HOSTS, 40, now=100.0)  # 4, 4, 2
    assert advance(drain, set(HOSTS[:3]), 200.0) == drain  # one still has tasks
    second = advance(drain, set(HOSTS[:4]), 200.0)
    assert (second.current, second.partition_started_at, second.started_at) == (1, 200.0, 100.0)
    # Earlier partitions stay drained: they are being upgraded.
    assert hosts_to_drain(second) == tuple(HOSTS[:8])


def test_it_advances_one_partition_per_call() -> None:
    drain = start_drain("g", HOSTS, 40, now=100.0)
    assert advance(drain, set(HOSTS), 200.0).current == 1


def test_emptied_may_be_a_predicate() -> None:
    drain = start_drain("g", HOSTS, 40, now=100.0)
    assert advance(drain, lambda host: host < "h04", 200.0).current == 1


def test_after_the_last_partition_it_is_done_and_every_host_stays_drained() -> None:
    drain = start_drain("g", HOSTS, 50, now=0.0)
    drain = advance(drain, set(HOSTS), 10.0)
    done = advance(drain, set(HOSTS), 20.0)
    assert (done.state, done.current) == ("done", 1)
    assert hosts_to_drain(done) == tuple(HOSTS)
    assert advance(done, set(HOSTS), 30.0) == done


def test_paused_it_keeps_draining_the_current_partition_but_does_not_advance() -> None:
    drain = pause(start_drain("g", HOSTS, 50, now=0.0), 5.0)
    assert drain.state == "paused"
    assert hosts_to_drain(drain) == tuple(HOSTS[:5])
    assert advance(drain, set(HOSTS), 10.0) == drain
    resumed = resume(drain, 20.0)
    assert (resumed.state, resumed.current, resumed.partition_started_at) == ("running", 0, 0.0)
    assert advance(resumed, set(HOSTS), 30.0).current == 1


def test_cancelled_the_current_partition_stops_draining_and_finished_ones_stay() -> None:
    drain = advance(start_drain("g", HOSTS, 40, now=0.0), set(HOSTS[:4]), 10.0)
    cancelled = cancel(drain, 15.0)
    assert cancelled.state == "cancelled"
    assert hosts_to_drain(cancelled) == tuple(HOSTS[:4])
    assert advance(cancelled, set(HOSTS), 20.0) == cancelled
    assert pause(cancelled, 20.0) == cancelled
    # Resumed, it drains its current partition again from now.
    resumed = resume(cancelled, 30.0)
    assert (resumed.state, resumed.current, resumed.partition_started_at) == ("running", 1, 30.0)
    assert hosts_to_drain(resumed) == tuple(HOSTS[:8])


def test_same_state_transitions_change_nothing() -> None:
    drain = start_drain("g", HOSTS, 50, now=0.0)
    assert resume(drain, 1.0) is drain
    assert pause(pause(drain, 1.0), 2.0) == pause(drain, 1.0)
    assert cancel(cancel(drain, 1.0), 2.0) == cancel(drain, 1.0)


@pytest.mark.parametrize("transition", [pause, cancel, resume])
def test_a_done_drain_cannot_change(transition: object) -> None:
    done = start_drain("g", [], 50, now=0.0)
    with pytest.raises(ValueError, match="the drain of g is done"):
        transition(done, 1.0)  # type: ignore[operator]


def test_a_group_drain_is_a_value() -> None:
    drain = start_drain("g", ["b", "a"], 50, now=0.0)
    assert drain == GroupDrain("g", 50, (("a",), ("b",)), 0, "running", 0.0, 0.0)
    assert drain.hosts == ("a", "b")
