"""Host groups through the API of a running master with simulated agents: create, list, show, replace,
delete; bad bodies refused with a stable code naming the field; only admins change them; explain says per
host why it is kept; a configuration survives a restart of the master. First, without a master: the request
body takes exactly the domain's fields."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

import httpx
import pytest

from corral.agent.pool import FleetSpec
from corral.api.models import HostGroupBody, HostResourcesModel, HostShapeModel, ProviderModel
from corral.domain.hostgroup import HostGroup, HostShape, ProviderRef
from corral.domain.resources import Resources
from tests.support.cluster import Fleet, MasterProcess, wait_for
from tests.support.specs import batch_job

integration = pytest.mark.integration  # every test but the first starts a real master

# Groups here have no provider (kind "none"): shown and explained, never scaled, so no test starts hosts.
SHAPE = {
    "resources": {"cpu": 4.0, "memory_mb": 16384, "disk_mb": 100_000, "network_mbps": 10_000, "gpu": 0},
    "zones": ["zone-a", "zone-b"],
    "instance_type": "sim-4",
    "attributes": {"tier": "web"},
    "port_range": [31000, 31999],
}


def body(**changes: Any) -> dict[str, Any]:
    return {"shape": SHAPE, "min_size": 1, "max_size": 6, "min_idle": 1, "description": "web tier"} | changes


def test_the_request_body_takes_every_field_of_the_domain() -> None:
    """A PUT replaces the whole group, and ``corral hostgroup set`` sends back what a GET shows: every field
    the domain has (and no other) is one the body takes, with the domain's default."""
    for model, kind in (
        (HostGroupBody, HostGroup),
        (HostShapeModel, HostShape),
        (ProviderModel, ProviderRef),
        (HostResourcesModel, Resources),
    ):
        assert set(model.model_fields) == {f.name for f in fields(kind)}, kind.__name__
    assert HostGroupBody().to_domain("g") == HostGroup("g")


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MasterProcess]:
    m = MasterProcess(Path(tmp_path_factory.mktemp("hostgroups"))).start()
    fleet = Fleet(
        m.url, FleetSpec(count=2, cpu=4, id_prefix="web", host_group="web", heartbeat_backoff_max_s=1.0)
    )
    try:
        fleet.wait_connected()
        yield m
    except BaseException:
        print(m.log()[-20000:])
        raise
    finally:
        fleet.close()
        m.close()


@integration
def test_create_list_show_replace_and_delete(master: MasterProcess) -> None:
    http = master.http
    created = http.put("/api/v1/hostgroups/crud", json=body())
    assert created.status_code == 200, created.text
    group = created.json()
    assert group["name"] == "crud" and group["shape"]["zones"] == ["zone-a", "zone-b"]
    assert group["shape"]["port_range"] == [31000, 31999] and group["shape"]["attributes"] == {"tier": "web"}
    assert group["provider"] == {"kind": "none", "config": {}} and group["scalable"] is False
    assert group["scale_up_cooldown_s"] == 60.0  # unset fields take the domain's defaults
    assert group["status"]["hosts"] == 0  # no host registers as group "crud"

    names = [g["name"] for g in http.get("/api/v1/hostgroups").json()["items"]]
    assert "crud" in names and names == sorted(names)
    assert http.get("/api/v1/hostgroups/crud").json()["min_size"] == 1

    # The body may carry the name, as a file does; a PUT replaces the whole configuration.
    replaced = http.put("/api/v1/hostgroups/crud", json={"name": "crud", "max_size": 3, "autoscale": False})
    assert replaced.status_code == 200, replaced.text
    shown = http.get("/api/v1/hostgroups/crud").json()
    assert (shown["min_size"], shown["max_size"], shown["autoscale"]) == (0, 3, False)
    assert shown["shape"]["zones"] == ["zone-a"] and shown["description"] == ""

    assert http.delete("/api/v1/hostgroups/crud").status_code == 204
    gone = http.get("/api/v1/hostgroups/crud")
    assert (gone.status_code, gone.json()["code"]) == (404, "host_group_not_found")
    assert "crud" not in [g["name"] for g in http.get("/api/v1/hostgroups").json()["items"]]


