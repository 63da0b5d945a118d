"""Task health probes on the agent: run a task's liveness and readiness probes and say when they change.

``tally`` is the counting rule, purely computational: one success makes a probe healthy, ``failures``
failures in a row make it unhealthy. ``ProbeRunner`` is the shell around it: one asyncio task per probe,
each attempt bounded by the probe's ``timeout_s``, and a callback whenever the task's ``ProbeResult``
changes status. How one attempt is made is given to it (``Check``): ``host_check`` probes real ports and
runs exec probes through the runtime; the sim runtime brings its own. The agent never acts on what it
finds: the master decides whether an unhealthy task is replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Literal

import httpx

from corral.domain.health import HealthChecks, HealthStatus, HttpProbe, Probe, ProbeResult

log = logging.getLogger(__name__)

ProbeKind = Literal["liveness", "readiness"]
MIN_INTERVAL_S = 0.01  # a probe never spins, whatever its interval says


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one run of a probe found: passed or not, and in words."""

    passed: bool
    detail: str


# One attempt of ``probe`` (kind, probe, the host port it names or None); the runner bounds it in time.
Check = Callable[[ProbeKind, Probe, int | None], Awaitable[Attempt]]
# Runs an exec probe's command in the task: its exit code (raises if it cannot be run; cancelled at the
# probe's timeout).
RunExec = Callable[[tuple[str, ...]], Awaitable[int]]
OnChange = Callable[[ProbeResult], None]


@dataclass(frozen=True, slots=True)
class Tally:
    """One probe's status and its failures in a row."""

    status: HealthStatus = HealthStatus.UNKNOWN
    failing: int = 0


def tally(before: Tally, passed: bool, failures: int) -> Tally:
    """The probe's tally after one more attempt (purely computational).

    A success makes it healthy at once; a failure counts, and the ``failures``-th in a row makes it
    unhealthy (until then it keeps the status it had)."""
    if passed:
        return Tally(HealthStatus.HEALTHY, 0)
    failing = before.failing + 1
    status = HealthStatus.UNHEALTHY if failing >= max(1, failures) else before.status
    return Tally(status, failing)


class ProbeRunner:
    """Runs one task's probes until stopped; ``on_change`` hears every change of the ``ProbeResult``'s
    statuses (with ``detail`` the check that made it). ``speed`` > 1 runs the probes' time faster (sim)."""

    def __init__(
        self,
        checks: HealthChecks,
        ports: tuple[int, ...],
        check: Check,
        on_change: OnChange,
        speed: float = 1.0,
    ) -> None:
        self.checks = checks
        self.ports = ports
        self._check = check
        self._on_change = on_change
        self._speed = speed
        self._tallies: dict[ProbeKind, Tally] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._stopped = False
        self.result = ProbeResult(
            live=HealthStatus.UNKNOWN if checks.liveness is not None else None,
            ready=HealthStatus.UNKNOWN if checks.readiness is not None else None,
        )

    def start(self) -> None:
        """Begin probing (on the running loop). A probe whose port the task does not have fails at once."""
        loop = asyncio.get_running_loop()
        probes: list[tuple[ProbeKind, Probe | None]] = [
            ("liveness", self.checks.liveness),
            ("readiness", self.checks.readiness),
        ]
        for kind, probe in probes:
            if probe is None:
                continue
            index = probe.port_index
            if index is not None and not 0 <= index < len(self.ports):
                have = f"{len(self.ports)} port{'' if len(self.ports) == 1 else 's'}"
                why = f"{probe.kind} probe names port {index} but the task has {have}"
                self._record(kind, probe, Attempt(False, why), at_once=True)
                continue
            port = self.ports[index] if index is not None else None
            self._tasks.append(loop.create_task(self._run(kind, probe, port), name=f"probe-{kind}"))

    def stop(self) -> None:
        """Stop probing now: nothing is reported after this returns."""
        self._stopped = True
        for task in self._tasks:
            task.cancel()

    async def wait_stopped(self) -> None:
        self.stop()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def _run(self, kind: ProbeKind, probe: Probe, port: int | None) -> None:
        loop = asyncio.get_running_loop()
        interval = max(MIN_INTERVAL_S, probe.interval_s / self._speed)
        await asyncio.sleep(max(0.0, probe.initial_delay_s) / self._speed)
        while not self._stopped:
            began = loop.time()
            attempt = await self._attempt(kind, probe, port)
            self._record(kind, probe, attempt)
            await asyncio.sleep(max(0.0, interval - (loop.time() - began)))

    async def _attempt(self, kind: ProbeKind, probe: Probe, port: int | None) -> Attempt:
        try:
            async with asyncio.timeout(probe.timeout_s / self._speed):
                return await self._check(kind, probe, port)
        except TimeoutError:
            return Attempt(False, f"{_what(probe, port)} timed out after {probe.timeout_s:g}s")
        except Exception as e:  # a check that broke is a failed check, not a dead prober
            log.debug("%s probe %s failed to run", kind, probe.describe(), exc_info=True)
            return Attempt(False, f"{_what(probe, port)} could not run: {e}")

    def _record(self, kind: ProbeKind, probe: Probe, attempt: Attempt, at_once: bool = False) -> None:
        if self._stopped:
            return
        before = self._tallies.get(kind, Tally())
        after = tally(before, attempt.passed, 1 if at_once else probe.failures)
        self._tallies[kind] = after
        if after.status is before.status:
            return
        streak = f" ({after.failing} failures in a row)" if after.failing > 1 else ""
        detail = f"{kind}: {attempt.detail}{streak}"
        if kind == "liveness":
            self.result = replace(self.result, live=after.status, detail=detail)
        else:
            self.result = replace(self.result, ready=after.status, detail=detail)
        try:
            self._on_change(self.result)
        except Exception:  # the listener's failure must not end the probing
            log.exception("reporting a %s probe change failed", kind)


