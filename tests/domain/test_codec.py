"""domain/codec.py: jobs, tasks and hosts survive to_json/from_json and to/from builtins unchanged."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.domain.codec import DecodeError, from_builtins, from_json, to_builtins, to_json
from corral.domain.host import Host, HostAttributes
from corral.domain.job import Job, JobDescriptor
from corral.domain.resources import Resources
from corral.domain.states import FinishedReason, TaskState
from corral.domain.task import Task
from corral.domain.validation import validate_descriptor
from tests.domain import strategies
from tests.domain.factories import service_job, task

FAST = settings(max_examples=60, deadline=None)


@FAST
@given(strategies.descriptors())
def test_generated_descriptors_are_valid(d: JobDescriptor) -> None:
    # Keeps the strategy honest: the round trips below are over descriptors a user could submit.
    validate_descriptor(d)


@FAST
@given(strategies.jobs)
def test_job_json_round_trip(job: Job) -> None:
    assert from_json(to_json(job), Job) == job


@FAST
@given(strategies.tasks)
def test_task_json_round_trip(t: Task) -> None:
    assert from_json(to_json(t), Task) == t


@FAST
@given(strategies.tasks)
def test_task_builtins_round_trip_through_stdlib_json(t: Task) -> None:
    plain = json.loads(json.dumps(to_builtins(t)))
    assert from_builtins(plain, Task) == t


def test_builtins_are_plain_data() -> None:
    t = task("t1", TaskState.FINISHED, ports=(31000,), reason=FinishedReason.LOST)
    data = to_builtins(t)
    assert data["state"] == "Finished"
    assert data["reason"] == "lost"
    assert json.loads(json.dumps(data))["ports"] == [31000]
    assert data["index"] == 0


def test_service_job_round_trip_keeps_type_and_capacity() -> None:
    job = service_job(desired=3, min=1, max=5)
    back = from_json(to_json(job), Job)
    assert back == job
    assert back.descriptor.service is not None
    assert back.descriptor.service.capacity.desired == 3
    assert back.descriptor.batch is None


def test_host_round_trip() -> None:
    host = Host("h1", Resources(8.5, 16384, 100_000, 1000, 1), HostAttributes("z1", "m5", "g", {"rack": "r"}))
    assert from_json(to_json(host), Host) == host


@pytest.mark.parametrize(
    "data",
    [
        b'{"id": "t1"}',
        b'{"id": "t1", "job_id": "j", "index": 0, "state": "Bogus"}',
        b'{"id": "t1", "job_id": "j", "index": "zero"}',
    ],
)
def test_malformed_task_raises_decode_error(data: bytes) -> None:
    with pytest.raises(DecodeError):
        from_json(data, Task)


@FAST
@given(
    st.builds(
        Resources, st.floats(0, 1e6), st.integers(0, 10**9), st.integers(0), st.integers(0), st.integers(0)
    )
)
def test_resources_round_trip(r: Resources) -> None:
    assert from_json(to_json(r), Resources) == r