@integration
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/hostgroups/nosuch"),
        ("GET", "/api/v1/hostgroups/nosuch/explain"),
        ("DELETE", "/api/v1/hostgroups/nosuch"),
    ],
)
def test_an_unknown_group_is_a_404(master: MasterProcess, method: str, path: str) -> None:
    r = master.http.request(method, path)
    assert (r.status_code, r.json()["code"]) == (404, "host_group_not_found")


BAD_BODIES = [
    ("negative min size", body(min_size=-1), "invalid_host_group", "min_size"),
    ("negative max idle", body(max_idle=-2), "invalid_host_group", "max_idle"),
    ("min above max", body(min_size=5, max_size=2), "invalid_host_group", "min_size"),
    ("min idle above max idle", body(min_idle=3, max_idle=1), "invalid_host_group", "min_idle"),
    ("unknown provider", body(provider={"kind": "gce"}), "invalid_host_group", "provider.kind"),
    ("aws without its group", body(provider={"kind": "aws"}), "invalid_host_group", "provider.config.asg"),
    ("no zones", body(shape={**SHAPE, "zones": []}), "invalid_host_group", "shape.zones"),
    (
        "ports upside down",
        body(shape={**SHAPE, "port_range": [2000, 1000]}),
        "invalid_host_group",
        "shape.port_range",
    ),
    ("no cpu", body(shape={**SHAPE, "resources": {"cpu": 0}}), "invalid_host_group", "shape.resources"),
    ("negative cooldown", body(scale_down_cooldown_s=-1), "invalid_host_group", "scale_down_cooldown_s"),
    ("replace none", body(replace_max_percent=0), "invalid_host_group", "replace_max_percent"),
    ("another name", body(name="other"), "name_mismatch", "name"),
    ("unknown field", body(max_hosts=3), "unknown_field", "max_hosts"),
    ("unknown nested field", body(shape={**SHAPE, "disks": 2}), "unknown_field", "shape.disks"),
    ("unknown provider field", body(provider={"kind": "none", "asg": "x"}), "unknown_field", "provider.asg"),
    ("sizes as text", body(min_size="one"), "invalid_type", "min_size"),
    ("zones not a list", body(shape={**SHAPE, "zones": "zone-a"}), "invalid_type", "shape.zones"),
]


@integration
@pytest.mark.parametrize(("case", "sent", "code", "field"), BAD_BODIES, ids=[c[0] for c in BAD_BODIES])
def test_bad_bodies_are_refused_naming_the_field(
    master: MasterProcess, case: str, sent: dict[str, Any], code: str, field: str
) -> None:
    r = master.http.put("/api/v1/hostgroups/refused", json=sent)
    assert r.status_code == 400, (case, r.text)
    assert (r.json()["code"], r.json().get("field")) == (code, field), (case, r.json())
    assert master.http.get("/api/v1/hostgroups/refused").status_code == 404  # nothing was kept


@integration
def test_a_bad_name_in_the_path_is_refused(master: MasterProcess) -> None:
    r = master.http.put("/api/v1/hostgroups/-starts-with-a-dash", json=body())
    assert (r.status_code, r.json()["code"], r.json()["field"]) == (400, "invalid_host_group", "name")


@integration
def test_scalar_provider_settings_are_taken_as_text(master: MasterProcess) -> None:
    """A YAML file's ``grace_s: 5`` in the provider's settings (a map of strings) means "5"."""
    sent = body(provider={"kind": "none", "config": {"grace_s": 5, "spot": True}}, autoscale=False)
    r = master.http.put("/api/v1/hostgroups/texts", json=sent)
    assert r.status_code == 200, r.text
    assert r.json()["provider"]["config"] == {"grace_s": "5", "spot": "true"}
    master.http.delete("/api/v1/hostgroups/texts")


def token(master: MasterProcess, name: str, role: str) -> str:
    master.http.put("/api/v1/admin/teams/hostgroupers", json={})
    made = master.http.post("/api/v1/admin/tokens", json={"name": name, "team": "hostgroupers", "role": role})
    assert made.status_code == 201, made.text
    return str(made.json()["secret"])


