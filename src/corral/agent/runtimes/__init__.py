"""Runtimes run tasks for the agent: ``docker`` (real containers) and ``sim`` (no processes, for scale)."""

from corral.agent.runtimes.base import Reporter, Runtime
from corral.agent.runtimes.sim import SimRuntime

__all__ = ["Reporter", "Runtime", "SimRuntime"]
