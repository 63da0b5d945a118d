"""The local provider's pure layout: instance ids, zones, port shares and the agent's command line; and
the ``corral agent`` options that make a single agent register exactly as an instance should."""

from __future__ import annotations

import pytest

from corral.agent.runtimes.docker.config import LABEL_HOST
from corral.cli.servers import HostOptions, fleet_spec
from corral.domain.hostgroup import HostGroup, HostShape, ProviderRef
from corral.domain.resources import Resources
from corral.providers import INSTANCE_STATES, ProviderError, make_provider
from corral.providers.local import DOCKER_HOST_LABEL
from corral.providers.local_layout import (
    LocalInstance,
    agent_argv,
    agent_env,
    free_slot,
    instance_id,
    next_zone,
    port_slots,
    runtime_of,
    slot_ports,
    state_of,
)
from corral.providers.protocol import ProviderContext


def group(runtime: str = "sim", max_size: int = 4, **config: str) -> HostGroup:
    return HostGroup(
        "web",
        shape=HostShape(
            resources=Resources(2.0, 4096, 20_000, 1000, 1),
            zones=("zone-a", "zone-b"),
            instance_type="local.small",
            attributes={"rack": "r1", "instance_id": "not-this"},
            port_range=(31000, 31999),
        ),
        max_size=max_size,
        provider=ProviderRef("local", {"runtime": runtime, **config}),
    )


def option(argv: list[str], name: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == name]


def test_instance_ids_carry_the_group_and_a_number() -> None:
    assert instance_id("web", 7) == "web-0007"


def test_zones_go_round_robin_and_stay_balanced_after_terminations() -> None:
    zones = ("a", "b", "c")
    live: list[str] = []
    for _ in range(4):
        live.append(next_zone(zones, live))
    assert live == ["a", "b", "c", "a"]
    live.remove("b")  # b's instance was terminated: the next one goes there
    assert next_zone(zones, live) == "b"


def test_docker_agents_get_disjoint_shares_of_the_port_range() -> None:
    g = group("docker")
    slots = port_slots(g, {})
    assert slots == 4  # one share per instance the group may have
    shares = [slot_ports(g.shape.port_range, s, slots) for s in range(slots)]
    assert shares == [(31000, 31249), (31250, 31499), (31500, 31749), (31750, 31999)]
    assert free_slot([0, 2], slots) == 1
    assert free_slot([0, 1, 2, 3], slots) is None
    assert port_slots(group("docker", max_size=0), {}) == 16
    assert port_slots(g, {"port_slots": "2"}) == 2
    with pytest.raises(ProviderError):
        port_slots(g, {"port_slots": "zero"})
    with pytest.raises(ProviderError, match="cannot be split"):
        slot_ports((31000, 31001), 0, 3)


def test_the_agent_command_line_registers_the_instance_as_a_host_of_the_group() -> None:
    g = group("sim")
    record = LocalInstance("web-0003", 3, "zone-b", -1, "sim")
    argv = agent_argv("/py", g, record, "http://m:1", "/state/web-0003", "/ca.pem", {"log_level": "debug"})
    assert argv[:4] == ["/py", "-m", "corral", "agent"]
    assert option(argv, "--id") == ["web-0003"] and option(argv, "--count") == ["1"]
    assert option(argv, "--instance-id") == ["web-0003"]
    assert option(argv, "--host-group") == ["web"]
    assert option(argv, "--instance-type") == ["local.small"]
    assert option(argv, "--zones") == ["zone-b"]
    assert option(argv, "--cpu") == ["2.0"] and option(argv, "--memory-mb") == ["4096"]
    assert option(argv, "--disk-mb") == ["20000"] and option(argv, "--gpu") == ["1"]
    assert option(argv, "--attr") == ["rack=r1"]  # the shape's own instance_id never overrides the real one
    assert option(argv, "--port-range") == ["31000-31999"]
    assert option(argv, "--state-dir") == ["/state/web-0003"]
    assert option(argv, "--ca-file") == ["/ca.pem"] and option(argv, "--log-level") == ["debug"]
    assert "--token" not in argv  # the join token travels in the environment


def test_a_docker_instance_gets_its_share_of_ports_and_may_go_without_port_isolation() -> None:
    g = group("docker")
    record = LocalInstance("web-0001", 1, "zone-a", 2, "docker")
    argv = agent_argv("/py", g, record, "http://m:1", "/s", config={"port_isolation": "false"})
    assert option(argv, "--runtime") == ["docker"]
    assert option(argv, "--port-range") == ["31500-31749"]
    assert "--no-port-isolation" in argv
    assert "--no-port-isolation" not in agent_argv("/py", g, record, "http://m:1", "/s")


def test_the_agent_gets_the_join_token_and_none_of_the_masters_secrets() -> None:
    master_env = {
        "PATH": "/bin",
        "CORRAL_BOOTSTRAP_TOKEN": "admin-secret",
        "CORRAL_STORE_URL": "postgresql://u:p@db/corral",
        "CORRAL_AGENT_TOKEN_FILE": "/etc/corral/agent.token",
        "CORRAL_CA_FILE": "/ca.pem",
    }
    assert agent_env(master_env, "join") == {
        "PATH": "/bin",
        "CORRAL_AGENT_TOKEN": "join",
        "CORRAL_CA_FILE": "/ca.pem",
    }
    assert agent_env(master_env, "")["CORRAL_AGENT_TOKEN_FILE"] == "/etc/corral/agent.token"


def test_a_record_shows_running_terminating_or_terminated() -> None:
    record = LocalInstance("web-0000", 0, "zone-a", -1, "sim", pid=1)
    assert state_of(record, alive=True) == "running"
    assert state_of(LocalInstance("w", 0, "z", -1, "sim", terminating=True), alive=True) == "terminating"
    assert state_of(record, alive=False) == "terminated"
    assert {"running", "terminating", "terminated"} <= set(INSTANCE_STATES)


def test_unknown_runtimes_and_kinds_are_refused() -> None:
    assert runtime_of({}) == "sim"
    with pytest.raises(ProviderError, match="unknown runtime") as caught:
        runtime_of({"runtime": "vm"})
    assert not caught.value.retryable
    with pytest.raises(ProviderError, match="no provider"):
        make_provider(ProviderRef("none"), ProviderContext("http://m:1"))


def test_the_provider_removes_containers_by_the_label_docker_agents_put_on_them() -> None:
    assert DOCKER_HOST_LABEL == LABEL_HOST


def test_one_agent_with_an_id_registers_as_exactly_that_host() -> None:
    host = HostOptions(
        host_group="web",
        instance_type="local.small",
        attributes={"instance_id": "i-1", "rack": "r1"},
        port_range=(31000, 31099),
        exact_id=True,
        gpu=2,
    )
    config = fleet_spec(1, "i-1", 2.0, 4096, "zone-b", host).config(0, "http://m:1")
    assert config.agent_id == "i-1"
    assert config.attributes.host_group == "web" and config.attributes.instance_type == "local.small"
    assert config.attributes.custom == {"instance_id": "i-1", "rack": "r1"}
    assert config.attributes.zone == "zone-b" and config.port_range == (31000, 31099)
    assert config.resources.gpu == 2
    # Without an exact id (several agents, or no --id), sim agents keep their numbered ids.
    assert fleet_spec(2, "sim", 2.0, 4096, "z", host).config(1, "http://m:1").agent_id == "sim-0001"
    assert fleet_spec(1, "sim", 2.0, 4096, "z").config(0, "http://m:1").agent_id == "sim-0000"
