"""Hypothesis strategies for domain values: valid job descriptors, jobs and tasks."""

from __future__ import annotations

from hypothesis import strategies as st

from corral.domain.job import (
    BatchSpec,
    Capacity,
    Container,
    ContainerResources,
    Image,
    Job,
    JobDescriptor,
    JobEvent,
    JobGroup,
    Owner,
    RetryKind,
    RetryPolicy,
    Security,
    ServiceSpec,
)
from corral.domain.states import FinishedReason, JobState, TaskState
from corral.domain.task import Task, TaskEvent

names = st.from_regex(r"[a-z0-9][a-z0-9_.]{0,20}", fullmatch=True)
texts = st.text(
    st.characters(categories=("L", "N", "P", "S", "Z", "Cc"), exclude_characters="\x00"), max_size=20
)
times = st.floats(min_value=0, max_value=1e10, allow_nan=False)
small = st.integers(min_value=0, max_value=100)


@st.composite
def retry_policies(draw: st.DrawFn) -> RetryPolicy:
    initial = draw(st.integers(0, 100_000))
    return RetryPolicy(
        kind=draw(st.sampled_from(RetryKind)),
        retries=draw(small),
        initial_delay_ms=initial,
        delay_ms=draw(st.integers(0, 100_000)),
        max_delay_ms=draw(st.integers(initial, 200_000)),
    )


@st.composite
def container_resources(draw: st.DrawFn) -> ContainerResources:
    memory = draw(st.integers(1, 1024 * 1024))
    return ContainerResources(
        cpu=draw(st.floats(min_value=0.001, max_value=256.0)),
        memory_mb=memory,
        disk_mb=draw(st.integers(0, 1_000_000)),
        network_mbps=draw(st.integers(0, 400_000)),
        gpu=draw(st.integers(0, 16)),
        ports=draw(st.integers(0, 32)),
        shm_mb=draw(st.integers(0, memory)),
    )


@st.composite
def capacities(draw: st.DrawFn) -> Capacity:
    low, mid, high = sorted(draw(st.lists(st.integers(0, 10_000), min_size=3, max_size=3)))
    return Capacity(low, mid, high)


image_names = st.from_regex(r"[a-z0-9]{1,8}(/[a-z0-9]{1,8}){0,2}", fullmatch=True)
images = st.one_of(
    st.builds(
        Image, image_names, tag=st.none() | st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,10}", fullmatch=True)
    ),
    st.builds(Image, image_names, digest=st.from_regex(r"sha256:[0-9a-f]{64}", fullmatch=True)),
)
env_names = st.from_regex(r"[A-Z][A-Z0-9_]{0,10}", fullmatch=True).filter(
    lambda k: not k.startswith("CORRAL_")
)
containers = st.builds(
    Container,
    image=images,
    entrypoint=st.lists(texts, max_size=3).map(tuple),
    command=st.lists(texts, max_size=3).map(tuple),
    env=st.dictionaries(env_names, texts, max_size=4),
    resources=container_resources(),
    security=st.builds(Security, st.lists(names, min_size=1, max_size=6, unique=True).map(tuple), names),
    hard_constraints=st.dictionaries(st.sampled_from(["availability_zone", "host", "attribute.rack"]), names),
    soft_constraints=st.dictionaries(
        st.sampled_from(["unique_host", "zone_balance"]), st.sampled_from(["true", "false"])
    ),
    kill_grace_period_s=st.integers(0, 600),
)
batch_specs = st.builds(
    BatchSpec, st.integers(1, 10_000), st.none() | st.integers(1, 3600), retry_policies(), st.booleans()
)
service_specs = st.builds(ServiceSpec, capacities(), st.booleans(), retry_policies())


@st.composite
def descriptors(draw: st.DrawFn) -> JobDescriptor:
    batch = draw(st.booleans())
    return JobDescriptor(
        owner=Owner(draw(st.from_regex(r"[a-z0-9.]{1,10}@[a-z0-9]{1,10}\.[a-z]{2,5}", fullmatch=True))),
        application=draw(names),
        container=draw(containers),
        capacity_group=draw(names),
        job_group=draw(st.none() | st.builds(JobGroup, names, names, names)),
        labels=draw(st.dictionaries(names.filter(lambda k: not k.startswith("corral.")), texts, max_size=4)),
        batch=draw(batch_specs) if batch else None,
        service=None if batch else draw(service_specs),
    )


jobs = st.builds(
    Job,
    id=names,
    descriptor=descriptors(),
    state=st.sampled_from(JobState),
    created_at=times,
    updated_at=times,
    finished_at=st.none() | times,
    reason=st.none() | st.sampled_from(FinishedReason),
    reason_detail=texts,
    history=st.lists(st.builds(JobEvent, times, st.sampled_from(JobState), texts), max_size=3).map(tuple),
)

task_events = st.builds(
    TaskEvent, times, st.sampled_from(TaskState), st.none() | st.sampled_from(FinishedReason), texts
)
tasks = st.builds(
    Task,
    id=names,
    job_id=names,
    index=st.none() | st.integers(0, 10_000),
    state=st.sampled_from(TaskState),
    created_at=times,
    updated_at=times,
    ready_at=times,
    attempt=small,
    system_attempt=small,
    resubmit_of=st.none() | names,
    host_id=st.none() | names,
    ports=st.lists(st.integers(1, 65535), max_size=4).map(tuple),
    started_at=st.none() | times,
    finished_at=st.none() | times,
    reason=st.none() | st.sampled_from(FinishedReason),
    reason_detail=texts,
    exit_code=st.none() | st.integers(-255, 255),
    kill_reason=st.none() | st.sampled_from(FinishedReason),
    kill_detail=texts,
    disconnected_from=st.none() | st.sampled_from(TaskState),
    history=st.lists(task_events, max_size=3).map(tuple),
)
