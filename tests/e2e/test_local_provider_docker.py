"""The local provider with the docker runtime: two ``corral agent --runtime docker`` processes on this
machine register as distinct hosts with disjoint port ranges, each runs a real container, and
terminating one instance removes that agent's containers (they outlive an agent, not its machine)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from corral.domain.hostgroup import HostGroup, HostShape, ProviderRef
from corral.domain.resources import Resources
from corral.providers import Provider, ProviderContext, make_provider
from tests.support.cluster import AGENT_TOKEN, MasterProcess, wait_for
from tests.support.docker_node import containers, remove_containers, unique_host
from tests.support.specs import batch_job

pytestmark = pytest.mark.e2e


def docker_group(name: str) -> HostGroup:
    return HostGroup(
        name,
        shape=HostShape(
            resources=Resources(1.0, 1024, 10_000, 1000, 0),
            zones=("zone-a",),
            instance_type="local.docker",
            port_range=(32100, 32499),  # apart from the other end-to-end tests' agents
        ),
        max_size=2,  # the port range is split two ways
        # Port isolation installs machine-wide firewall rules that outlive the agents: test_isolation.py
        # covers it; here the agents go without.
        provider=ProviderRef("local", {"runtime": "docker", "port_isolation": "false", "grace_s": "15"}),
    )


@pytest.fixture
def group() -> HostGroup:
    return docker_group(unique_host("dockers"))  # instance ids label containers: unique to this run


@pytest.fixture
def provider(master: MasterProcess, group: HostGroup, tmp_path: Path) -> Iterator[Provider]:
    context = ProviderContext(master.url, AGENT_TOKEN, "", tmp_path / "data")
    p = make_provider(group.provider, context)
    try:
        yield p
    except BaseException:
        for log in sorted((context.data_dir / "providers" / "local").glob("*/state/*/agent.log")):
            print(f"---- {log.parent.name} ----\n" + log.read_text(errors="replace")[-5000:])
        raise
    finally:
        ids = [i.instance_id for i in p.list(group)]
        p.terminate(group, ids)
        p.close()
        for host_id in ids:
            remove_containers(host_id)


def hosts(master: MasterProcess, group: str) -> dict[str, dict[str, Any]]:
    items = master.http.get("/api/v1/hosts").json()["items"]
    return {h["id"]: h for h in items if h["attributes"]["host_group"] == group and h["state"] == "ready"}


def pinned_sleep(host_id: str) -> dict[str, Any]:
    spec = batch_job(["sleep", "300"], application="provided")
    spec["container"]["resources"].update(cpu=0.2, memory_mb=64, shm_mb=8)
    spec["container"]["hard_constraints"] = {"host": host_id}
    return spec


def test_docker_instances_run_containers_and_take_them_along_when_terminated(
    master: MasterProcess, group: HostGroup, provider: Provider
) -> None:
    provider.scale_to(group, 2)
    found = wait_for(
        lambda: (h := hosts(master, group.name)) and len(h) == 2 and h,
        120,  # two `corral agent` processes: imports, Docker, registration (slow CI: 5x)
        interval=0.3,
        what="two docker hosts of the group",
    )
    first, second = f"{group.name}-0000", f"{group.name}-0001"
    assert sorted(found) == [first, second]
    assert sorted(tuple(h["port_range"]) for h in found.values()) == [(32100, 32299), (32300, 32499)]
    assert all(h["runtime"] == "docker" for h in found.values())
    assert all(h["attributes"]["custom"] == {"instance_id": i} for i, h in found.items())

    jobs = {host_id: master.submit(pinned_sleep(host_id))["id"] for host_id in found}
    for host_id, job_id in jobs.items():
        wait_for(
            lambda j=job_id: master.tasks(j, ["Started"]),
            120,
            interval=0.3,
            what=f"a task started on {host_id}",
        )
        assert len(containers(host_id, running_only=True)) == 1

    provider.terminate(group, [first])
    assert containers(first) == []  # the terminated agent's containers are gone with it
    assert len(containers(second, running_only=True)) == 1  # the other host's are not touched
    assert [(i.instance_id, i.state) for i in provider.list(group)] == [(second, "running")]
