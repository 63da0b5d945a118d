"""Task health probes on the agent: the counting rule, and the runner against real local listeners."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

import pytest

from corral.agent.probes import Attempt, HttpProber, ProbeRunner, Tally, host_check, tally
from corral.agent.runtimes.docker.spec import probe_labels, read_probe_labels
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
from corral.domain.wire import LaunchSpec

H, U, X = HealthStatus.HEALTHY, HealthStatus.UNHEALTHY, HealthStatus.UNKNOWN
DEADLINE_S = 10.0  # conditions are waited for this long: generous on a busy machine


# -- the counting rule ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempts", "failures", "statuses"),
    [
        ("p", 3, [H]),
        ("fff", 3, [X, X, U]),  # unknown until the third failure in a row
        ("pff", 3, [H, H, H]),  # healthy stays healthy through fewer failures than the threshold
        ("pfffp", 3, [H, H, H, U, H]),  # one success after that makes it healthy again
        ("pffpff", 3, [H, H, H, H, H, H]),  # a success resets the count
        ("f", 1, [U]),
        ("f", 0, [U]),  # a threshold below one counts as one
    ],
)
def test_one_success_heals_and_failures_in_a_row_break(
    attempts: str, failures: int, statuses: list[HealthStatus]
) -> None:
    t = Tally()
    seen = []
    for a in attempts:
        t = tally(t, a == "p", failures)
        seen.append(t.status)
    assert seen == statuses


def test_the_failure_count_is_kept() -> None:
    assert tally(Tally(H, 0), False, 3) == Tally(H, 1)
    assert tally(Tally(U, 5), False, 3) == Tally(U, 6)
    assert tally(Tally(U, 5), True, 3) == Tally(H, 0)


# -- local servers ----------------------------------------------------------------------------------


class HttpServer:
    """A tiny HTTP/1.1 server on 127.0.0.1 answering every request with ``status`` (or never, ``hang``)."""

    def __init__(self) -> None:
        self.status = 200
        self.hang = False
        self.requests = 0
        self.server: asyncio.Server | None = None
        self.released = asyncio.Event()  # hanging requests end when the server does

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass
            self.requests += 1
            if self.hang:
                await self.released.wait()
                return
            writer.write(
                f"HTTP/1.1 {self.status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
            )
            await writer.drain()
        finally:
            writer.close()

    async def __aenter__(self) -> HttpServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        assert self.server is not None
        self.released.set()
        self.server.close()
        await self.server.wait_closed()


@contextlib.asynccontextmanager
async def tcp_listener() -> AsyncIterator[asyncio.Server]:
    async def accept(_r: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    try:
        yield server
    finally:
        server.close()
        await server.wait_closed()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def until(condition: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def no_exec(_command: tuple[str, ...]) -> int:
    raise AssertionError("no exec probe here")


def fast(http: HttpProbe | None = None, tcp: TcpProbe | None = None, exec: ExecProbe | None = None) -> Probe:
    return Probe(http, tcp, exec, interval_s=0.02, timeout_s=1.0, failures=2)


class Recorder:
    def __init__(self) -> None:
        self.results: list[ProbeResult] = []

    def __call__(self, result: ProbeResult) -> None:
        self.results.append(result)

    @property
    def last(self) -> ProbeResult | None:
        return self.results[-1] if self.results else None


# -- the runner -------------------------------------------------------------------------------------


def test_http_readiness_becomes_healthy_unhealthy_and_healthy_again() -> None:
    async def scenario() -> list[ProbeResult]:
        seen = Recorder()
        http = HttpProber()
        async with HttpServer() as server:
            checks = HealthChecks(readiness=fast(http=HttpProbe(port_index=1, path="/ready")))
            runner = ProbeRunner(checks, (1, server.port), host_check(http, no_exec), seen)
            assert runner.result == ProbeResult(live=None, ready=X)
            runner.start()
            await until(lambda: seen.last and seen.last.ready is H, "healthy")
            server.status = 503
            await until(lambda: seen.last and seen.last.ready is U, "unhealthy")
            server.status = 200
            await until(
                lambda: seen.last and seen.last.ready is H and len(seen.results) == 3, "healthy again"
            )
            await runner.wait_stopped()
        await http.aclose()
        return seen.results

    results = asyncio.run(scenario())
    assert [r.ready for r in results] == [H, U, H]
    assert all(r.live is None for r in results)  # the job has no liveness probe
    assert results[0].detail.startswith("readiness: http GET /ready on 127.0.0.1:") and "answered 200" in (
        results[0].detail
    )
    assert "answered 503 (expects 200) (2 failures in a row)" in results[1].detail


def test_nothing_is_reported_while_nothing_changes() -> None:
    async def scenario() -> tuple[int, list[ProbeResult]]:
        seen = Recorder()
        http = HttpProber()
        async with HttpServer() as server:
            checks = HealthChecks(liveness=fast(http=HttpProbe()))
            runner = ProbeRunner(checks, (server.port,), host_check(http, no_exec), seen)
            runner.start()
            await until(lambda: server.requests >= 10, "ten probes")
            await runner.wait_stopped()
            requests = server.requests
        await http.aclose()
        return requests, seen.results

    requests, results = asyncio.run(scenario())
    assert requests >= 10
    assert results == [ProbeResult(live=H, ready=None, detail=results[0].detail)]


def test_tcp_liveness_fails_when_the_listener_goes() -> None:
    async def scenario() -> list[ProbeResult]:
        seen = Recorder()
        async with tcp_listener() as server:
            port = int(server.sockets[0].getsockname()[1])
            checks = HealthChecks(liveness=fast(tcp=TcpProbe()))
            runner = ProbeRunner(checks, (port,), host_check(HttpProber(), no_exec), seen)
            runner.start()
            await until(lambda: seen.last and seen.last.live is H, "healthy")
        await until(lambda: seen.last and seen.last.live is U, "unhealthy once the listener closed")
        await runner.wait_stopped()
        return seen.results

    results = asyncio.run(scenario())
    assert [r.live for r in results] == [H, U]
    assert results[0].detail.endswith("succeeded")
    assert results[1].detail.startswith("liveness: tcp connect to 127.0.0.1:")
    assert results[1].detail.endswith("refused (2 failures in a row)")


def test_exec_probes_pass_on_exit_zero_and_both_probes_are_reported_together() -> None:
    codes = {"ok": 0}

    async def run_exec(command: tuple[str, ...]) -> int:
        return codes["ok"] if command == ("check",) else 0

    async def scenario() -> list[ProbeResult]:
        seen = Recorder()
        checks = HealthChecks(
            liveness=fast(exec=ExecProbe(("check",))), readiness=fast(exec=ExecProbe(("true",)))
        )
        runner = ProbeRunner(checks, (), host_check(HttpProber(), run_exec), seen)
        runner.start()
        await until(lambda: seen.last and seen.last.status() is H, "both healthy")
        codes["ok"] = 1
        await until(lambda: seen.last and seen.last.live is U, "liveness unhealthy")
        await runner.wait_stopped()
        return seen.results

    results = asyncio.run(scenario())
    assert results[-1].ready is H  # the other probe's status is kept
    assert results[-1].detail == "liveness: exec check exited 1 (2 failures in a row)"


def test_an_attempt_past_its_timeout_fails() -> None:
    async def hangs(_command: tuple[str, ...]) -> int:
        await asyncio.sleep(3600)
        return 0

    async def scenario() -> tuple[list[ProbeResult], list[ProbeResult]]:
        http_seen, exec_seen = Recorder(), Recorder()
        http = HttpProber()
        async with HttpServer() as server:
            server.hang = True
            probe = Probe(http=HttpProbe(), interval_s=0.05, timeout_s=0.1, failures=1)
            runner = ProbeRunner(
                HealthChecks(readiness=probe), (server.port,), host_check(http, hangs), http_seen
            )
            probe = Probe(exec=ExecProbe(("sleep", "1h")), interval_s=0.05, timeout_s=0.1, failures=1)
            execs = ProbeRunner(HealthChecks(liveness=probe), (), host_check(http, hangs), exec_seen)
            runner.start()
            execs.start()
            await until(lambda: http_seen.last and exec_seen.last, "both to fail")
            await runner.wait_stopped()
            await execs.wait_stopped()
        await http.aclose()
        return http_seen.results, exec_seen.results

    http_results, exec_results = asyncio.run(scenario())
    assert http_results[0].ready is U and exec_results[0].live is U
    assert "timed out after 0.1s" in http_results[0].detail
    assert exec_results[0].detail == "liveness: exec sleep 1h timed out after 0.1s"


def test_a_probe_that_cannot_run_fails_and_probing_goes_on() -> None:
    calls = {"n": 0}

    async def broken(_command: tuple[str, ...]) -> int:
        calls["n"] += 1
        if calls["n"] <= 2:
            raise RuntimeError("docker said no")
        return 0

    async def scenario() -> list[ProbeResult]:
        seen = Recorder()
        runner = ProbeRunner(
            HealthChecks(liveness=fast(exec=ExecProbe(("x",)))), (), host_check(HttpProber(), broken), seen
        )
        runner.start()
        await until(lambda: len(seen.results) == 2, "unhealthy, then healthy")
        await runner.wait_stopped()
        return seen.results

    results = asyncio.run(scenario())
    assert [r.live for r in results] == [U, H]
    assert results[0].detail == "liveness: exec x could not run: docker said no (2 failures in a row)"


def test_the_first_attempt_waits_for_the_initial_delay() -> None:
    async def scenario() -> float:
        seen = Recorder()
        async with tcp_listener() as server:
            port = int(server.sockets[0].getsockname()[1])
            probe = Probe(tcp=TcpProbe(), interval_s=0.02, initial_delay_s=0.3)
            runner = ProbeRunner(
                HealthChecks(liveness=probe), (port,), host_check(HttpProber(), no_exec), seen
            )
            began = time.monotonic()
            runner.start()
            await until(lambda: seen.results, "the first result")
            elapsed = time.monotonic() - began
            await runner.wait_stopped()
        return elapsed

    assert asyncio.run(scenario()) >= 0.3


def test_a_port_the_task_does_not_have_is_unhealthy_at_once() -> None:
    async def scenario() -> list[ProbeResult]:
        seen = Recorder()
        checks = HealthChecks(
            liveness=Probe(tcp=TcpProbe(port_index=0)), readiness=Probe(http=HttpProbe(port_index=2))
        )
        runner = ProbeRunner(checks, (free_port(), free_port()), host_check(HttpProber(), no_exec), seen)
        runner.start()
        results = list(seen.results)  # reported from start(), before any attempt
        await runner.wait_stopped()
        return results

    [result] = asyncio.run(scenario())
    assert (result.live, result.ready) == (X, U)  # liveness is only waiting for its first attempt
    assert result.detail == "readiness: http probe names port 2 but the task has 2 ports"


def test_nothing_is_reported_after_stop() -> None:
    async def scenario() -> list[ProbeResult]:
        seen = Recorder()

        async def slow_then_fail(_command: tuple[str, ...]) -> int:
            await asyncio.sleep(0.05)
            return 1

        checks = HealthChecks(liveness=Probe(exec=ExecProbe(("x",)), interval_s=0.01, failures=1))
        runner = ProbeRunner(checks, (), host_check(HttpProber(), slow_then_fail), seen)
        runner.start()
        await asyncio.sleep(0.01)  # an attempt is in flight
        runner.stop()
        await asyncio.sleep(0.1)  # it would have ended (and failed) by now
        return seen.results

    assert asyncio.run(scenario()) == []


def test_a_sim_speed_scales_the_probes_time() -> None:
    async def passes(_kind: object, _probe: Probe, _port: int | None) -> Attempt:
        return Attempt(True, "fine")

    async def scenario() -> float:
        seen = Recorder()
        probe = Probe(exec=ExecProbe(("x",)), initial_delay_s=100.0)
        runner = ProbeRunner(HealthChecks(readiness=probe), (), passes, seen, speed=1000.0)
        began = time.monotonic()
        runner.start()
        await until(lambda: seen.results, "the first result")
        await runner.wait_stopped()
        return time.monotonic() - began

    assert asyncio.run(scenario()) < DEADLINE_S  # 100 s of probe time is 0.1 s at speed 1000


# -- container labels (so a restarted agent probes the containers it re-adopts) ---------------------


def test_probes_and_ports_survive_in_container_labels() -> None:
    checks = HealthChecks(
        liveness=Probe(exec=ExecProbe(("test", "-f", "/tmp/ok")), failures=5),
        readiness=Probe(http=HttpProbe(port_index=1, path="/ready"), interval_s=2.5),
    )
    spec = LaunchSpec("t1", "j1", 0, Container(Image("busybox"), health=checks), ports=(31000, 31001))
    labels = probe_labels(spec)
    assert read_probe_labels(labels) == (checks, (31000, 31001))
    assert sum(len(v) for v in labels.values()) < 1000  # labels stay small
    assert probe_labels(LaunchSpec("t2", "j1", 0, Container(Image("busybox")))) == {}
    assert read_probe_labels({}) == (None, ())
    assert read_probe_labels({"corral.health": "{not json", "corral.ports": "1"}) == (None, ())
