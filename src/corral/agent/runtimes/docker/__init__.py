"""The ``docker`` runtime: each task a container, through the Docker Engine API (Docker SDK for Python).

Containers carry labels that tie them to their task, so an agent that restarts finds them again; they
keep running through agent and master restarts. Exits come from Docker's event stream (one thread), not
from a waiting thread per container.

Every container is confined (spec.py): no privileges, Docker's bridge network, private PID and IPC
namespaces, all capabilities dropped but NET_BIND_SERVICE, no-new-privileges, Docker's default seccomp
profile, pids and memory limits, optionally a read-only root. The control plane's ports are closed to
containers by iptables rules the agent installs at start (isolation.py, over ``agent.firewall``).
"""

from corral.agent.runtimes.docker.config import DockerConfig
from corral.agent.runtimes.docker.runtime import DockerRuntime

__all__ = ["DockerConfig", "DockerRuntime"]
