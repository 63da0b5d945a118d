"""The local provider against a real master: its instances are real ``corral agent`` processes (sim
runtime) that register as hosts of the group, a second provider over the same data dir (a master that
took over) sees and terminates the same processes, and a terminated instance's host goes unreachable."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from corral.domain.hostgroup import HostGroup, HostShape, ProviderRef
from corral.domain.resources import Resources
from corral.providers import Provider, ProviderContext, ProviderError, make_provider
from tests.support.cluster import AGENT_TOKEN, MasterProcess, wait_for

pytestmark = pytest.mark.integration

START_S = 90.0  # a `corral agent` process starting: an interpreter, imports, registration (slow CI: 5x)


def local_group(name: str = "burst", max_size: int = 6) -> HostGroup:
    return HostGroup(
        name,
        shape=HostShape(
            resources=Resources(2.0, 4096, 20_000, 1000, 0),
            zones=("zone-a", "zone-b"),
            instance_type="local.small",
            attributes={"rack": "r1"},
        ),
        max_size=max_size,
        provider=ProviderRef("local", {"runtime": "sim", "grace_s": "15", "log_level": "info"}),
    )


def agent_pids(instance_id: str, master: MasterProcess) -> list[int]:
    """Processes on this machine running the agent of ``instance_id`` for ``master`` (read from /proc,
    not from the provider's own records)."""
    needles = (f"\0--instance-id\0{instance_id}\0".encode(), f"\0--master\0{master.url}\0".encode())
    pids = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                cmdline = f.read()
            with open(f"/proc/{entry.name}/stat") as f:
                zombie = f.read().rsplit(")", 1)[1].split()[0] == "Z"
        except OSError:
            continue
        if all(n in cmdline + b"\0" for n in needles) and not zombie:
            pids.append(int(entry.name))
    return pids


def hosts_of(master: MasterProcess, group: str) -> dict[str, dict[str, Any]]:
    items = master.http.get("/api/v1/hosts").json()["items"]
    return {h["id"]: h for h in items if h["attributes"]["host_group"] == group}


def ready_hosts(master: MasterProcess, group: str) -> dict[str, dict[str, Any]]:
    return {i: h for i, h in hosts_of(master, group).items() if h["state"] == "ready"}


@pytest.fixture
def master(tmp_path: Path) -> Iterator[MasterProcess]:
    m = MasterProcess(tmp_path / "master").start()
    try:
        yield m
    except BaseException:
        print("---- master log ----\n" + m.log()[-20000:])
        raise
    finally:
        m.close()


@pytest.fixture
def context(master: MasterProcess, tmp_path: Path) -> ProviderContext:
    return ProviderContext(master.url, AGENT_TOKEN, "", tmp_path / "data")


@pytest.fixture
def provider(context: ProviderContext) -> Iterator[Provider]:
    group = local_group()
    p = make_provider(group.provider, context)
    try:
        yield p
    except BaseException:
        for log in sorted((context.data_dir / "providers" / "local").glob("*/state/*/agent.log")):
            print(f"---- {log.parent.name} ----\n" + log.read_text(errors="replace")[-5000:])
        raise
    finally:
        # The agents are processes of their own: terminate whatever a test left.
        p.terminate(group, [i.instance_id for i in p.list(group)])
        p.close()


def test_instances_register_as_hosts_of_the_group_and_a_successor_terminates_them(
    master: MasterProcess, context: ProviderContext, provider: Provider
) -> None:
    group = local_group()
    provider.scale_to(group, 3)
    hosts = wait_for(
        lambda: (h := ready_hosts(master, "burst")) and len(h) == 3 and h,
        START_S,
        interval=0.2,
        what="3 hosts of group burst",
    )
    assert sorted(hosts) == ["burst-0000", "burst-0001", "burst-0002"]
    for host_id, host in hosts.items():
        attributes = host["attributes"]
        assert attributes["custom"] == {"instance_id": host_id, "rack": "r1"}
        assert attributes["instance_type"] == "local.small"
        assert host["resources"]["cpu"] == 2.0 and host["resources"]["memory_mb"] == 4096
    assert sorted(h["attributes"]["zone"] for h in hosts.values()) == ["zone-a", "zone-a", "zone-b"]

    listed = provider.list(group)
    assert sorted((i.instance_id, i.host_id, i.state) for i in listed) == [
        (h, h, "running") for h in sorted(hosts)
    ]

    successor = make_provider(group.provider, context)  # another master on this machine, same data dir
    assert successor.list(group) == listed

    victim = "burst-0001"
    assert len(agent_pids(victim, master)) == 1
    successor.terminate(group, [victim])
    assert agent_pids(victim, master) == []  # terminate returns once the process is gone
    wait_for(
        lambda: hosts_of(master, "burst")[victim]["state"] == "unreachable",
        30,
        what=f"{victim} to go unreachable",
    )
    assert sorted(i.instance_id for i in provider.list(group)) == ["burst-0000", "burst-0002"]
    assert {i.state for i in provider.list(group)} == {"running"}

    successor.terminate(group, [victim, "burst-9999"])  # already gone, unknown: not an error
    successor.scale_to(group, 2)  # not below what runs: nothing happens
    assert len(provider.list(group)) == 2

    provider.scale_to(group, 3)  # a new instance, never the victim's id again
    wait_for(lambda: "burst-0003" in ready_hosts(master, "burst"), START_S, interval=0.2, what="burst-0003")
    assert sorted(i.instance_id for i in successor.list(group)) == ["burst-0000", "burst-0002", "burst-0003"]
    assert ready_hosts(master, "burst")["burst-0003"]["attributes"]["zone"] == "zone-b"  # zones rebalanced
    successor.close()


def test_an_instance_whose_process_died_shows_terminated_and_is_replaced(
    master: MasterProcess, provider: Provider
) -> None:
    group = local_group()
    provider.scale_to(group, 2)
    wait_for(lambda: len(ready_hosts(master, "burst")) == 2, START_S, interval=0.2, what="2 hosts")
    (pid,) = agent_pids("burst-0000", master)
    os.kill(pid, signal.SIGKILL)  # the machine died under the provider
    wait_for(
        lambda: {i.instance_id: i.state for i in provider.list(group)}["burst-0000"] == "terminated",
        30,
        what="the dead instance to show terminated",
    )
    provider.scale_to(group, 2)
    assert sorted((i.instance_id, i.state) for i in provider.list(group)) == [
        ("burst-0001", "running"),
        ("burst-0002", "running"),
    ]
    wait_for(lambda: "burst-0002" in ready_hosts(master, "burst"), START_S, interval=0.2, what="burst-0002")


def test_scale_to_above_the_group_maximum_is_refused(provider: Provider) -> None:
    with pytest.raises(ProviderError, match="exceeds max_size") as caught:
        provider.scale_to(local_group(max_size=2), 3)
    assert not caught.value.retryable
    assert provider.list(local_group()) == []
