"""The sim runtime: commands read as tiny scripts, and the reports a task produces."""

from __future__ import annotations

import asyncio
import random

import pytest

from corral.agent.agent import AgentConfig, backoff_delay
from corral.agent.runtimes.sim import SimRuntime, SimScript, parse_script
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
