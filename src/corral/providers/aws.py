"""The ``aws`` provider: a host group is an EC2 Auto Scaling group (``provider.config``: ``asg``, and
optionally ``region`` and ``endpoint_url``); credentials come from the environment as boto3 finds them.

An instance boots with user data that runs ``corral agent --id <instance id> --host-group <group>
--instance-id <instance id>`` against the master, so its host id is its instance id. The group's
desired capacity is raised with ``SetDesiredCapacity`` and lowered only by terminating named instances
with ``ShouldDecrementDesiredCapacity``: AWS never chooses which host goes. botocore retries each call
(standard mode, 3 attempts); what still fails becomes a ``ProviderError`` that says whether to retry.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Sequence
from typing import Any

import boto3  # type: ignore[import-untyped]
from botocore.config import Config  # type: ignore[import-untyped]
from botocore.exceptions import (  # type: ignore[import-untyped]
    BotoCoreError,
    ClientError,
    HTTPClientError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.parsers import ResponseParserError  # type: ignore[import-untyped]

from corral.domain.hostgroup import HostGroup
from corral.providers.protocol import (
    PENDING,
    RUNNING,
    TERMINATED,
    TERMINATING,
    Instance,
    ProviderError,
)

log = logging.getLogger(__name__)

# The error codes botocore's standard retry mode treats as throttling (botocore/retries/standard.py).
THROTTLED_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)
# Errors that pass: the service's transient ones, and Auto Scaling's "busy with this group".
TRANSIENT_CODES = frozenset(
    {
        "RequestTimeout",
        "RequestTimeoutException",
        "ServiceUnavailable",
        "InternalFailure",
        "InternalError",
        "ScalingActivityInProgress",
        "ResourceContention",
    }
)

# Auto Scaling lifecycle states (LifecycleState) as instance states.
LIFECYCLE = {
    "Pending": PENDING,
    "Pending:Wait": PENDING,
    "Pending:Proceed": PENDING,
    "Quarantined": PENDING,
    "InService": RUNNING,
    "EnteringStandby": RUNNING,
    "Standby": RUNNING,
    "Terminating": TERMINATING,
    "Terminating:Wait": TERMINATING,
    "Terminating:Proceed": TERMINATING,
    "Detaching": TERMINATING,
    "Terminated": TERMINATED,
    "Detached": TERMINATED,
}


def lifecycle_state(name: str) -> str:
    """An Auto Scaling lifecycle state as an instance state (an unknown one: pending, not yet usable)."""
    return LIFECYCLE.get(name, PENDING)


def provider_error(error: Exception, doing: str) -> ProviderError:
    """A boto3 failure as a ``ProviderError``: throttled, retryable (transient) or final. Pure."""
    if isinstance(error, ClientError):
        info: dict[str, Any] = error.response.get("Error", {})
        code = str(info.get("Code", ""))
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        message = f"{doing}: {code}: {info.get('Message', '')}"
        if code in THROTTLED_CODES or status == 429:
            return ProviderError(message, throttled=True)
        return ProviderError(message, retryable=code in TRANSIENT_CODES or status >= 500)
    retryable = isinstance(error, BotoConnectionError | HTTPClientError | ResponseParserError)
    if isinstance(error, BotoCoreError | ResponseParserError):
        return ProviderError(f"{doing}: {error}", retryable=retryable)
    return ProviderError(f"{doing}: {type(error).__name__}: {error}")


def _not_in_group(error: Exception) -> bool:
    """AWS's answer to terminating an instance the group no longer has (already gone)."""
    if not isinstance(error, ClientError):
        return False
    info = error.response.get("Error", {})
    text = str(info.get("Message", "")).lower()
    return info.get("Code") == "ValidationError" and ("not found" in text or "no managed instance" in text)


class AwsProvider:
    def __init__(self, config: dict[str, str]) -> None:
        self.default_asg = config.get("asg", "")
        botocore_config = Config(
            retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=30
        )
        try:
            self.client: Any = boto3.session.Session().client(
                "autoscaling",
                region_name=config.get("region") or None,
                endpoint_url=config.get("endpoint_url") or None,
                config=botocore_config,
            )
        except (BotoCoreError, ValueError) as e:  # no region, a malformed endpoint
            raise provider_error(e, "creating the Auto Scaling client") from e

    def scale_to(self, group: HostGroup, desired: int) -> None:
        name = self._asg(group)
        if group.max_size and desired > group.max_size:
            raise ProviderError(f"group {group.name}: desired {desired} exceeds max_size {group.max_size}")
        found = self._describe(name)
        current, maximum = int(found["DesiredCapacity"]), int(found["MaxSize"])
        if desired <= current:
            if desired < current:
                log.warning(
                    "group %s: scale_to(%d) below %s's desired %d is a no-op (lower it by terminating)",
                    group.name,
                    desired,
                    name,
                    current,
                )
            return
        if desired > maximum:
            raise ProviderError(f"group {group.name}: desired {desired} exceeds {name}'s MaxSize {maximum}")
        try:
            self.client.set_desired_capacity(
                AutoScalingGroupName=name, DesiredCapacity=desired, HonorCooldown=False
            )
        except (BotoCoreError, ClientError, ResponseParserError) as e:
            raise provider_error(e, f"SetDesiredCapacity {name} to {desired}") from e

    def terminate(self, group: HostGroup, host_ids: Sequence[str]) -> None:
        name = self._asg(group)
        live = {
            i["InstanceId"]
            for i in self._describe(name).get("Instances", [])
            if lifecycle_state(i.get("LifecycleState", "")) in (PENDING, RUNNING)
        }
        for host_id in dict.fromkeys(host_ids):
            if host_id not in live:
                continue  # terminating, terminated or not this group's: nothing to do (idempotent)
            try:
                self.client.terminate_instance_in_auto_scaling_group(
                    InstanceId=host_id, ShouldDecrementDesiredCapacity=True
                )
            except (BotoCoreError, ClientError, ResponseParserError) as e:
                if _not_in_group(e):
                    continue  # it left the group between our look and the call
                raise provider_error(e, f"TerminateInstanceInAutoScalingGroup {host_id}") from e

    def list(self, group: HostGroup) -> builtins.list[Instance]:
        found = self._describe(self._asg(group))
        return [
            Instance(i["InstanceId"], i["InstanceId"], lifecycle_state(i.get("LifecycleState", "")))
            for i in found.get("Instances", [])
        ]

    def close(self) -> None:
        self.client.close()

    def _asg(self, group: HostGroup) -> str:
        name = group.provider.config.get("asg") or self.default_asg
        if not name:
            raise ProviderError(f"group {group.name}: its aws provider names no Auto Scaling group (asg)")
        return name

    def _describe(self, name: str) -> dict[str, Any]:
        try:
            answer = self.client.describe_auto_scaling_groups(AutoScalingGroupNames=[name])
        except (BotoCoreError, ClientError, ResponseParserError) as e:
            raise provider_error(e, f"DescribeAutoScalingGroups {name}") from e
        groups: list[dict[str, Any]] = answer.get("AutoScalingGroups", [])
        if not groups:
            raise ProviderError(f"no Auto Scaling group named {name}")
        return groups[0]
