"""Providers start and terminate a host group's hosts for the autoscaler (issue 13).

``protocol.py`` names the boundary (``Provider``, ``Instance``, ``ProviderError``, ``ProviderContext``);
``local.py`` runs ``corral agent`` processes on this machine, ``aws.py`` drives an EC2 Auto Scaling group.
Everything here is shell: processes, files, signals and cloud calls. What a provider decides without
I/O (ids, zones, port shares, command lines, error classes) sits in pure functions beside it
(``local_layout.py``, ``aws.provider_error``). The autoscaler decides *how many* and *which*; a provider
only carries that out.
"""

from __future__ import annotations

from corral.domain.hostgroup import ProviderRef
from corral.providers.protocol import (
    INSTANCE_ID_ATTRIBUTE,
    INSTANCE_STATES,
    Instance,
    Provider,
    ProviderContext,
    ProviderError,
)

__all__ = [
    "INSTANCE_ID_ATTRIBUTE",
    "INSTANCE_STATES",
    "Instance",
    "Provider",
    "ProviderContext",
    "ProviderError",
    "make_provider",
]


def make_provider(ref: ProviderRef, context: ProviderContext) -> Provider:
    """The provider ``ref`` names, set up with its config (boto3 is imported only for ``aws``)."""
    if ref.kind == "local":
        from corral.providers.local import LocalProvider

        return LocalProvider(context, ref.config)
    if ref.kind == "aws":
        from corral.providers.aws import AwsProvider

        return AwsProvider(ref.config)
    raise ProviderError(f"no provider of kind {ref.kind!r} starts hosts")
