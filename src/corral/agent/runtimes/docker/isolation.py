"""Close the control plane to this host's task containers: the docker side of ``agent.firewall``.

Tasks run on Docker's default bridge; its interface name comes from Docker, so the rules follow a
daemon configured with another bridge (``--bridge``, or ``bridge`` in daemon.json)."""

from __future__ import annotations

from collections.abc import Sequence

import docker
from docker.errors import DockerException

from corral.agent import firewall

DEFAULT_BRIDGE = "docker0"
BRIDGE_NAME_OPTION = "com.docker.network.bridge.name"


def bridge_interface(client: docker.DockerClient) -> str:
    """The host interface of Docker's default ``bridge`` network, which task containers use."""
    try:
        network = client.api.inspect_network("bridge")
    except DockerException as e:
        raise firewall.FirewallError(f"cannot inspect Docker's bridge network: {e}") from e
    name = (network.get("Options") or {}).get(BRIDGE_NAME_OPTION) or DEFAULT_BRIDGE
    return str(name)


def isolate_control_ports(
    master_urls: Sequence[str],
    local_ports: Sequence[tuple[int, str]],
    client: docker.DockerClient | None = None,
) -> list[firewall.Rule]:
    """Install (idempotently) the rules that keep task containers off the masters and ``local_ports``;
    raises ``firewall.FirewallError`` when that cannot be done."""
    own = client is None
    try:
        docker_client = client or docker.from_env()
    except DockerException as e:
        raise firewall.FirewallError(f"cannot reach Docker: {e}") from e
    try:
        return firewall.isolate(master_urls, local_ports, [bridge_interface(docker_client)])
    finally:
        if own:
            docker_client.close()
