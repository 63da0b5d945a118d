"""Poison strings (issue 11, point 4): a string the store cannot write never gets past the API.

A lone UTF-16 surrogate (JSON ``"\\ud800"``), a NUL character or an absurdly long string in any field of
any request body is a 400 naming the field (code ``invalid_string``) — never a 201 that the store then
cannot write (the leader used to step down), never a 500. Run on both stores, with another client
submitting good jobs all along: it is not disturbed, and the leader keeps its term.

The bodies are sent as raw bytes: ``json.dumps(..., ensure_ascii=True)`` writes a lone surrogate as the
escape ``\\ud800``, exactly what an attacker sends (it cannot be encoded as UTF-8 at all).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.cluster import AUTH, MasterProcess
from tests.support.postgres import fresh_database
from tests.support.specs import batch_job

pytestmark = pytest.mark.integration

SURROGATE = "\ud800"
NUL = "\x00"
LONG = "x" * (64 * 1024 + 1)  # over the bound on any one string (64 KiB of UTF-8)


SEQUENCE = itertools.count()


def rich_job() -> dict[str, Any]:
    """A job that fills in every string field a descriptor has, so each can be poisoned in turn (its job
    group is new each time: a conflict with an earlier one must not hide what the poison does)."""
    spec = batch_job(["-c", "echo", "hi"], size=1, application="poisonapp")
    spec["capacity_group"] = "default"
    spec["job_group"] = {"stack": "s1", "detail": "d1", "sequence": f"v{next(SEQUENCE)}"}
    spec["labels"] = {"team": "core", "tier": "gold"}
    container = spec["container"]
    container["image"] = {"name": "corral/busybox", "tag": "latest"}
    container["entrypoint"] = ["sh"]
    container["env"] = {"MODE": "fast", "LEVEL": "3"}
    container["security"] = {"security_groups": ["default", "web"], "role": "reader"}
    container["hard_constraints"] = {"availability_zone": "zone-a"}
    container["soft_constraints"] = {"instance_type": "m5.large"}
    return spec


Mutation = Callable[[dict[str, Any]], None]


def set_at(*path: str | int, value: str) -> Mutation:
    def mutate(spec: dict[str, Any]) -> None:
        node: Any = spec
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value

    return mutate


def rekey(*path: str, old: str, new: str) -> Mutation:
    def mutate(spec: dict[str, Any]) -> None:
        node: Any = spec
        for part in path:
            node = node[part]
        node[new] = node.pop(old)

    return mutate


# (expected field, mutation): every string a job descriptor holds, values and map keys alike.
SURROGATE_CASES: list[tuple[str, Mutation]] = [
    ("owner.team_email", set_at("owner", "team_email", value="team" + SURROGATE + "@example.com")),
    ("application", set_at("application", value="app" + SURROGATE)),
    ("capacity_group", set_at("capacity_group", value=SURROGATE)),
    ("job_group.stack", set_at("job_group", "stack", value=SURROGATE)),
    ("job_group.detail", set_at("job_group", "detail", value=SURROGATE)),
    ("job_group.sequence", set_at("job_group", "sequence", value=SURROGATE)),
    ("labels.team", set_at("labels", "team", value="core" + SURROGATE)),
    ("labels.\\ud800", rekey("labels", old="tier", new=SURROGATE)),
    ("container.image.name", set_at("container", "image", "name", value=SURROGATE)),
    ("container.image.tag", set_at("container", "image", "tag", value=SURROGATE)),
    ("container.entrypoint[0]", set_at("container", "entrypoint", 0, value=SURROGATE)),
    ("container.command[2]", set_at("container", "command", 2, value="h" + SURROGATE)),
    ("container.env.MODE", set_at("container", "env", "MODE", value=SURROGATE)),
    ("container.env.\\ud800", rekey("container", "env", old="LEVEL", new=SURROGATE)),
    (
        "container.security.security_groups[1]",
        set_at("container", "security", "security_groups", 1, value=SURROGATE),
    ),
    ("container.security.role", set_at("container", "security", "role", value=SURROGATE)),
    (
        "container.hard_constraints.availability_zone",
        set_at("container", "hard_constraints", "availability_zone", value=SURROGATE),
    ),
    (
        "container.soft_constraints.instance_type",
        set_at("container", "soft_constraints", "instance_type", value=SURROGATE),
    ),
    (
        "container.soft_constraints.attribute.\\ud800",
        rekey("container", "soft_constraints", old="instance_type", new="attribute." + SURROGATE),
    ),
]

OTHER_CASES: list[tuple[str, str, Mutation]] = [
    ("NUL", "container.security.role", set_at("container", "security", "role", value="a" + NUL)),
    ("NUL", "labels.team", set_at("labels", "team", value=NUL)),
    ("NUL", "container.env.MODE", set_at("container", "env", "MODE", value="x" + NUL + "y")),
    ("NUL", "container.command[0]", set_at("container", "command", 0, value=NUL)),
    ("NUL", "labels.a\\x00b", rekey("labels", old="tier", new="a" + NUL + "b")),
    ("long", "container.security.role", set_at("container", "security", "role", value=LONG)),
    ("long", "container.command[1]", set_at("container", "command", 1, value=LONG)),
]


def raw(body: Any) -> bytes:
    """What an attacker sends: ASCII JSON with the surrogate as an escape."""
    return json.dumps(body, ensure_ascii=True).encode("ascii")


def post_raw(http: httpx.Client, path: str, body: Any, method: str = "POST") -> httpx.Response:
    return http.request(method, path, content=raw(body), headers={"Content-Type": "application/json"})


def poisoned(mutate: Mutation) -> dict[str, Any]:
    spec = rich_job()
    mutate(spec)
    return spec


BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(scope="module", params=BACKENDS)
def master(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MasterProcess]:
    tmp = Path(tmp_path_factory.mktemp(f"poison-{request.param}"))
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(fresh_database()) if request.param == "postgresql" else ""
        m = MasterProcess(tmp, store_url=url).start()
        stack.callback(m.close)
        try:
            yield m
        except BaseException:
            print("---- master log ----\n" + m.log()[-20000:])
            raise


def epoch(master: MasterProcess) -> int:
    status = master.http.get("/api/v1/status").json()
    assert status["leader"] is True, status
    value: int = status["epoch"]
    return value


def assert_still_leading(master: MasterProcess, first_epoch: int) -> None:
    assert master.http.get("/readyz").status_code == 200
    assert epoch(master) == first_epoch
    assert "stepping down" not in master.log()


def test_the_rich_job_itself_is_accepted(master: MasterProcess) -> None:
    """The base of every poisoned variant is a good job: each 400 below is the poison's doing."""
    r = post_raw(master.http, "/api/v1/jobs", rich_job())
    assert r.status_code == 201, r.text


