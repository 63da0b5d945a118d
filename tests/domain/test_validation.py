"""Every rule of domain/validation.py: its stable error code and the field it names."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import fields, is_dataclass, replace
from types import UnionType
from typing import Any, Union, get_args, get_origin, get_type_hints

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
from corral.domain.validation import (
    MAX_ENV_BYTES,
    MAX_FIELD_NAME,
    MAX_STRING_BYTES,
    check_strings,
    printable,
    string_problem,
    validate_capacity,
    validate_descriptor,
)
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
        with_container(command=("x" * (32 * 1024), "y" * (32 * 1024 + 1))),  # each string within bounds
        "command_too_large",
        "container.command",
    ),
    "NUL in entrypoint": (
        with_container(entrypoint=("a\x00b",)),
        "invalid_string",
        "container.entrypoint[0]",
    ),
    "env name": (with_container(env={"1X": "v"}), "invalid_env_name", "container.env.1X"),
    "reserved env": (with_container(env={"CORRAL_TASK": "v"}), "reserved_env", "container.env.CORRAL_TASK"),
    "NUL in env": (with_container(env={"A": "\x00"}), "invalid_string", "container.env.A"),
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


# -- strings the store could not hold (issue 11, point 4) ----------------------------------------------

SURROGATE = "\ud800"  # what JSON's "\ud800" decodes to: no UTF-8 form, so no store can write it


def rich_descriptor() -> JobDescriptor:
    """A valid descriptor with something in every optional part, so every string slot exists."""
    return descriptor(
        job_group=JobGroup("prod", "v2", "001"),
        labels={"team": "core"},
        container=container(
            entrypoint=("sh",),
            command=("-c", "echo hi"),
            env={"MODE": "fast"},
            security=Security(("default", "web"), role="reader"),
            hard_constraints={"availability_zone": "zone-a"},
            soft_constraints={"instance_type": "m5.large"},
        ),
    )


def _poisoned_slots(value: Any, where: str, poison: str) -> Iterator[tuple[str, Any]]:
    """(path, a copy of ``value`` with one string slot poisoned) for every slot its *type* declares: a str
    field (optional or not), each kind of string collection, map keys — found from the type hints, not
    from check_strings' walk, so a str field added to any descriptor dataclass shows up here by itself."""
    hints = get_type_hints(type(value))
    for f in fields(value):
        path = f"{where}.{f.name}" if where else f.name
        for slot, new in _slot_variants(hints[f.name], getattr(value, f.name), path, poison):
            yield slot, replace(value, **{f.name: new})


def _slot_variants(hint: Any, current: Any, path: str, poison: str) -> Iterator[tuple[str, Any]]:
    args = [a for a in get_args(hint) if a is not type(None)]
    if get_origin(hint) in (Union, UnionType) and len(args) == 1:  # X | None: as X, built if absent
        inner = args[0]
        if current is None and is_dataclass(inner):
            current = inner()
        yield from _slot_variants(inner, current, path, poison)
    elif hint is str:
        yield path, poison
    elif get_origin(hint) is tuple and args[0] is str:
        yield f"{path}[0]", (poison, *current[1:])
    elif get_origin(hint) is dict and args == [str, str]:
        yield f"{path}.k", {**current, "k": poison}
        yield f"{path}.{printable(poison)}", {**current, poison: "v"}
    elif is_dataclass(hint) and current is not None:
        yield from _poisoned_slots(current, path, poison)


SLOTS = list(_poisoned_slots(rich_descriptor(), "", SURROGATE))


def test_the_slot_finder_reaches_every_kind_of_string() -> None:
    found = {path for path, _ in SLOTS}
    for expected in (
        "owner.team_email",
        "application",
        "capacity_group",
        "job_group.stack",
        "job_group.sequence",
        "labels.k",
        "labels.\\ud800",
        "container.image.name",
        "container.image.tag",
        "container.image.digest",
        "container.entrypoint[0]",
        "container.command[0]",
        "container.env.k",
        "container.env.\\ud800",
        "container.security.security_groups[0]",
        "container.security.role",
        "container.hard_constraints.\\ud800",
        "container.soft_constraints.k",
    ):
        assert expected in found
    assert len(found) == len(SLOTS) >= 20


