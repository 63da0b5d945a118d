"""The aws provider against an EC2 Auto Scaling group, and instances that boot into hosts of a real master.

AWS cannot be reached from here: moto's server mode (tests/support/cloud.py, a separate process serving
the AWS APIs over HTTP on loopback) is the only emulator these tests accept, and boto3 talks to it as to
AWS. moto never throttles, so a throttled answer comes from botocore's own Stubber on the provider's real
client, and the error mapping is also checked on ClientErrors that botocore builds.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from botocore.stub import Stubber

from corral.domain.hostgroup import HostGroup, ProviderRef
from corral.providers import ProviderError, make_provider
from corral.providers.aws import AwsProvider, lifecycle_state, provider_error
from corral.providers.protocol import ProviderContext
from tests.support.cloud import REGION, InstanceBooter, Moto, moto_server
from tests.support.cluster import MasterProcess, free_port, wait_for

CONTEXT = ProviderContext("http://127.0.0.1:1")  # the aws provider needs nothing of the master


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Moto]:
    with moto_server(tmp_path_factory.mktemp("moto")) as m:
        yield m


@pytest.fixture
def asg(moto: Moto, request: pytest.FixtureRequest) -> str:
    moto.reset()
    name = f"corral-{request.node.name[:40]}".replace("_", "-")
    moto.create_asg(name, min_size=0, max_size=10)
    return name


def aws_group(moto: Moto, asg: str, name: str = "cloud", **config: str) -> HostGroup:
    ref = ProviderRef("aws", {"asg": asg, "region": REGION, "endpoint_url": moto.url, **config})
    return HostGroup(name, max_size=10, provider=ref)


def client_error(code: str, status: int = 400, message: str = "") -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": message or code},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, "SetDesiredCapacity")


def test_scale_to_starts_instances_and_terminate_lowers_desired(moto: Moto, asg: str) -> None:
    group = aws_group(moto, asg)
    provider = make_provider(group.provider, CONTEXT)
    try:
        provider.scale_to(group, 3)
        listed = provider.list(group)
        assert len(listed) == 3
        assert {i.state for i in listed} == {"running"}
        assert all(i.host_id == i.instance_id and i.instance_id.startswith("i-") for i in listed)
        assert moto.group(asg)["DesiredCapacity"] == 3

        victim = listed[1].instance_id
        provider.terminate(group, [victim])
        assert moto.group(asg)["DesiredCapacity"] == 2
        left = provider.list(group)
        assert sorted(i.instance_id for i in left) == sorted(
            i.instance_id for i in listed if i.instance_id != victim
        )

        provider.terminate(group, [victim, "i-0123456789abcdef0"])  # gone already, never ours: no error
        assert moto.group(asg)["DesiredCapacity"] == 2
        provider.scale_to(group, 1)  # never lowers: which host goes is the autoscaler's choice
        assert moto.group(asg)["DesiredCapacity"] == 2 and len(provider.list(group)) == 2
    finally:
        provider.close()


def test_desired_above_the_groups_maximum_is_refused(moto: Moto, asg: str) -> None:
    provider = make_provider(aws_group(moto, asg).provider, CONTEXT)
    try:
        with pytest.raises(ProviderError, match="MaxSize 10") as caught:
            provider.scale_to(HostGroup("cloud", provider=aws_group(moto, asg).provider), 11)
        assert not caught.value.retryable
        assert moto.group(asg)["DesiredCapacity"] == 0
    finally:
        provider.close()


def test_an_unknown_auto_scaling_group_is_a_final_error(moto: Moto) -> None:
    group = aws_group(moto, "corral-no-such-group")
    provider = make_provider(group.provider, CONTEXT)
    try:
        with pytest.raises(ProviderError, match="no Auto Scaling group") as caught:
            provider.list(group)
        assert not caught.value.retryable and not caught.value.throttled
    finally:
        provider.close()


def test_a_throttled_answer_is_a_throttled_provider_error(moto: Moto, asg: str) -> None:
    group = aws_group(moto, asg)
    provider = AwsProvider(group.provider.config)
    try:
        with Stubber(provider.client) as stub:
            stub.add_client_error(
                "describe_auto_scaling_groups",
                service_error_code="Throttling",
                service_message="Rate exceeded",
                http_status_code=400,
            )
            with pytest.raises(ProviderError, match="Rate exceeded") as caught:
                provider.list(group)
        assert caught.value.throttled and caught.value.retryable
        assert provider.list(group) == []  # the real server again
    finally:
        provider.close()


def test_an_unreachable_endpoint_is_retryable() -> None:
    group = HostGroup(
        "cloud",
        provider=ProviderRef(
            "aws", {"asg": "any", "region": REGION, "endpoint_url": f"http://127.0.0.1:{free_port()}"}
        ),
    )
    provider = make_provider(group.provider, CONTEXT)
    try:
        with pytest.raises(ProviderError) as caught:
            provider.list(group)
        assert caught.value.retryable and not caught.value.throttled
    finally:
        provider.close()


@pytest.mark.parametrize(
    ("error", "throttled", "retryable"),
    [
        (client_error("Throttling"), True, True),
        (client_error("RequestLimitExceeded", 503), True, True),
        (client_error("SomethingNew", 429), True, True),
        (client_error("ScalingActivityInProgress"), False, True),
        (client_error("InternalFailure", 500), False, True),
        (client_error("ValidationError"), False, False),
        (client_error("AccessDenied", 403), False, False),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), False, True),
        (ValueError("odd"), False, False),
    ],
    ids=lambda v: getattr(v, "__name__", None) if not isinstance(v, bool) else str(v),
)
def test_errors_map_to_throttled_retryable_or_final(
    error: Exception, throttled: bool, retryable: bool
) -> None:
    mapped = provider_error(error, "doing")
    assert (mapped.throttled, mapped.retryable) == (throttled, retryable)
    assert mapped.message.startswith("doing: ")


def test_lifecycle_states_map_to_instance_states() -> None:
    assert lifecycle_state("Pending:Wait") == "pending"
    assert lifecycle_state("InService") == "running"
    assert lifecycle_state("Terminating:Proceed") == "terminating"
    assert lifecycle_state("Terminated") == "terminated"
    assert lifecycle_state("SomethingNew") == "pending"


@pytest.mark.integration
def test_booted_instances_register_as_hosts_and_leave_when_terminated(
    moto: Moto, asg: str, tmp_path: Path
) -> None:
    master = MasterProcess(tmp_path / "master").start()
    group = aws_group(moto, asg, name="cloud")
    provider = make_provider(group.provider, CONTEXT)
    booter = InstanceBooter(moto, asg, "cloud", master.url, tmp_path / "instances")

    def hosts() -> dict[str, dict[str, Any]]:
        items = master.http.get("/api/v1/hosts").json()["items"]
        return {h["id"]: h for h in items if h["attributes"]["host_group"] == "cloud"}

    try:
        with booter:
            provider.scale_to(group, 2)
            ids = sorted(i.instance_id for i in provider.list(group))
            found = wait_for(
                lambda: (
                    (h := hosts())
                    and sorted(h) == ids
                    and all(x["state"] == "ready" for x in h.values())
                    and h
                ),
                90,  # two `corral agent` processes starting (slow CI: 5x)
                interval=0.2,
                what="the instances to register as hosts",
            )
            for host_id, host in found.items():
                assert host["attributes"]["custom"] == {"instance_id": host_id}
                assert host["attributes"]["zone"] == f"{REGION}a"
                assert host["attributes"]["instance_type"] == "t3.micro"

            provider.terminate(group, [ids[0]])
            wait_for(lambda: booter.running() == [ids[1]], 30, what="the terminated instance's agent to stop")
            wait_for(
                lambda: hosts()[ids[0]]["state"] == "unreachable",
                30,
                what="the terminated host to go unreachable",
            )
            assert hosts()[ids[1]]["state"] == "ready"
            assert booter.errors == []
    except BaseException:
        print("---- master log ----\n" + master.log()[-10000:])
        for instance_id in booter.booted:
            print(f"---- {instance_id} ----\n" + booter.log(instance_id)[-5000:])
        raise
    finally:
        provider.close()
        master.close()
