"""Bad input gets a 4xx with a stable code and the field at fault — never a 500 — and nothing is stored."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.cluster import MasterProcess
from tests.support.specs import batch_job, service_job, with_changes

pytestmark = pytest.mark.integration

GOOD_BATCH = batch_job(["sleep", "1"], size=2)
GOOD_SERVICE = service_job(2)

# (what, spec, expected code, expected field)
CASES: list[tuple[str, Any, str, str | None]] = [
    (
        "bad email",
        with_changes(GOOD_BATCH, "owner.team_email", "not-an-email"),
        "invalid_email",
        "owner.team_email",
    ),
    ("missing owner", with_changes(GOOD_BATCH, "owner", ...), "missing_field", "owner"),
    ("missing application", with_changes(GOOD_BATCH, "application", ...), "missing_field", "application"),
    (
        "bad application",
        with_changes(GOOD_BATCH, "application", "has space"),
        "invalid_application",
        "application",
    ),
    (
        "tag and digest",
        with_changes(GOOD_BATCH, "container.image.digest", "sha256:" + "a" * 64),
        "image_tag_and_digest",
        "container.image.digest",
    ),
    (
        "bad digest",
        with_changes(GOOD_BATCH, "container.image", {"name": "x", "digest": "md5:1"}),
        "invalid_image_digest",
        "container.image.digest",
    ),
    (
        "bad image name",
        with_changes(GOOD_BATCH, "container.image.name", "UPPER/Case"),
        "invalid_image",
        "container.image.name",
    ),
    (
        "cpu zero",
        with_changes(GOOD_BATCH, "container.resources.cpu", 0),
        "cpu_out_of_range",
        "container.resources.cpu",
    ),
    (
        "cpu negative",
        with_changes(GOOD_BATCH, "container.resources.cpu", -2),
        "cpu_out_of_range",
        "container.resources.cpu",
    ),
    (
        "cpu absurd",
        with_changes(GOOD_BATCH, "container.resources.cpu", 100000),
        "cpu_out_of_range",
        "container.resources.cpu",
    ),
    (
        "cpu not a number",
        with_changes(GOOD_BATCH, "container.resources.cpu", "lots"),
        "invalid_type",
        "container.resources.cpu",
    ),
    (
        "memory zero",
        with_changes(GOOD_BATCH, "container.resources.memory_mb", 0),
        "memory_out_of_range",
        "container.resources.memory_mb",
    ),
    (
        "fractional memory",
        with_changes(GOOD_BATCH, "container.resources.memory_mb", 1.5),
        "invalid_type",
        "container.resources.memory_mb",
    ),
    (
        "shm over memory",
        with_changes(GOOD_BATCH, "container.resources.shm_mb", 4096),
        "shm_exceeds_memory",
        "container.resources.shm_mb",
    ),
    (
        "too many ports",
        with_changes(GOOD_BATCH, "container.resources.ports", 1000),
        "ports_out_of_range",
        "container.resources.ports",
    ),
    (
        "env too large",
        with_changes(GOOD_BATCH, "container.env", {f"V{i}": "x" * 1000 for i in range(40)}),
        "env_too_large",
        "container.env",
    ),
    (
        "bad env name",
        with_changes(GOOD_BATCH, "container.env", {"1BAD": "x"}),
        "invalid_env_name",
        "container.env.1BAD",
    ),
    (
        "reserved env",
        with_changes(GOOD_BATCH, "container.env", {"CORRAL_TASK_ID": "x"}),
        "reserved_env",
        "container.env.CORRAL_TASK_ID",
    ),
    (
        "reserved label",
        with_changes(GOOD_BATCH, "labels", {"corral.owner": "me"}),
        "reserved_label",
        "labels.corral.owner",
    ),
    (
        "unknown constraint",
        with_changes(GOOD_BATCH, "container.hard_constraints", {"near_coffee": "true"}),
        "unknown_constraint",
        "container.hard_constraints.near_coffee",
    ),
    (
        "bad boolean constraint",
        with_changes(GOOD_BATCH, "container.hard_constraints", {"unique_host": "maybe"}),
        "invalid_constraint",
        "container.hard_constraints.unique_host",
    ),
    (
        "hard and soft",
        with_changes(
            with_changes(GOOD_BATCH, "container.hard_constraints", {"unique_host": True}),
            "container.soft_constraints",
            {"unique_host": True},
        ),
        "conflicting_constraint",
        "container.soft_constraints.unique_host",
    ),
    (
        "no security group",
        with_changes(GOOD_BATCH, "container.security", {"security_groups": []}),
        "invalid_security_groups",
        "container.security.security_groups",
    ),
    (
        "seven security groups",
        with_changes(GOOD_BATCH, "container.security", {"security_groups": [f"sg{i}" for i in range(7)]}),
        "invalid_security_groups",
        "container.security.security_groups",
    ),
    ("neither batch nor service", with_changes(GOOD_BATCH, "batch", ...), "job_type_required", "batch"),
    (
        "both batch and service",
        {**GOOD_BATCH, "service": GOOD_SERVICE["service"]},
        "job_type_ambiguous",
        "service",
    ),
    ("batch size zero", with_changes(GOOD_BATCH, "batch.size", 0), "invalid_batch_size", "batch.size"),
    (
        "runtime limit zero",
        with_changes(GOOD_BATCH, "batch.runtime_limit_s", 0),
        "invalid_runtime_limit",
        "batch.runtime_limit_s",
    ),
    (
        "negative retries",
        with_changes(GOOD_BATCH, "batch.retry_policy", {"kind": "immediate", "retries": -1}),
        "invalid_retries",
        "batch.retry_policy.retries",
    ),
    (
        "unknown retry kind",
        with_changes(GOOD_BATCH, "batch.retry_policy", {"kind": "sometimes"}),
        "invalid_retry_kind",
        "batch.retry_policy",
    ),
    (
        "field of another retry kind",
        with_changes(GOOD_BATCH, "batch.retry_policy", {"kind": "immediate", "delay_ms": 5}),
        "unknown_field",
        "batch.retry_policy.delay_ms",
    ),
    (
        "exponential max below initial",
        with_changes(
            GOOD_BATCH,
            "batch.retry_policy",
            {"kind": "exponential", "initial_delay_ms": 5000, "max_delay_ms": 10},
        ),
        "invalid_retry_policy",
        "batch.retry_policy.max_delay_ms",
    ),
    (
        "service min > desired",
        with_changes(GOOD_SERVICE, "service.capacity", {"min": 5, "desired": 2, "max": 10}),
        "invalid_capacity",
        "service.capacity",
    ),
    (
        "service desired > max",
        with_changes(GOOD_SERVICE, "service.capacity", {"min": 0, "desired": 20, "max": 10}),
        "invalid_capacity",
        "service.capacity",
    ),
    ("unknown top-level field", {**GOOD_BATCH, "priority": "high"}, "unknown_field", "priority"),
    (
        "typo in a nested field",
        with_changes(GOOD_BATCH, "container.resources.cpus", 2),
        "unknown_field",
        "container.resources.cpus",
    ),
    ("labels not a map", with_changes(GOOD_BATCH, "labels", ["a", "b"]), "invalid_type", "labels"),
    (
        "command not a list",
        with_changes(GOOD_BATCH, "container.command", "sleep 1"),
        "invalid_type",
        "container.command",
    ),
    ("body not an object", [1, 2, 3], "invalid_type", None),
    (
        "bad job group",
        {**GOOD_BATCH, "job_group": {"stack": "has-dash"}},
        "invalid_job_group",
        "job_group.stack",
    ),
    (
        "kill grace too long",
        with_changes(GOOD_BATCH, "container.kill_grace_period_s", 100000),
        "invalid_kill_grace_period",
        "container.kill_grace_period_s",
    ),
]


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MasterProcess]:
    m = MasterProcess(Path(tmp_path_factory.mktemp("bad-input"))).start()
    yield m
    m.close()


@pytest.mark.parametrize(("what", "spec", "code", "field"), CASES, ids=[c[0] for c in CASES])
def test_invalid_job_is_rejected_with_code_and_field(
    master: MasterProcess, what: str, spec: Any, code: str, field: str | None
) -> None:
    r = master.http.post("/api/v1/jobs", json=spec)
    assert r.status_code == 400, (what, r.status_code, r.text)
    body = r.json()
    assert body["code"] == code, body
    assert body.get("field") == field, body
    assert body["message"]


def test_malformed_json_is_a_400_not_a_500(master: MasterProcess) -> None:
    r = master.http.post("/api/v1/jobs", content=b'{"owner": ', headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert r.json()["code"] == "malformed_json"


def test_other_bad_requests_have_stable_codes(master: MasterProcess) -> None:
    cases = [
        ("GET", "/api/v1/jobs/does-not-exist", None, 404, "job_not_found"),
        ("GET", "/api/v1/tasks/does-not-exist", None, 404, "task_not_found"),
        ("GET", "/api/v1/hosts/nope", None, 404, "host_not_found"),
        ("POST", "/api/v1/jobs/does-not-exist/kill", None, 404, "job_not_found"),
        ("PUT", "/api/v1/jobs/x/capacity", {"min": 1}, 404, "job_not_found"),
        ("GET", "/api/v1/jobs?limit=0", None, 400, "invalid_value"),
        ("GET", "/api/v1/jobs?state=Sleeping", None, 400, "invalid_value"),
        ("GET", "/api/v1/jobs?label=novalue", None, 400, "invalid_label_filter"),
        ("GET", "/api/v1/nowhere", None, 404, "not_found"),
        ("DELETE", "/api/v1/jobs", None, 405, "method_not_allowed"),
    ]
    for method, path, body, status, code in cases:
        r = master.http.request(method, path, json=body)
        assert (r.status_code, r.json()["code"]) == (status, code), (method, path, r.text)


def test_nothing_invalid_was_stored(master: MasterProcess) -> None:
    # Runs after the cases above (same module, same master): not one job or task came of them.
    for case in CASES:
        master.http.post("/api/v1/jobs", json=case[1])
    jobs = master.http.get("/api/v1/jobs").json()
    assert jobs == {"items": [], "next": None}
    assert master.http.get("/api/v1/tasks").json()["items"] == []
    # And the master still takes a good job afterwards.
    assert master.http.post("/api/v1/jobs", json=GOOD_BATCH).status_code == 201
