"""Small behaviours of the domain values: derived properties the rest of Corral leans on."""

from __future__ import annotations

import pytest

from corral.domain.constraints import is_enabled, is_known_constraint
from corral.domain.host import Host, HostAttributes
from corral.domain.job import Image, JobGroup
from corral.domain.resources import Resources
from corral.domain.states import SYSTEM_ERRORS, FinishedReason, HostState, JobType, TaskState
from tests.domain.factories import descriptor, service_job, task


def test_image_reference() -> None:
    assert Image("busybox").reference == "busybox:latest"
    assert Image("busybox", tag="1.36").reference == "busybox:1.36"
    assert Image("busybox", digest="sha256:" + "0" * 64).reference == "busybox@sha256:" + "0" * 64


def test_job_group_key_and_type() -> None:
    assert descriptor().job_group_key is None
    assert descriptor(job_group=JobGroup("prod", "v2", "001")).job_group_key == "app-prod-v2-001"
    assert descriptor().type is JobType.BATCH
    assert service_job().type is JobType.SERVICE


def test_system_errors_are_the_ones_design_names() -> None:
    assert {r.value for r in SYSTEM_ERRORS} == {
        "crashed",
        "transient_system_error",
        "local_system_error",
        "unknown_system_error",
        "stuck_in_state",
        "lost",
    }
    assert FinishedReason.LOST.is_system_error
    assert not FinishedReason.FAILED.is_system_error
    assert not FinishedReason.KILLED.is_system_error


@pytest.mark.parametrize(
    ("state", "on_host"),
    [
        (TaskState.ACCEPTED, False),
        (TaskState.LAUNCHED, True),
        (TaskState.STARTED, True),
        (TaskState.KILL_INITIATED, True),
        (TaskState.DISCONNECTED, True),
        (TaskState.FINISHED, False),
    ],
)
def test_task_on_host(state: TaskState, on_host: bool) -> None:
    assert task(state=state).on_host is on_host


def test_disconnected_task_is_ranked_by_the_state_it_left() -> None:
    t = task(state=TaskState.DISCONNECTED, disconnected_from=TaskState.START_INITIATED)
    assert (t.effective_state, t.rank, t.is_live) == (TaskState.START_INITIATED, 2, True)


def test_host_schedulable_and_ports() -> None:
    host = Host("h1", Resources(1.0), port_range=(31000, 31009))
    assert host.schedulable
    assert host.port_count == 10
    assert not Host("h1", Resources(1.0), state=HostState.UNREACHABLE).schedulable
    assert not Host("h1", Resources(1.0), enabled=False).schedulable


def test_host_attributes_lookup() -> None:
    attrs = HostAttributes("z1", "m5", "g1", {"rack": "r7"})
    assert [attrs.get(k) for k in ("zone", "instance_type", "host_group", "rack", "row")] == [
        "z1",
        "m5",
        "g1",
        "r7",
        None,
    ]


@pytest.mark.parametrize(
    ("name", "known"),
    [("unique_host", True), ("host", True), ("attribute.rack", True), ("attribute.", False), ("rack", False)],
)
def test_known_constraints(name: str, known: bool) -> None:
    assert is_known_constraint(name) is known


def test_boolean_constraint_values() -> None:
    assert is_enabled(" True ")
    assert not is_enabled("false")
    assert not is_enabled("yes")
