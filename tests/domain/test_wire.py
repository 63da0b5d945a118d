"""domain/wire.py: every agent-protocol message survives encode/decode; anything malformed is bad_message."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.domain import wire
from corral.domain.errors import ValidationError
from corral.domain.host import HostAttributes
from corral.domain.resources import Resources
from corral.domain.states import FinishedReason, TaskState
from tests.domain import strategies
from tests.domain.factories import container

REPORT = wire.TaskReport("t1", TaskState.FINISHED, FinishedReason.FAILED, "exited 3", 3)

MESSAGES: list[wire.Message] = [
    wire.Register(
        "a1",
        Resources(4.0, 8192, 10_000, 1000, 0),
        HostAttributes("zone-b", "m5", "g1", {"rack": "r7"}),
        (31000, 31999),
        network_interfaces=4,
        addresses_per_interface=10,
        runtime="docker",
        version="1.2",
        tasks=(wire.TaskReport("t0", TaskState.STARTED), REPORT),
    ),
    wire.Heartbeat(7),
    wire.Status((REPORT, wire.TaskReport("t2", TaskState.KILL_INITIATED))),
    wire.Registered(2.5, "0.1"),
    wire.Launch((wire.LaunchSpec("t1", "j1", 3, container(env={"A": "b"}), (31000,), 60, 2),)),
    wire.Launch((wire.LaunchSpec("t2", "j2", None, container()),)),
    wire.Kill((wire.KillSpec("t1", FinishedReason.SCALED_DOWN, 5.0),)),
    wire.Forget(("t1", "t2")),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_round_trip_through_json(message: wire.Message) -> None:
    data = json.loads(json.dumps(wire.encode(message)))
    assert wire.decode(data) == message


NAMES = ["register", "heartbeat", "status", "registered", "launch", "launch", "kill", "forget"]


@pytest.mark.parametrize(("message", "name"), list(zip(MESSAGES, NAMES, strict=True)))
def test_encoded_message_names_its_type(message: wire.Message, name: str) -> None:
    assert wire.encode(message)["type"] == name


reports = st.builds(
    wire.TaskReport,
    strategies.names,
    st.sampled_from(TaskState),
    st.none() | st.sampled_from(FinishedReason),
    strategies.texts,
    st.none() | st.integers(-255, 255),
)


@settings(max_examples=50, deadline=None)
@given(st.lists(reports, max_size=5))
def test_status_round_trip(updates: list[wire.TaskReport]) -> None:
    message = wire.Status(tuple(updates))
    assert wire.decode(json.loads(json.dumps(wire.encode(message)))) == message


@settings(max_examples=30, deadline=None)
@given(strategies.containers, st.none() | st.integers(0, 100), st.lists(st.integers(1, 65535), max_size=3))
def test_launch_round_trip(c: Any, index: int | None, ports: list[int]) -> None:
    message = wire.Launch((wire.LaunchSpec("t", "j", index, c, tuple(ports)),))
    assert wire.decode(json.loads(json.dumps(wire.encode(message)))) == message


MALFORMED: dict[str, Any] = {
    "not an object": ["register"],
    "a string": "heartbeat",
    "no type": {"seq": 1},
    "unknown type": {"type": "reboot"},
    "type not a string": {"type": ["status"]},
    "missing field": {"type": "status"},
    "wrong field type": {"type": "heartbeat", "seq": "one"},
    "unknown task state": {"type": "status", "updates": [{"task_id": "t", "state": "Running"}]},
    "unknown reason": {"type": "kill", "tasks": [{"task_id": "t", "reason": "bored"}]},
    "resources not an object": {"type": "register", "agent_id": "a", "resources": 4},
    "forget ids not strings": {"type": "forget", "task_ids": [1, 2]},
}


@pytest.mark.parametrize("data", list(MALFORMED.values()), ids=list(MALFORMED))
def test_malformed_is_bad_message(data: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        wire.decode(data)
    assert caught.value.code == "bad_message"


def test_unknown_type_names_the_type_field() -> None:
    with pytest.raises(ValidationError) as caught:
        wire.decode({"type": "reboot"})
    assert caught.value.field == "type"
    assert "reboot" in caught.value.message


def test_type_is_the_envelope_not_a_field() -> None:
    assert wire.decode({"type": "heartbeat", "seq": 3}) == wire.Heartbeat(3)
    assert wire.decode({"type": "heartbeat"}) == wire.Heartbeat(0)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"agent_id": ""}, "agent_id"),
        ({"agent_id": "has space"}, "agent_id"),
        ({"resources": Resources(float("nan"), 1024)}, "resources.cpu"),
        ({"resources": Resources(float("inf"), 1024)}, "resources.cpu"),
        ({"resources": Resources(4, -1)}, "resources.memory_mb"),
        ({"port_range": (40000, 30000)}, "port_range"),
        ({"port_range": (0, 100)}, "port_range"),
        ({"protocol": 99}, "protocol"),
    ],
)
def test_a_registration_that_cannot_be_true_is_refused(change: dict[str, object], field: str) -> None:
    good = wire.Register("agent-1", Resources(4, 8192, 1000, 1000, 0))
    wire.validate_register(good)
    with pytest.raises(ValidationError) as caught:
        wire.validate_register(dataclasses.replace(good, **change))  # type: ignore[arg-type]
    assert (caught.value.code, caught.value.field) == ("bad_register", field)


def test_a_peer_message_with_a_string_the_store_cannot_hold_is_refused() -> None:
    """An agent's strings reach the store (task details, attributes): a lone surrogate or NUL is refused."""
    for bad in ("\ud800", "nul\x00"):
        with pytest.raises(ValidationError) as refused:
            wire.decode(
                {"type": "status", "updates": [{"task_id": "t1", "state": "Finished", "detail": bad}]}
            )
        assert (refused.value.code, refused.value.field) == ("invalid_string", "status.updates[0].detail")
