"""Every rule of domain/validation.py: its stable error code and the field it names."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import pytest

from corral.domain.errors import ValidationError
from corral.domain.job import (
    BatchSpec,
    Capacity,
    Image,
    JobDescriptor,
    JobGroup,
    Owner,
    RetryKind,
    RetryPolicy,
    Security,
    ServiceSpec,
)
from corral.domain.validation import MAX_ENV_BYTES, validate_capacity, validate_descriptor
from tests.domain.factories import container, descriptor, resources

DIGEST = "sha256:" + "a" * 64


def with_resources(**changes: Any) -> JobDescriptor:
    return descriptor(container=container(resources=resources(**changes)))


def with_container(**changes: Any) -> JobDescriptor:
    return descriptor(container=container(**changes))


def with_batch(**changes: Any) -> JobDescriptor:
    return descriptor(batch=replace(BatchSpec(), **changes))


def with_retry(**changes: Any) -> JobDescriptor:
    return with_batch(retry_policy=replace(RetryPolicy(), **changes))


def with_service(**changes: Any) -> JobDescriptor:
    return descriptor(batch=None, service=replace(ServiceSpec(), **changes))


def rejection(d: JobDescriptor) -> tuple[str, str | None]:
    with pytest.raises(ValidationError) as caught:
        validate_descriptor(d)
    return caught.value.code, caught.value.field


INVALID: dict[str, tuple[JobDescriptor, str, str]] = {
    "bad email": (descriptor(owner=Owner("not-an-email")), "invalid_email", "owner.team_email"),
    "email without domain dot": (descriptor(owner=Owner("a@b")), "invalid_email", "owner.team_email"),
    "empty email": (descriptor(owner=Owner("")), "invalid_email", "owner.team_email"),
    "application with dash": (descriptor(application="my-app"), "invalid_application", "application"),
    "empty application": (descriptor(application=""), "invalid_application", "application"),
    "capacity group": (descriptor(capacity_group="a b"), "invalid_capacity_group", "capacity_group"),
    "job group stack": (descriptor(job_group=JobGroup(stack="a-b")), "invalid_job_group", "job_group.stack"),
    "job group sequence": (
        descriptor(job_group=JobGroup(sequence="x" * 64)),
        "invalid_job_group",
        "job_group.sequence",
    ),
    "reserved label": (descriptor(labels={"corral.x": "1"}), "reserved_label", "labels.corral.x"),
    "bad label key": (descriptor(labels={"-x": "1"}), "invalid_label", "labels.-x"),
    "long label value": (descriptor(labels={"k": "v" * 1025}), "invalid_label", "labels.k"),
    "too many labels": (
        descriptor(labels={f"k{i}": "v" for i in range(101)}),
        "too_many_labels",
        "labels",
    ),
    "image name": (with_container(image=Image("Bad Name")), "invalid_image", "container.image.name"),
    "empty image name": (with_container(image=Image("")), "invalid_image", "container.image.name"),
    "tag and digest": (
        with_container(image=Image("busybox", tag="1", digest=DIGEST)),
        "image_tag_and_digest",
        "container.image.digest",
    ),
    "bad tag": (with_container(image=Image("busybox", tag=".x")), "invalid_image_tag", "container.image.tag"),
    "bad digest": (
        with_container(image=Image("busybox", digest="sha256:abc")),
        "invalid_image_digest",
        "container.image.digest",
    ),
    "command too large": (
        with_container(command=("x" * (64 * 1024 + 1),)),
        "command_too_large",
        "container.command",
    ),
    "NUL in entrypoint": (with_container(entrypoint=("a\x00b",)), "invalid_command", "container.entrypoint"),
    "env name": (with_container(env={"1X": "v"}), "invalid_env_name", "container.env.1X"),
    "reserved env": (with_container(env={"CORRAL_TASK": "v"}), "reserved_env", "container.env.CORRAL_TASK"),
    "NUL in env": (with_container(env={"A": "\x00"}), "invalid_env_value", "container.env.A"),
    "env too large": (
        with_container(env={"A": "v" * (MAX_ENV_BYTES - 2)}),
        "env_too_large",
        "container.env",
    ),
    "env too large in sum": (
        with_container(env={f"V{i}": "v" * 4096 for i in range(8)}),
        "env_too_large",
        "container.env",
    ),
    "cpu zero": (with_resources(cpu=0.0), "cpu_out_of_range", "container.resources.cpu"),
    "cpu negative": (with_resources(cpu=-1.0), "cpu_out_of_range", "container.resources.cpu"),
    "cpu NaN": (with_resources(cpu=math.nan), "cpu_out_of_range", "container.resources.cpu"),
    "cpu infinite": (with_resources(cpu=math.inf), "cpu_out_of_range", "container.resources.cpu"),
    "cpu over 256": (with_resources(cpu=256.5), "cpu_out_of_range", "container.resources.cpu"),
    "memory zero": (
        with_resources(memory_mb=0, shm_mb=0),
        "memory_out_of_range",
        "container.resources.memory_mb",
    ),
    "disk negative": (with_resources(disk_mb=-1), "disk_out_of_range", "container.resources.disk_mb"),
    "network too big": (
        with_resources(network_mbps=400_001),
        "network_out_of_range",
        "container.resources.network_mbps",
    ),
    "gpu too many": (with_resources(gpu=17), "gpu_out_of_range", "container.resources.gpu"),
    "ports too many": (with_resources(ports=33), "ports_out_of_range", "container.resources.ports"),
    "shm negative": (with_resources(shm_mb=-1), "shm_out_of_range", "container.resources.shm_mb"),
    "shm over memory": (
        with_resources(memory_mb=128, shm_mb=129),
        "shm_exceeds_memory",
        "container.resources.shm_mb",
    ),
    "no security group": (
        with_container(security=Security(())),
        "invalid_security_groups",
        "container.security.security_groups",
    ),
    "seven security groups": (
        with_container(security=Security(tuple(f"sg{i}" for i in range(7)))),
        "invalid_security_groups",
        "container.security.security_groups",
    ),
    "duplicate security groups": (
        with_container(security=Security(("a", "a"))),
        "invalid_security_groups",
        "container.security.security_groups",
    ),
    "bad security group name": (
        with_container(security=Security(("-a",))),
        "invalid_security_groups",
        "container.security.security_groups",
    ),
    "unknown hard constraint": (
        with_container(hard_constraints={"rack": "r1"}),
        "unknown_constraint",
        "container.hard_constraints.rack",
    ),
    "unknown soft constraint": (
        with_container(soft_constraints={"attribute.": "x"}),
        "unknown_constraint",
        "container.soft_constraints.attribute.",
    ),
    "boolean constraint value": (
        with_container(hard_constraints={"unique_host": "yes"}),
        "invalid_constraint",
        "container.hard_constraints.unique_host",
    ),
    "empty constraint value": (
        with_container(hard_constraints={"availability_zone": " "}),
        "invalid_constraint",
        "container.hard_constraints.availability_zone",
    ),
    "hard and soft": (
        with_container(hard_constraints={"host": "h1"}, soft_constraints={"host": "h2"}),
        "conflicting_constraint",
        "container.soft_constraints.host",
    ),
    "kill grace too long": (
        with_container(kill_grace_period_s=601),
        "invalid_kill_grace_period",
        "container.kill_grace_period_s",
    ),
    "kill grace negative": (
        with_container(kill_grace_period_s=-1),
        "invalid_kill_grace_period",
        "container.kill_grace_period_s",
    ),
    "neither batch nor service": (descriptor(batch=None), "job_type_required", "batch"),
    "both batch and service": (descriptor(service=ServiceSpec()), "job_type_ambiguous", "service"),
    "batch size zero": (with_batch(size=0), "invalid_batch_size", "batch.size"),
    "batch size too big": (with_batch(size=10_001), "invalid_batch_size", "batch.size"),
    "runtime limit zero": (with_batch(runtime_limit_s=0), "invalid_runtime_limit", "batch.runtime_limit_s"),
    "negative retries": (with_retry(retries=-1), "invalid_retries", "batch.retry_policy.retries"),
    "too many retries": (with_retry(retries=101), "invalid_retries", "batch.retry_policy.retries"),
    "negative delay": (
        with_retry(kind=RetryKind.DELAYED, delay_ms=-1),
        "invalid_retry_policy",
        "batch.retry_policy.delay_ms",
    ),
    "delay over a day": (
        with_retry(kind=RetryKind.DELAYED, initial_delay_ms=24 * 3600 * 1000 + 1),
        "invalid_retry_policy",
        "batch.retry_policy.initial_delay_ms",
    ),
    "exponential cap below initial": (
        with_retry(kind=RetryKind.EXPONENTIAL, initial_delay_ms=1000, max_delay_ms=999),
        "invalid_retry_policy",
        "batch.retry_policy.max_delay_ms",
    ),
    "min above desired": (
        with_service(capacity=Capacity(min=3, desired=2, max=5)),
        "invalid_capacity",
        "service.capacity",
    ),
    "desired above max": (
        with_service(capacity=Capacity(min=0, desired=6, max=5)),
        "invalid_capacity",
        "service.capacity",
    ),
    "negative min": (
        with_service(capacity=Capacity(min=-1, desired=0, max=5)),
        "invalid_capacity",
        "service.capacity.min",
    ),
    "service bad retry": (
        with_service(retry_policy=RetryPolicy(retries=-1)),
        "invalid_retries",
        "service.retry_policy.retries",
    ),
}


@pytest.mark.parametrize(("d", "code", "field"), list(INVALID.values()), ids=list(INVALID))
def test_rule_has_stable_code_and_field(d: JobDescriptor, code: str, field: str) -> None:
    assert rejection(d) == (code, field)


VALID: dict[str, JobDescriptor] = {
    "default batch": descriptor(),
    "plus-addressed email": descriptor(owner=Owner("first.last+corral@mail.example.co.uk")),
    "service": with_service(capacity=Capacity(min=1, desired=2, max=3)),
    "fractional cpu": with_resources(cpu=0.1),
    "cpu at the limit": with_resources(cpu=256.0),
    "shm equals memory": with_resources(memory_mb=256, shm_mb=256),
    "digest only": with_container(image=Image("registry.local:5000/team/app", digest=DIGEST)),
    "no tag": with_container(image=Image("busybox")),
    "env exactly at the limit": with_container(env={"A": "v" * (MAX_ENV_BYTES - 3)}),
    "six security groups": with_container(security=Security(tuple(f"sg-{i}" for i in range(6)))),
    "attribute constraint": with_container(hard_constraints={"attribute.rack": "r1"}),
    "boolean constraint": with_container(soft_constraints={"unique_host": "TRUE", "zone_balance": "false"}),
    "user label": descriptor(labels={"team/owner": "x", "corralx": "y"}),
    "job group": descriptor(job_group=JobGroup("prod", "v2", "001")),
    "exponential": with_retry(kind=RetryKind.EXPONENTIAL, retries=5, initial_delay_ms=10, max_delay_ms=10),
    "runtime limit": with_batch(runtime_limit_s=1, size=10_000),
    "zero capacity": with_service(capacity=Capacity(0, 0, 0)),
}


@pytest.mark.parametrize("d", list(VALID.values()), ids=list(VALID))
def test_valid_descriptor_passes(d: JobDescriptor) -> None:
    validate_descriptor(d)


def test_error_carries_its_field_in_to_dict() -> None:
    with pytest.raises(ValidationError) as caught:
        validate_descriptor(with_resources(memory_mb=128, shm_mb=256))
    out = caught.value.to_dict()
    assert out["code"] == "shm_exceeds_memory"
    assert out["field"] == "container.resources.shm_mb"
    assert "256" in out["message"]
    assert caught.value.status == 400


def test_capacity_check_names_the_given_prefix() -> None:
    with pytest.raises(ValidationError) as caught:
        validate_capacity(Capacity(2, 1, 3), "capacity")
    assert (caught.value.code, caught.value.field) == ("invalid_capacity", "capacity")