@pytest.mark.parametrize(("field", "mutate"), SURROGATE_CASES, ids=[c[0] for c in SURROGATE_CASES])
def test_a_lone_surrogate_in_any_descriptor_string_is_a_400_naming_the_field(
    master: MasterProcess, field: str, mutate: Mutation
) -> None:
    first = epoch(master)
    r = post_raw(master.http, "/api/v1/jobs", poisoned(mutate))
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "invalid_string"
    assert r.json()["field"] == field
    assert_still_leading(master, first)


@pytest.mark.parametrize(
    ("kind", "field", "mutate"), OTHER_CASES, ids=[f"{c[0]}-{c[1]}" for c in OTHER_CASES]
)
def test_a_nul_or_an_overlong_string_is_a_400_naming_the_field(
    master: MasterProcess, kind: str, field: str, mutate: Mutation
) -> None:
    first = epoch(master)
    r = post_raw(master.http, "/api/v1/jobs", poisoned(mutate))
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "invalid_string"
    assert r.json()["field"] == field
    assert_still_leading(master, first)


# (method, path, body, expected field): the other request bodies that hold strings.
ADMIN_CASES: list[tuple[str, str, dict[str, Any], str]] = [
    ("POST", "/api/v1/capacity-groups", {"name": "g" + SURROGATE}, "name"),
    ("POST", "/api/v1/capacity-groups", {"name": "g1", "description": "d" + SURROGATE}, "description"),
    ("PUT", "/api/v1/capacity-groups/g2", {"description": NUL}, "description"),
    (
        "PUT",
        "/api/v1/admin/teams/t1",
        {"emails": ["ok@example.com", "a" + SURROGATE + "@b.org"]},
        "emails[1]",
    ),
    ("PUT", "/api/v1/admin/teams/t2", {"emails": ["a" + NUL + "@b.org"]}, "emails[0]"),
    ("POST", "/api/v1/admin/tokens", {"name": "n" + SURROGATE, "team": "admins"}, "name"),
    ("POST", "/api/v1/admin/tokens", {"name": "n1", "team": "admins" + NUL}, "team"),
    ("PUT", "/api/v1/scheduler/modes/flex", {"mode": SURROGATE}, "mode"),
    ("POST", "/api/v1/admin/alerts/a1/resolve", {"action": "kill" + SURROGATE}, "action"),
    ("POST", "/api/v1/admin/prune", {"older_than_s": 1, SURROGATE: 1}, "\\ud800"),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "field"), ADMIN_CASES, ids=[f"{c[0]} {c[1]} {c[3]}" for c in ADMIN_CASES]
)
def test_poison_in_other_request_bodies_is_a_400_naming_the_field(
    master: MasterProcess, method: str, path: str, body: dict[str, Any], field: str
) -> None:
    first = epoch(master)
    r = post_raw(master.http, path, body, method)
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "invalid_string"
    assert r.json()["field"] == field
    assert_still_leading(master, first)