def _what(probe: Probe, port: int | None) -> str:
    """The probe as it was run: ``http GET /health on 127.0.0.1:31002``, ``exec test -f /tmp/ok``."""
    if probe.http is not None:
        return f"http GET {probe.http.path} on 127.0.0.1:{port}"
    if probe.tcp is not None:
        return f"tcp connect to 127.0.0.1:{port}"
    return probe.describe()


class HttpProber:
    """Runs http probes for every task of a runtime, over one client (``aclose`` it with the runtime)."""

    def __init__(self) -> None:
        self._client: httpx.AsyncClient | None = None

    async def __call__(self, probe: HttpProbe, port: int, timeout_s: float) -> Attempt:
        if self._client is None:
            # No proxy from the environment, no pooled connections: each probe is a fresh request.
            self._client = httpx.AsyncClient(
                trust_env=False, limits=httpx.Limits(max_connections=None, max_keepalive_connections=0)
            )
        what = f"http GET {probe.path} on 127.0.0.1:{port}"
        try:
            response = await self._client.get(
                f"http://127.0.0.1:{port}{probe.path}", timeout=timeout_s, headers={"Connection": "close"}
            )
        except httpx.HTTPError as e:
            return Attempt(False, f"{what} failed: {_reason(e)}")
        passed = response.status_code == probe.expect_status
        expected = "" if passed else f" (expects {probe.expect_status})"
        return Attempt(passed, f"{what} answered {response.status_code}{expected}")

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def host_check(http: HttpProber, run_exec: RunExec) -> Check:
    """How a real task is probed: http and tcp against its host ports on 127.0.0.1 (each mapped to the
    same port in the container), exec through ``run_exec`` (passing iff it exits 0)."""

    async def check(kind: ProbeKind, probe: Probe, port: int | None) -> Attempt:
        if probe.http is not None and port is not None:
            return await http(probe.http, port, probe.timeout_s)
        if probe.tcp is not None and port is not None:
            return await tcp(port)
        code = await run_exec(probe.exec.command if probe.exec is not None else ())
        return Attempt(code == 0, f"{probe.describe()} exited {code}")

    return check


async def tcp(port: int) -> Attempt:
    what = f"tcp connect to 127.0.0.1:{port}"
    try:
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except ConnectionRefusedError:
        return Attempt(False, f"{what} refused")
    except OSError as e:
        return Attempt(False, f"{what} failed: {e.strerror or e}")
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return Attempt(True, f"{what} succeeded")


def _reason(error: Exception) -> str:
    text = str(error) or type(error).__name__
    return "connection refused" if "refused" in text.lower() else text