@integration
def test_users_and_viewers_read_only_admins_change(master: MasterProcess) -> None:
    assert master.http.put("/api/v1/hostgroups/guarded", json=body()).status_code == 200
    for role in ("user", "viewer"):
        headers = {"Authorization": f"Bearer {token(master, f'hg-{role}', role)}"}
        with httpx.Client(base_url=master.url, timeout=30, headers=headers) as http:
            assert http.get("/api/v1/hostgroups").status_code == 200
            assert http.get("/api/v1/hostgroups/guarded").json()["max_size"] == 6
            assert http.get("/api/v1/hostgroups/guarded/explain").status_code == 200
            for method, sent in (("PUT", body(max_size=99)), ("DELETE", None)):
                r = http.request(method, "/api/v1/hostgroups/guarded", json=sent)
                assert (r.status_code, r.json()["code"]) == (403, "forbidden"), (role, method, r.text)
            created = http.put("/api/v1/hostgroups/sneaky", json=body())
            assert created.status_code == 403, (role, created.text)
    assert master.http.get("/api/v1/hostgroups/guarded").json()["max_size"] == 6  # unchanged
    assert master.http.get("/api/v1/hostgroups/sneaky").status_code == 404
    master.http.delete("/api/v1/hostgroups/guarded")


@integration
def test_explain_says_per_host_why_it_is_kept(master: MasterProcess) -> None:
    assert (
        master.http.put("/api/v1/hostgroups/web", json=body(description="the agents' group")).status_code
        == 200
    )
    job = master.submit(batch_job(["sleep", "100"]))
    wait_for(lambda: master.tasks(job["id"], ["Started"]), what="the task started")

    def weighed() -> dict[str, Any] | None:
        explained: dict[str, Any] = master.http.get("/api/v1/hostgroups/web/explain").json()
        kinds = {h.get("kind") for h in explained["hosts"]}
        return explained if kinds == {"not_scalable"} else None  # an autoscaler round has weighed them

    explained = wait_for(weighed, what="every host weighed by an autoscaler round")
    assert explained["group"] == "web" and explained["scalable"] is False
    hosts = explained["hosts"]
    assert [h["host_id"] for h in hosts] == ["web-0000", "web-0001"]
    assert all(h["verdict"] == "kept" and h["state"] == "ready" and h["detail"] for h in hosts), hosts
    assert sorted(h["tasks"] for h in hosts) == [0, 1]  # the job's one task is on one of them
    assert explained["scale_to"] is None  # never scaled
    assert {"pending_tasks", "wanted", "unfixable_sample", "trial_ms"} <= explained["shortfall"].keys()
    assert isinstance(explained["recent"], list)

    status = master.http.get("/api/v1/hostgroups/web").json()["status"]
    assert (status["hosts"], status["idle"], status["removing"], status["unreachable"]) == (2, 1, 0, 0)
    autoscaler = master.http.get("/api/v1/status").json()["autoscaler"]
    assert autoscaler["enabled"] is True and autoscaler["rounds"] >= 1
    master.http.post(f"/api/v1/jobs/{job['id']}/kill")
    master.wait_job_finished(job["id"])


@integration
def test_a_configuration_survives_a_restart_and_a_deletion_stays_deleted(tmp_path: Path) -> None:
    master = MasterProcess(tmp_path).start()
    try:
        kept = master.http.put("/api/v1/hostgroups/kept", json=body(max_size=9, cost_per_host=2.5))
        assert kept.status_code == 200, kept.text
        assert master.http.put("/api/v1/hostgroups/dropped", json=body()).status_code == 200
        assert master.http.delete("/api/v1/hostgroups/dropped").status_code == 204
        before = {k: v for k, v in kept.json().items() if k != "status"}
        master.stop()
        master.start()
        after = master.http.get("/api/v1/hostgroups/kept")
        assert after.status_code == 200, after.text
        assert {k: v for k, v in after.json().items() if k != "status"} == before
        assert master.http.get("/api/v1/hostgroups/dropped").status_code == 404
        assert [g["name"] for g in master.http.get("/api/v1/hostgroups").json()["items"]] == ["kept"]
    except BaseException:
        print(master.log()[-20000:])
        raise
    finally:
        master.close()
