"""How a launch becomes a container, and how a container's end becomes a task's end (pure parts)."""

from __future__ import annotations

from corral.agent.runtimes.docker.config import DockerConfig
from corral.agent.runtimes.docker.outcome import outcome
from corral.agent.runtimes.docker.spec import create_kwargs, identity_env
from corral.domain.job import Container, ContainerResources, Image
from corral.domain.states import FinishedReason
from corral.domain.wire import LaunchSpec


def spec(**container: object) -> LaunchSpec:
    c = Container(
        Image("registry.local/app", tag="1.2"),
        env={"MODE": "fast"},
        resources=ContainerResources(cpu=1.5, memory_mb=256, ports=2, shm_mb=32),
        **container,  # type: ignore[arg-type]
    )
    return LaunchSpec("t1", "j1", 3, c, ports=(31000, 31001), interface=2, address=5, attempt=1)


def test_resources_labels_ports_and_identity() -> None:
    kwargs = create_kwargs(spec(), DockerConfig("host-a", pids_limit=512))
    assert kwargs["image"] == "registry.local/app:1.2"
    assert (kwargs["cpu_period"], kwargs["cpu_quota"]) == (100_000, 150_000)  # 1.5 cpu as a quota
    assert (kwargs["mem_limit"], kwargs["memswap_limit"]) == ("256m", "256m")  # no swap
    assert (kwargs["pids_limit"], kwargs["shm_size"]) == (512, "32m")
    assert kwargs["ports"] == {"31000/tcp": 31000, "31001/tcp": 31001}
    assert kwargs["labels"]["corral.task_id"] == "t1" and kwargs["labels"]["corral.host"] == "host-a"
    assert kwargs["name"] == "corral-t1"
    env = kwargs["environment"]
    assert env["MODE"] == "fast"
    assert (env["CORRAL_TASK_ID"], env["CORRAL_JOB_ID"], env["CORRAL_TASK_INDEX"]) == ("t1", "j1", "3")
    assert (env["CORRAL_HOST"], env["CORRAL_PORTS"], env["CORRAL_PORT_1"]) == (
        "host-a",
        "31000,31001",
        "31001",
    )
    assert env["CORRAL_NETWORK_INTERFACE"] == "2" and env["CORRAL_TASK_ATTEMPT"] == "1"


def test_entrypoint_and_command_follow_docker_semantics() -> None:
    plain = create_kwargs(spec(), DockerConfig("h"))
    assert plain["entrypoint"] is None and plain["command"] is None  # the image's own
    both = create_kwargs(spec(entrypoint=("/bin/sh", "-c"), command=("echo hi",)), DockerConfig("h"))
    assert both["entrypoint"] == ["/bin/sh", "-c"] and both["command"] == ["echo hi"]


def test_a_service_task_has_no_index() -> None:
    service = LaunchSpec("t9", "j", None, Container(Image("x")))
    assert identity_env(service, "h")["CORRAL_TASK_INDEX"] == ""


def test_exit_codes_oom_and_docker_errors() -> None:
    assert outcome({"ExitCode": 0}, 64) == (None, "exited 0", 0)
    assert outcome({"ExitCode": 3}, 64) == (None, "exited 3", 3)
    reason, detail, code = outcome({"ExitCode": 137, "OOMKilled": True}, 64)
    assert (reason, code) == (FinishedReason.FAILED, 137) and "OOM" in detail and "64 MB" in detail
    reason, detail, _ = outcome({"ExitCode": 128, "Error": "oci runtime error"}, None)
    assert reason is FinishedReason.LOCAL_SYSTEM_ERROR and "oci runtime error" in detail


def test_every_container_is_isolated() -> None:
    kwargs = create_kwargs(spec(), DockerConfig("h"))
    assert kwargs["privileged"] is False
    assert kwargs["network_mode"] == "bridge"
    assert kwargs["ipc_mode"] == "private"
    assert not kwargs.get("pid_mode") and not kwargs.get("userns_mode")  # private PID namespace, remapped
    assert kwargs["cap_drop"] == ["ALL"] and kwargs["cap_add"] == ["NET_BIND_SERVICE"]
    assert kwargs["security_opt"] == ["no-new-privileges:true"]  # and no seccomp=unconfined
    assert kwargs["init"] is True
    assert kwargs["pids_limit"] == 4096 and kwargs["mem_limit"] == "256m"
    assert "read_only" not in kwargs and "tmpfs" not in kwargs
    assert not {"devices", "volumes", "sysctls"} & kwargs.keys()  # nothing of the host's is handed in


def test_no_option_reopens_the_host() -> None:
    kwargs = create_kwargs(spec(read_only_root=True), DockerConfig("h"))
    for key in ("network_mode", "pid_mode", "ipc_mode", "uts_mode", "userns_mode", "cgroupns"):
        assert kwargs.get(key) != "host"
    assert not any("unconfined" in option for option in kwargs["security_opt"])


def test_a_read_only_root_keeps_a_small_writable_tmp() -> None:
    kwargs = create_kwargs(spec(read_only_root=True), DockerConfig("h"))
    assert kwargs["read_only"] is True
    assert kwargs["tmpfs"] == {"/tmp": "rw,nosuid,nodev,size=64m,mode=1777"}
    tiny = Container(Image("x"), resources=ContainerResources(memory_mb=16), read_only_root=True)
    small = create_kwargs(LaunchSpec("t", "j", 0, tiny), DockerConfig("h"))
    assert small["tmpfs"]["/tmp"].count("size=16m") == 1  # never more than the task's memory


def test_pids_limit_is_always_set() -> None:
    for bad in (0, -1):
        try:
            DockerConfig("h", pids_limit=bad)
        except ValueError:
            continue
        raise AssertionError(f"pids_limit={bad} (no limit) was accepted")
