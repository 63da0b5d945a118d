"""What a provider is: the boundary between the autoscaler and whatever starts and terminates hosts.

The methods are synchronous (boto3 is; the autoscaler's shell calls them in a worker thread) and each
call does what it says before returning, or raises ``ProviderError``.

Contract every provider keeps:

- A provider never picks instances to remove on its own. ``scale_to`` only adds: a ``desired`` at or
  below the group's current count is a no-op (the autoscaler lowers a group through ``terminate`` alone,
  naming the hosts it drained). ``scale_to`` above the group's own maximum raises (not retryable).
- ``terminate`` terminates exactly the named instances and lowers the desired count by as many. It is
  idempotent: an id that is already terminating, terminated or unknown is skipped, not an error.
- A host started by a provider registers with host id == instance id, ``host_group`` == the group's name
  and the custom attribute ``instance_id`` == its instance id.
- ``list`` is the provider's view: an instance may be listed before its agent registers, and after it
  has left the master's view.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

from corral.domain.hostgroup import HostGroup

PENDING: Final = "pending"  # asked for, not yet running
RUNNING: Final = "running"
TERMINATING: Final = "terminating"
TERMINATED: Final = "terminated"
INSTANCE_STATES: Final = (PENDING, RUNNING, TERMINATING, TERMINATED)

INSTANCE_ID_ATTRIBUTE: Final = "instance_id"  # the custom host attribute that names a host's instance


@dataclass(frozen=True, slots=True)
class Instance:
    instance_id: str
    host_id: str  # the agent's id: equal to instance_id for every provider here
    state: str  # one of INSTANCE_STATES


class ProviderError(Exception):
    """A provider call failed. ``retryable``: the same call may succeed later (the shell backs off and
    tries again); ``throttled``: the provider's API refused for rate (back off harder)."""

    def __init__(self, message: str, *, retryable: bool = False, throttled: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable or throttled
        self.throttled = throttled

    def __repr__(self) -> str:
        return f"ProviderError({self.message!r}, retryable={self.retryable}, throttled={self.throttled})"


@dataclass(frozen=True, slots=True)
class ProviderContext:
    """What the master knows that a provider's new hosts need to join it."""

    master_url: str  # comma-separated when there are several masters
    token: str = ""  # the agents' join token ("": none, or the agents bring their own)
    ca_file: str = ""  # CA bundle for an https master
    data_dir: Path = Path(".corral")  # a directory a provider may keep state in (under providers/<kind>)


class Provider(Protocol):
    def scale_to(self, group: HostGroup, desired: int) -> None:
        """Make the group have ``desired`` instances: start the missing ones (never removes any)."""
        ...

    def terminate(self, group: HostGroup, host_ids: Sequence[str]) -> None:
        """Terminate exactly these instances and lower the desired count by as many (idempotent)."""
        ...

    def list(self, group: HostGroup) -> builtins.list[Instance]:
        """The group's instances as the provider sees them."""
        ...

    def close(self) -> None:
        """Release the provider's clients; the instances keep running."""
        ...
