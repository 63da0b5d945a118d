"""Authentication and authorization against a running master, for every route its OpenAPI document lists.

The routes are enumerated from ``/openapi.json``: a route added tomorrow is checked without anyone
remembering to add it here (a mutating route whose body this file does not know is sent ``{}``, and it
must still refuse the caller before looking at the body).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets.sync.client as ws_client
from httpx_sse import connect_sse
from websockets.exceptions import InvalidStatus

from corral.agent.pool import FleetSpec
from tests.support.cluster import AGENT_TOKEN, Fleet, MasterProcess, wait_for
from tests.support.specs import batch_job, service_job, with_changes

pytestmark = pytest.mark.integration

READS = {"get", "head"}
OPEN = {"/healthz", "/readyz"}  # documented routes that need no token (with /metrics, /, /ui)
PAYMENTS_EMAIL = "oncall@payments.example.com"


@dataclass
class World:
    master: MasterProcess
    tokens: dict[str, str]  # name -> secret
    token_ids: dict[str, str]
    job: str  # alice's service job (team payments)
    task: str  # one of its tasks
    host: str

    def http(self, who: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return httpx.Client(base_url=self.master.url, timeout=30, headers=headers)


def make_token(master: MasterProcess, name: str, team: str, role: str, **extra: str) -> tuple[str, str]:
    body = {"name": name, "team": team, "role": role, **extra}
    r = master.http.post("/api/v1/admin/tokens", json=body)
    assert r.status_code == 201, r.text
    return r.json()["secret"], r.json()["id"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    master = MasterProcess(Path(tmp_path_factory.mktemp("auth"))).start()
    fleet = Fleet(master.url, FleetSpec(count=2, cpu=8, heartbeat_backoff_max_s=1.0))
    try:
        fleet.wait_connected()
        for team, body in {
            "payments": {"emails": ["@payments.example.com"]},
            "search": {"emails": ["@search.example.com"]},
            "flood": {"submit_rate_per_s": 1, "submit_burst": 5},
        }.items():
            assert master.http.put(f"/api/v1/admin/teams/{team}", json=body).status_code == 200
        tokens, ids = {}, {}
        for name, team, role in (
            ("alice", "payments", "user"),
            ("bob", "search", "user"),
            ("viv", "payments", "viewer"),
            ("mallory", "flood", "user"),
            ("carol", "payments", "user"),
        ):
            tokens[name], ids[name] = make_token(master, name, team, role)
        tokens["agent"] = AGENT_TOKEN
        with httpx.Client(base_url=master.url, headers={"Authorization": f"Bearer {tokens['alice']}"}) as a:
            r = a.post("/api/v1/jobs", json=payments_service())
            assert r.status_code == 201, r.text
            job = r.json()
        assert job["team"] == "payments" and job["submitted_by"] == "alice"
        task = wait_for(lambda: master.tasks(job["id"], ["Started"]), what="alice's tasks started")[0]
        host = master.http.get("/api/v1/hosts").json()["items"][0]["id"]
        yield World(master, tokens, ids, job["id"], task["id"], host)
    except BaseException:
        print(master.log()[-20000:])
        raise
    finally:
        fleet.close()
        master.close()


def routes(master: MasterProcess) -> list[tuple[str, str]]:
    spec = httpx.get(f"{master.url}/openapi.json", timeout=10).json()
    return [(method, path) for path, ops in spec["paths"].items() for method in ops if path not in OPEN]


def payments_service() -> dict[str, Any]:
    spec = with_changes(service_job(2), "owner.team_email", PAYMENTS_EMAIL)
    return {**spec, "job_group": {"stack": "prod", "detail": "api", "sequence": "v001"}}


def bodies(world: World) -> dict[tuple[str, str], Any]:
    """Valid bodies, so that a refusal is about who calls, never about what was sent."""
    return {
        ("post", "/api/v1/jobs"): with_changes(batch_job(["true"]), "owner.team_email", PAYMENTS_EMAIL),
        ("post", "/api/v1/jobs/plan"): with_changes(batch_job(["true"]), "owner.team_email", PAYMENTS_EMAIL),
        ("put", "/api/v1/hostgroups/{name}"): {"min_size": 0, "max_size": 3},
        ("put", "/api/v1/jobs/{job_id}/capacity"): {"min": 0, "desired": 1, "max": 4},
        ("put", "/api/v1/jobs/{job_id}/enabled"): {"enabled": False},
        ("put", "/api/v1/jobs/{job_id}/spec"): with_changes(
            service_job(2, ["sleep", "7"]), "owner.team_email", PAYMENTS_EMAIL
        ),
        ("post", "/api/v1/jobs/{job_id}/rollback"): {"to": 1},
        ("post", "/api/v1/jobs/red-black"): payments_service(),  # the next of the world job's group
        ("post", "/api/v1/hosts/{host_id}/drain"): {"deadline_s": 10},
        ("post", "/api/v1/hosts/groups/{group}/drain"): {"partition_percent": 50},
        ("post", "/api/v1/capacity-groups"): {"name": "stolen", "tier": "flex", "guarantee": {"cpu": 1}},
        ("put", "/api/v1/capacity-groups/{name}"): {"tier": "flex", "guarantee": {"cpu": 1}},
        ("put", "/api/v1/scheduler/modes/{tier}"): {"mode": "spread"},
        ("post", "/api/v1/admin/prune"): {"older_than_s": 0},
        ("post", "/api/v1/admin/alerts/{alert_id}/resolve"): {"action": "keep"},
        ("post", "/api/v1/admin/tokens"): {"name": "backdoor", "team": "admins", "role": "admin"},
        ("put", "/api/v1/admin/teams/{name}"): {"max_active_jobs": 1},
    }


def concrete(world: World, path: str) -> str:
    values = {
        "{job_id}": world.job,
        "{task_id}": world.task,
        "{host_id}": world.host,
        "{name}": "default" if "capacity-groups" in path else "payments",
        "{tier}": "flex",
        "{group}": "default",
        "{action}": "resume",
        "{alert_id}": "alert-1",
        "{token_id}": world.token_ids["carol"],
    }
    for key, value in values.items():
        path = path.replace(key, value)
    assert "{" not in path, f"no value for a parameter of {path}: add it to concrete()"
    return path


def call(world: World, who: str | None, method: str, path: str) -> httpx.Response:
    with world.http(who) as http:
        body = bodies(world).get((method, path), {}) if method not in READS else None
        return http.request(method.upper(), concrete(world, path), json=body, params={"follow": "false"})


def test_every_route_refuses_calls_without_a_valid_token(world: World) -> None:
    listed = routes(world.master)
    assert len(listed) >= 35, listed  # the enumeration itself works
    for method, path in listed:
        for who in (None, "garbage"):
            if who == "garbage":
                world.tokens["garbage"] = "crl_not-a-real-token-at-all-0000000"
            r = call(world, who, method, path)
            assert r.status_code == 401, (method, path, who, r.status_code, r.text)
            assert r.json()["code"] == "unauthenticated"
            assert r.headers["www-authenticate"].startswith("Bearer")


def test_agent_credentials_cannot_call_the_user_api(world: World) -> None:
    for method, path in routes(world.master):
        r = call(world, "agent", method, path)
        assert r.status_code == 403, (method, path, r.status_code, r.text)


def test_every_mutating_route_refuses_another_team_and_a_viewer(world: World) -> None:
    mutating = [(m, p) for m, p in routes(world.master) if m not in READS]
    assert len(mutating) >= 18
    for method, path in mutating:
        for who in ("bob", "viv"):
            r = call(world, who, method, path)
            assert r.status_code == 403, (method, path, who, r.status_code, r.text)
    # Nothing was changed by any of it.
    job = world.master.job(world.job)
    assert job["state"] != "Finished" and job["descriptor"]["service"]["capacity"]["desired"] == 2
    assert job["descriptor"]["service"]["enabled"] is True
    assert not world.master.http.get(f"/api/v1/hosts/{world.host}").json()["draining"]
    assert world.master.http.get("/api/v1/capacity-groups/stolen").status_code == 404
    names = {t["name"] for t in world.master.http.get("/api/v1/admin/tokens").json()["items"]}
    assert "backdoor" not in names
    assert world.master.http.get("/api/v1/scheduler").json()["modes"]["flex"] != "spread"


def test_a_team_member_changes_its_own_jobs_and_names_its_own_address(world: World) -> None:
    with world.http("carol") as carol:  # alice's teammate
        r = carol.put(f"/api/v1/jobs/{world.job}/capacity", json={"min": 0, "desired": 3, "max": 4})
        assert r.status_code == 200, r.text
        assert r.json()["history"][-1]["message"].endswith("by carol")  # who did it, for the record
        stranger = carol.post("/api/v1/jobs", json=batch_job(["true"]))  # team@example.com
        assert stranger.status_code == 403 and stranger.json()["code"] == "owner_not_in_team"
        assert stranger.json()["field"] == "owner.team_email"
    with world.http("bob") as bob:
        r = bob.post(f"/api/v1/tasks/{world.task}/kill")
        assert r.status_code == 403 and r.json()["code"] == "wrong_team"
        assert bob.get(f"/api/v1/jobs/{world.job}").status_code == 200  # reads are open by default
    metrics = world.master.http.get("/metrics").text  # refusals are counted, by status and code
    assert re.search(r'corral_api_refused_total\{code="wrong_team",status="403"\} [1-9]', metrics)
    assert re.search(r'corral_api_refused_total\{code="unauthenticated",status="401"\} [1-9]', metrics)
    # An admin may do anything, to any team's job.
    assert world.master.http.post(f"/api/v1/hosts/{world.host}/drain").status_code == 200
    assert world.master.http.post(f"/api/v1/hosts/{world.host}/undrain").status_code == 200


def test_a_revoked_token_stops_working_at_once(world: World) -> None:
    secret, token_id = make_token(world.master, "temp", "payments", "user")
    headers = {"Authorization": f"Bearer {secret}"}
    with httpx.Client(base_url=world.master.url, headers=headers) as http:
        assert http.get("/api/v1/whoami").json()["name"] == "temp"
        revoked = world.master.http.post(f"/api/v1/admin/tokens/{token_id}/revoke")
        assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
        r = http.get("/api/v1/whoami")  # the very next request
        assert r.status_code == 401 and "revoked" in r.json()["message"]
    listed = world.master.http.get("/api/v1/admin/tokens").json()["items"]
    assert all("secret" not in t and "digest" not in t for t in listed)


def test_the_console_cookie_reads_but_never_writes(world: World) -> None:
    cookies = {"corral_token": world.tokens["alice"]}
    with httpx.Client(base_url=world.master.url, cookies=cookies) as http:
        assert http.get("/api/v1/jobs").status_code == 200
        r = http.post(f"/api/v1/jobs/{world.job}/kill")
        assert r.status_code == 401
    assert world.master.job(world.job)["state"] != "Finished"


def test_only_agent_credentials_open_the_agent_stream(world: World) -> None:
    url = world.master.url.replace("http://", "ws://") + "/api/v1/agents/stream"
    for who in (None, "alice", "garbage"):
        headers = {"Authorization": f"Bearer {world.tokens[who]}"} if who else {}
        with pytest.raises(InvalidStatus) as e:
            ws_client.connect(url, additional_headers=headers, open_timeout=5)
        assert e.value.response.status_code == 403, who
    with ws_client.connect(url, additional_headers={"Authorization": f"Bearer {AGENT_TOKEN}"}) as ws:
        ws.close()  # accepted (it would now have to register)


def test_a_flood_from_one_principal_is_limited_while_others_schedule(world: World) -> None:
    flood = with_changes(batch_job(["sleep", "0.2"]), "application", "flood")
    codes: list[int] = []
    retry_after: set[str] = set()
    with world.http("mallory") as mallory:
        t0 = time.monotonic()
        for _ in range(40):
            r = mallory.post("/api/v1/jobs", json=flood)
            codes.append(r.status_code)
            if r.status_code == 429:
                assert r.json()["code"] == "rate_limited"
                retry_after.add(r.headers["retry-after"])
        took = time.monotonic() - t0  # a slow machine refills more tokens meanwhile, and is allowed more
    accepted = codes.count(201)
    assert 5 <= accepted <= 5 + int(took), (codes, took)  # the burst, plus what 1/s refilled meanwhile
    assert codes.count(429) == 40 - accepted and retry_after
    # Meanwhile another principal submits and runs as usual.
    t0 = time.monotonic()
    with world.http("alice") as alice:
        r = alice.post(
            "/api/v1/jobs", json=with_changes(batch_job(["sleep", "30"]), "owner.team_email", PAYMENTS_EMAIL)
        )
        assert r.status_code == 201
    wait_for(lambda: world.master.tasks(r.json()["id"], ["Started"]), 10, what="alice's job started")
    assert time.monotonic() - t0 < 10


def test_revoking_ends_the_connections_a_token_opened(world: World) -> None:
    master = world.master
    # The host's own credential (a join token's sessions end too, but its host comes back with the
    # credential minted for it: see tests/integration/test_host_identity.py).
    secret, token_id = make_token(master, "host-x", "agents", "agent", host="revokee-0000")
    fleet = Fleet(
        master.url, FleetSpec(count=1, id_prefix="revokee", heartbeat_backoff_max_s=0.3, token=secret)
    )
    events: list[str] = []
    ended = threading.Event()
    viewer, viewer_id = make_token(master, "tail", "payments", "viewer")

    def listen() -> None:
        headers = {"Authorization": f"Bearer {viewer}"}
        with (
            httpx.Client(base_url=master.url, headers=headers, timeout=30) as http,
            connect_sse(http, "GET", "/api/v1/events", params={"snapshot": "false"}) as source,
        ):
            for sse in source.iter_sse():
                events.append(sse.event)
        ended.set()

    try:
        fleet.wait_connected()
        host = lambda: master.http.get("/api/v1/hosts/revokee-0000").json()  # noqa: E731
        assert host()["state"] == "ready"
        threading.Thread(target=listen, daemon=True).start()
        wait_for(lambda: "snapshot_end" in events, 10, what="the viewer's stream open")
        assert master.http.post(f"/api/v1/admin/tokens/{token_id}/revoke").status_code == 200
        assert master.http.post(f"/api/v1/admin/tokens/{viewer_id}/revoke").status_code == 200
        # The agent's session is closed at once and its reconnections are refused: the host goes away.
        refused = master.log().count("refused an agent connection")
        wait_for(lambda: host()["state"] != "ready", 10, what="the revoked agent disconnected")
        wait_for(
            lambda: master.log().count("refused an agent connection") >= refused + 3,
            20,
            what="several reconnection attempts (0.3 s apart at most) refused",
        )
        assert host()["state"] != "ready"
        assert ended.wait(10), "the revoked viewer's event stream is still open"
    finally:
        fleet.close()
