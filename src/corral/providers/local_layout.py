"""How the local provider lays its instances out on this machine: their ids, zones, port ranges, the
``corral agent`` command line each runs, and what state a record shows.

Purely computational: the processes, files and signals are in ``local.py``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from corral.domain.hostgroup import HostGroup
from corral.providers.protocol import (
    INSTANCE_ID_ATTRIBUTE,
    RUNNING,
    TERMINATED,
    TERMINATING,
    ProviderError,
)

RUNTIMES = ("sim", "docker")
DEFAULT_PORT_SLOTS = 16  # docker agents of a group without max_size share its port range this many ways


@dataclass(frozen=True, slots=True)
class LocalInstance:
    """One instance as the provider records it (a JSON file: a master that takes over reads it)."""

    instance_id: str
    number: int  # never reused within the group
    zone: str
    slot: int  # which share of the group's port range a docker agent got (-1: none, sim)
    runtime: str
    pid: int = 0
    proc_start: str = ""  # the kernel's start time of ``pid``: a later process with the same pid differs
    started_at: float = 0.0  # wall clock, for people
    terminating: bool = False


def instance_id(group: str, number: int) -> str:
    return f"{group}-{number:04d}"


def runtime_of(config: Mapping[str, str]) -> str:
    runtime = config.get("runtime") or "sim"
    if runtime not in RUNTIMES:
        raise ProviderError(f"local provider: unknown runtime {runtime!r} (known: {', '.join(RUNTIMES)})")
    return runtime


def next_zone(zones: tuple[str, ...], live: Iterable[str]) -> str:
    """Round robin that stays balanced across terminations: the zone with the fewest live instances,
    the first of the shape's order on a tie."""
    counts = Counter(live)
    return min(zones, key=lambda z: (counts[z], zones.index(z)))


def port_slots(group: HostGroup, config: Mapping[str, str]) -> int:
    """How many ways the shape's port range is split between the group's docker agents."""
    text = config.get("port_slots", "")
    if text:
        if not text.isdigit() or int(text) < 1:
            raise ProviderError(f"local provider: port_slots must be a positive integer, not {text!r}")
        return int(text)
    return group.max_size or DEFAULT_PORT_SLOTS


def free_slot(used: Iterable[int], slots: int) -> int | None:
    taken = set(used)
    return next((s for s in range(slots) if s not in taken), None)


def slot_ports(port_range: tuple[int, int], slot: int, slots: int) -> tuple[int, int]:
    """The ``slot``-th of ``slots`` equal shares of ``port_range`` (raises if a share would be empty)."""
    low, high = port_range
    span = (high - low + 1) // slots
    if span < 1:
        raise ProviderError(f"local provider: port range {low}-{high} cannot be split {slots} ways")
    return low + slot * span, low + (slot + 1) * span - 1


def agent_argv(
    python: str,
    group: HostGroup,
    instance: LocalInstance,
    master_url: str,
    state_dir: str,
    ca_file: str = "",
    config: Mapping[str, str] | None = None,
) -> list[str]:
    """The ``corral agent`` command line of one instance: one agent whose host id is the instance id,
    shaped as the group says. The join token goes in the environment, never on the command line."""
    config = config or {}
    shape = group.shape
    r = shape.resources
    argv = [
        python,
        "-m",
        "corral",
        "agent",
        "--master",
        master_url,
        "--runtime",
        instance.runtime,
        "--count",
        "1",
        "--id",
        instance.instance_id,
        "--host-group",
        group.name,
        "--instance-type",
        shape.instance_type,
        "--instance-id",
        instance.instance_id,
        "--zones",
        instance.zone,
        "--cpu",
        repr(float(r.cpu)),
        "--memory-mb",
        str(int(r.memory_mb)),
        "--disk-mb",
        str(int(r.disk_mb)),
        "--network-mbps",
        str(int(r.network_mbps)),
        "--gpu",
        str(int(r.gpu)),
        "--state-dir",
        state_dir,
        "--log-level",
        config.get("log_level") or "info",
    ]
    for key, value in sorted(shape.attributes.items()):
        if key != INSTANCE_ID_ATTRIBUTE:  # the instance's own id, set above, wins
            argv += ["--attr", f"{key}={value}"]
    if instance.runtime == "docker":
        low, high = slot_ports(shape.port_range, instance.slot, port_slots(group, config))
        argv += ["--port-range", f"{low}-{high}"]
        if config.get("port_isolation", "true").lower() in ("false", "no", "off", "0"):
            argv.append("--no-port-isolation")
    else:
        argv += ["--port-range", f"{shape.port_range[0]}-{shape.port_range[1]}"]
    if ca_file:
        argv += ["--ca-file", ca_file]
    return argv


AGENT_VARIABLES = ("CORRAL_AGENT_TOKEN", "CORRAL_AGENT_TOKEN_FILE", "CORRAL_CA_FILE")


def agent_env(environ: Mapping[str, str], token: str) -> dict[str, str]:
    """The agent's environment: the master's, less its own CORRAL_* settings and secrets (an admin
    bootstrap token has no business on an agent), with the join token when the master has one."""
    env = {k: v for k, v in environ.items() if not k.startswith("CORRAL_") or k in AGENT_VARIABLES}
    if token:
        env["CORRAL_AGENT_TOKEN"] = token  # in the environment, never on the command line
        env.pop("CORRAL_AGENT_TOKEN_FILE", None)
    return env


def state_of(instance: LocalInstance, alive: bool) -> str:
    if not alive:
        return TERMINATED
    return TERMINATING if instance.terminating else RUNNING