def test_the_rich_descriptor_is_valid() -> None:
    validate_descriptor(rich_descriptor())


@pytest.mark.parametrize(("path", "d"), SLOTS, ids=[path for path, _ in SLOTS])
def test_a_lone_surrogate_in_every_string_slot_of_a_descriptor_is_refused(
    path: str, d: JobDescriptor
) -> None:
    assert rejection(d) == ("invalid_string", path)


@pytest.mark.parametrize(
    "poison",
    ["a\x00b", "x" * (MAX_STRING_BYTES + 1), "é" * (MAX_STRING_BYTES // 2 + 1)],
    ids=["nul", "long", "long-in-bytes"],
)
def test_nul_and_overlong_strings_are_refused_in_every_value_slot(poison: str) -> None:
    for path, d in _poisoned_slots(rich_descriptor(), "", poison):
        if path.endswith(printable(poison)):
            continue  # a key: a different path; see the next test
        assert rejection(d) == ("invalid_string", path), path


def test_a_bad_key_is_named_printably_and_cut_short() -> None:
    with pytest.raises(ValidationError) as caught:
        check_strings({"labels": {"ok": "x", "k\x00" + "y" * 500: "v"}})
    assert caught.value.code == "invalid_string"
    field = caught.value.field
    assert field is not None and field.startswith("labels.k\\x00yyy") and field.endswith("...")
    assert len(field) <= len("labels.") + MAX_FIELD_NAME + 3
    assert "NUL" in caught.value.message
    field.encode("utf-8")  # whatever the key held, the error can be sent back as JSON


def test_a_lone_surrogate_is_named_in_the_message_without_being_repeated() -> None:
    with pytest.raises(ValidationError) as caught:
        check_strings({"a": [{"b": "x" + SURROGATE}]})
    assert (caught.value.code, caught.value.field) == ("invalid_string", "a[0].b")
    assert "surrogate" in caught.value.message
    caught.value.message.encode("utf-8")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "plain",
        "caf\u00e9 \u6771\u4eac \U0001f680",
        "\ud83d\ude80".encode("utf-16", "surrogatepass").decode("utf-16"),
        "x" * MAX_STRING_BYTES,
        "\u00e9" * (MAX_STRING_BYTES // 2),
    ],
    ids=["empty", "ascii", "unicode", "surrogate-pair-joined", "at-the-limit", "at-the-limit-in-bytes"],
)
def test_good_strings_pass(text: str) -> None:
    assert string_problem(text) is None
    check_strings({"k": [text], text[:10] or "e": text})


def test_the_walk_sees_dataclasses_maps_lists_and_tuples_and_ignores_the_rest() -> None:
    check_strings({"n": 1, "f": 1.5, "b": True, "none": None, "t": ("a", 2), 3: ["b"]})
    with pytest.raises(ValidationError) as caught:
        check_strings({3: ["ok", ("fine", SURROGATE)]}, "body")
    assert caught.value.field == "body.3[1][1]"
    with pytest.raises(ValidationError) as caught:
        check_strings(Security(("default",), role=SURROGATE))
    assert caught.value.field == "role"


@pytest.mark.parametrize(
    ("d", "code", "field"),
    [
        (descriptor(application="app\n"), "invalid_application", "application"),
        (descriptor(owner=Owner("team@example.com\n")), "invalid_email", "owner.team_email"),
        (with_container(image=Image("busybox\n")), "invalid_image", "container.image.name"),
        (with_container(env={"MODE\n": "x"}), "invalid_env_name", "container.env.MODE\n"),
    ],
    ids=["application", "email", "image", "env name"],
)
def test_a_trailing_newline_does_not_slip_past_a_pattern(d: JobDescriptor, code: str, field: str) -> None:
    assert rejection(d) == (code, field)


def test_a_deeply_nested_value_is_walked_without_recursion() -> None:
    deep: Any = SURROGATE
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(ValidationError) as caught:
        check_strings({"a": deep})
    assert caught.value.field == "a" + "[0]" * 5000


def test_keys_that_need_no_escaping_are_named_as_they_are() -> None:
    with pytest.raises(ValidationError) as caught:
        check_strings({"labels": {"a\\b 'c\"": SURROGATE}})
    assert caught.value.field == "labels.a\\b 'c\""