def test_nothing_poisoned_was_stored(master: MasterProcess) -> None:
    jobs = master.http.get("/api/v1/jobs", params={"limit": 1000}).json()["items"]
    assert all(j["descriptor"]["application"] != "app" + SURROGATE for j in jobs)
    groups = master.http.get("/api/v1/capacity-groups").json()
    names = {g["name"] for g in (groups["items"] if isinstance(groups, dict) else groups)}
    assert not names & {"g" + SURROGATE, "g1", "g2"}


def test_a_poison_storm_does_not_disturb_another_client(master: MasterProcess) -> None:
    """While one client sends every poison three times over, another submits good jobs: every one is
    accepted promptly and stays readable, and the leader keeps its term."""
    first = epoch(master)
    stop = threading.Event()
    results: list[tuple[int, float, str]] = []

    def good_client() -> None:
        with httpx.Client(base_url=master.url, headers=AUTH, timeout=30) as http:
            while not stop.is_set():
                started = time.monotonic()
                r = http.post("/api/v1/jobs", json=batch_job(["true"], application="goodapp"))
                job_id = r.json().get("id", "") if r.status_code == 201 else r.text
                results.append((r.status_code, time.monotonic() - started, job_id))

    thread = threading.Thread(target=good_client, name="good-client")
    thread.start()
    try:
        rounds, deadline = 0, time.monotonic() + 60
        # three storms at least, and on until the good client has been answered a few times (a loaded
        # machine may answer the storm before the good client's first request is in)
        while rounds < 3 or (len(results) < 5 and time.monotonic() < deadline and thread.is_alive()):
            rounds += 1
            for _field, mutate in SURROGATE_CASES:
                assert post_raw(master.http, "/api/v1/jobs", poisoned(mutate)).status_code == 400
            for _kind, _field, mutate in OTHER_CASES:
                assert post_raw(master.http, "/api/v1/jobs", poisoned(mutate)).status_code == 400
    finally:
        stop.set()
        thread.join(60)
    assert len(results) >= 5, results
    assert {status for status, _, _ in results} == {201}, results
    # A writer that stalls on a poison record holds every other write for 6 s: none may take 3 s.
    # A poisoned write once stalled every other write for 6 s; a normal answer takes milliseconds.
    assert max(elapsed for _, elapsed, _ in results) < 5.0, sorted(e for _, e, _ in results)[-5:]
    for _, _, job_id in results[-5:]:
        assert master.http.get(f"/api/v1/jobs/{job_id}").status_code == 200
    assert_still_leading(master, first)


def test_poison_at_the_bottom_of_a_deep_body_is_found_and_named(master: MasterProcess) -> None:
    """The walk keeps its own stack: 500 levels (as deep as JSON parsing goes here, about) are no
    RecursionError, hence no 500."""
    spec = rich_job()
    spec["labels"] = {"deep": json.loads("[" * 500 + json.dumps(SURROGATE) + "]" * 500)}
    r = post_raw(master.http, "/api/v1/jobs", spec)
    assert r.status_code == 400, r.text
    assert (r.json()["code"], r.json()["field"]) == ("invalid_string", "labels.deep" + "[0]" * 500)


def test_a_body_too_deep_to_parse_is_a_400_not_a_500(master: MasterProcess) -> None:
    content = raw(rich_job()).replace(b'"labels": {', b'"labels": ' + b"[" * 5000 + b"{", 1)
    r = master.http.post("/api/v1/jobs", content=content, headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
