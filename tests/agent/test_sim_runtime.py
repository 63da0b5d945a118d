"""The sim runtime: commands read as tiny scripts, and the reports a task produces."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable

import pytest

from corral.agent.agent import AgentConfig, backoff_delay
from corral.agent.runtimes.sim import SimProbeRules, SimRuntime, SimScript, parse_script
from corral.domain.health import (
    ExecProbe,
    HealthChecks,
    HealthStatus,
    HttpProbe,
    Probe,
    ProbeResult,
    TcpProbe,
)
from corral.domain.job import Container, Image
from corral.domain.resources import Resources
from corral.domain.states import FinishedReason, TaskState
from corral.domain.wire import LaunchSpec, TaskReport


@pytest.mark.parametrize(
    ("argv", "script"),
    [
        (("sleep", "5"), SimScript(5.0, 0)),
        (("sh", "-c", "sleep 2; exit 3"), SimScript(2.0, 3)),
        (("sh", "-c", "sleep 1 && sleep 0.5 && false"), SimScript(1.5, 1)),
        (("/bin/sh", "-c", "echo hi; true"), SimScript(0.0, 0)),
        (("exit", "7"), SimScript(0.0, 7)),
        ((), SimScript(None)),
        (("/usr/bin/server", "--port", "80"), SimScript(None)),
        (("sh", "-c", "while true; do sleep 1; done"), SimScript(None)),
        (("sleep", "forever"), SimScript(None)),
    ],
)
def test_commands_are_read_as_scripts(argv: tuple[str, ...], script: SimScript) -> None:
    assert parse_script(argv) == script


def spec(task_id: str, *command: str) -> LaunchSpec:
    return LaunchSpec(task_id, "job", 0, Container(Image("busybox"), command=command))


async def run_to_end(runtime: SimRuntime, reports: list[TaskReport], task_id: str) -> None:
    while not any(r.task_id == task_id and r.state is TaskState.FINISHED for r in reports):
        await asyncio.sleep(0.005)


def test_a_task_reports_each_state_and_its_exit_code() -> None:
    async def scenario() -> list[TaskReport]:
        reports: list[TaskReport] = []
        runtime = SimRuntime()
        runtime.bind(reports.append)
        await runtime.launch(spec("t1", "sh", "-c", "sleep 0.01; exit 4"))
        await runtime.launch(spec("t1", "sh", "-c", "sleep 0.01; exit 4"))  # repeated launch: no second run
        await asyncio.wait_for(run_to_end(runtime, reports, "t1"), 5)
        return reports

    reports = asyncio.run(scenario())
    assert [r.state for r in reports] == [TaskState.START_INITIATED, TaskState.STARTED, TaskState.FINISHED]
    assert reports[-1].exit_code == 4


def test_kill_fail_and_unknown_kill() -> None:
    async def scenario() -> list[TaskReport]:
        reports: list[TaskReport] = []
        runtime = SimRuntime()
        runtime.bind(reports.append)
        await runtime.launch(spec("victim", "sleep", "100"))
        await runtime.launch(spec("crasher", "sleep", "100"))
        await asyncio.sleep(0.01)
        await runtime.kill("victim", 1.0)
        assert runtime.fail("crasher", 2, FinishedReason.CRASHED)
        assert not runtime.fail("nobody")
        await runtime.kill("never-launched", 1.0)
        await asyncio.wait_for(run_to_end(runtime, reports, "crasher"), 5)
        await runtime.close()
        return reports

    reports = asyncio.run(scenario())
    finished = {r.task_id: r for r in reports if r.state is TaskState.FINISHED}
    assert finished["victim"].exit_code == 143
    assert TaskState.KILL_INITIATED in [r.state for r in reports if r.task_id == "victim"]
    assert (finished["crasher"].exit_code, finished["crasher"].reason) == (2, FinishedReason.CRASHED)
    assert finished["never-launched"].reason is FinishedReason.KILLED


def test_reconnect_backoff_is_exponential_with_full_jitter() -> None:
    rng = random.Random(3)
    for attempt in range(12):
        cap = min(15.0, 0.2 * 2**attempt)
        delays = [backoff_delay(attempt, 0.2, 15.0, rng) for _ in range(200)]
        assert all(0 <= d <= cap for d in delays)
        assert max(delays) > cap * 0.8  # the whole range is used: agents do not reconnect in step
    assert len({round(backoff_delay(5, 0.2, 15.0, rng), 6) for _ in range(50)}) > 40


def test_stream_url_follows_the_master_scheme() -> None:
    base = AgentConfig("a", "http://m:8080/", Resources(1, 1))
    assert base.stream_url == "ws://m:8080/api/v1/agents/stream"
    assert AgentConfig("a", "https://m", Resources(1, 1)).stream_url == "wss://m/api/v1/agents/stream"


# -- health probes ----------------------------------------------------------------------------------

H, U = HealthStatus.HEALTHY, HealthStatus.UNHEALTHY


def probed(
    task_id: str,
    *,
    liveness: Probe | None = None,
    readiness: Probe | None = None,
    env: dict[str, str] | None = None,
    ports: tuple[int, ...] = (31000,),
) -> LaunchSpec:
    container = Container(
        Image("busybox"), command=("sleep", "1000"), env=env or {}, health=HealthChecks(liveness, readiness)
    )
    return LaunchSpec(task_id, "job", 0, container, ports=ports)


def every(
    seconds: float,
    failures: int = 1,
    http: HttpProbe | None = None,
    tcp: TcpProbe | None = None,
    exec: ExecProbe | None = None,
) -> Probe:
    return Probe(http, tcp, exec, interval_s=seconds, timeout_s=1.0, failures=failures)


async def until(condition: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + 10.0  # generous on a busy machine
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


def probes_of(reports: list[TaskReport], task_id: str) -> list[ProbeResult]:
    return [r.probes for r in reports if r.task_id == task_id and r.probes is not None]


def test_sim_probe_rules_come_from_the_environment() -> None:
    rules = SimProbeRules.from_env({"SIM_READY_AFTER_S": "5", "SIM_LIVENESS_FAIL_AFTER_S": "60"})
    assert not rules.passes("readiness", 4.9).passed and rules.passes("readiness", 5.0).passed
    assert rules.passes("liveness", 59.0).passed and not rules.passes("liveness", 60.0).passed
    assert not SimProbeRules.from_env({"SIM_READINESS": "fail"}).passes("readiness", 1e9).passed
    assert SimProbeRules.from_env({"SIM_READY_AFTER_S": "soon"}) == SimProbeRules()  # ignored
    assert SimProbeRules().passes("liveness", 0).passed and SimProbeRules().passes("readiness", 0).passed


def test_readiness_passes_after_sim_ready_after_s_and_reports_carry_probes() -> None:
    async def scenario() -> tuple[list[TaskReport], float]:
        reports: list[TaskReport] = []
        runtime = SimRuntime(speed=10.0)  # 3 s of sim time is 0.3 s
        runtime.bind(reports.append)
        await runtime.launch(
            probed("web", readiness=every(0.5, http=HttpProbe()), env={"SIM_READY_AFTER_S": "3"})
        )
        await until(lambda: any(r.state is TaskState.STARTED for r in reports), "started")
        began = time.monotonic()
        await until(lambda: (p := probes_of(reports, "web")) and p[-1].ready is H, "ready")
        ready_after = time.monotonic() - began
        await runtime.close()
        return reports, ready_after

    reports, ready_after = asyncio.run(scenario())
    assert ready_after >= 0.25  # not before SIM_READY_AFTER_S (less one interval of slack)
    changes = [r for r in reports if r.probes is not None]
    assert all(r.state is TaskState.STARTED for r in changes)
    assert [p.ready for p in probes_of(reports, "web")] == [U, H]  # each change once, no repeats
    assert all(p.live is None for p in probes_of(reports, "web"))
    assert "not ready until 3s after the start" in changes[0].probes.detail  # type: ignore[union-attr]


def test_exec_probes_run_their_command_as_a_sim_script() -> None:
    async def scenario() -> list[TaskReport]:
        reports: list[TaskReport] = []
        runtime = SimRuntime()
        runtime.bind(reports.append)
        await runtime.launch(
            probed(
                "t",
                liveness=every(0.02, failures=3, exec=ExecProbe(("false",))),
                readiness=every(0.02, exec=ExecProbe(("true",))),
            )
        )
        await runtime.launch(probed("slow", liveness=every(0.02, exec=ExecProbe(("sleep", "5")))))
        await until(lambda: (p := probes_of(reports, "t")) and p[-1].live is U, "t unhealthy")
        await until(lambda: (p := probes_of(reports, "slow")) and p[-1].live is U, "slow unhealthy")
        await runtime.close()
        return reports

    reports = asyncio.run(scenario())
    last = probes_of(reports, "t")[-1]
    assert (last.live, last.ready) == (U, H)
    assert last.detail == "liveness: sim: exec false exited 1 (3 failures in a row)"
    assert probes_of(reports, "slow")[-1].detail == "liveness: exec sleep 5 timed out after 1s"


def test_set_probe_overrides_and_env_liveness_failure() -> None:
    async def scenario() -> list[TaskReport]:
        reports: list[TaskReport] = []
        runtime = SimRuntime(speed=10.0)
        runtime.bind(reports.append)
        await runtime.launch(probed("a", liveness=every(0.2, tcp=TcpProbe())))
        await runtime.launch(
            probed("b", liveness=every(0.2, http=HttpProbe()), env={"SIM_LIVENESS_FAIL_AFTER_S": "1"})
        )
        await until(lambda: (p := probes_of(reports, "a")) and p[-1].live is H, "a healthy")
        runtime.set_probe("a", "liveness", False)
        await until(lambda: probes_of(reports, "a")[-1].live is U, "a unhealthy by override")
        runtime.set_probe("a", "liveness", None)
        await until(lambda: probes_of(reports, "a")[-1].live is H, "a healthy again")
        await until(lambda: (p := probes_of(reports, "b")) and p[-1].live is U, "b failing after 1s")
        await runtime.close()
        return reports

    reports = asyncio.run(scenario())
    a = probes_of(reports, "a")
    assert [p.live for p in a] == [H, U, H]
    assert a[1].detail == "liveness: sim: liveness set to fail"
    assert [p.live for p in probes_of(reports, "b")] == [H, U]


def test_a_killed_task_reports_no_probes_after_the_kill() -> None:
    async def scenario() -> list[TaskReport]:
        reports: list[TaskReport] = []
        runtime = SimRuntime()
        runtime.bind(reports.append)
        await runtime.launch(probed("t", readiness=every(0.01, http=HttpProbe(port_index=0))))
        await until(lambda: probes_of(reports, "t"), "a probe report")
        runtime.set_probe("t", "readiness", False)  # changes all the time from now on
        await runtime.kill("t", 1.0)
        await runtime.launch(probed("bad-port", readiness=every(0.01, http=HttpProbe(port_index=3))))
        await until(lambda: probes_of(reports, "bad-port"), "the bad port reported")
        await asyncio.sleep(0.05)  # probes would have run several times
        await runtime.close()
        return reports

    reports = asyncio.run(scenario())
    states = [r.state for r in reports if r.task_id == "t"]
    assert states[states.index(TaskState.KILL_INITIATED) :] == [TaskState.KILL_INITIATED, TaskState.FINISHED]
    [bad] = probes_of(reports, "bad-port")
    assert bad.ready is U and "names port 3 but the task has 1 port" in bad.detail
