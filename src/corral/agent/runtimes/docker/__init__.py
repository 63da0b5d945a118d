"""The ``docker`` runtime: each task a container, through the Docker Engine API (Docker SDK for Python).

Containers carry labels that tie them to their task, so an agent that restarts finds them again; they
keep running through agent and master restarts. Exits come from Docker's event stream (one thread), not
from a waiting thread per container.
"""

from corral.agent.runtimes.docker.config import DockerConfig
from corral.agent.runtimes.docker.runtime import DockerRuntime

__all__ = ["DockerConfig", "DockerRuntime"]
