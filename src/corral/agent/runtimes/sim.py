"""The ``sim`` runtime: tasks "run" without processes, for tests and benchmarks at scale.

A task's command is read as a tiny shell script, so the same job runs on ``sim`` and on real Docker:
``sleep N`` waits N seconds, ``exit N`` ends with code N, ``true``/``false``/``echo`` do what they say;
statements are separated by ``;`` or ``&&``, optionally wrapped in ``sh -c "..."``. A task whose
program is none of these (or is empty) runs until it is killed, like a server. Tests can also fail or
crash any task on demand.

Health probes run as on a real host (``agent.probes``), with simulated checks: an exec probe runs its
command as such a script (passing if it exits 0 within the timeout); http and tcp probes pass unless the
task's environment says otherwise: ``SIM_READY_AFTER_S=N`` (readiness fails until N seconds after the
start), ``SIM_READINESS=fail`` (readiness always fails), ``SIM_LIVENESS_FAIL_AFTER_S=N`` (liveness fails
from N seconds after the start). ``set_probe`` overrides any probe of a task. ``speed`` applies to all
of it, as to the scripts' sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import shlex
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from corral.agent.probes import Attempt, Check, ProbeKind, ProbeRunner
from corral.agent.runtimes.base import LogsUnavailable, Reporter, Usage
from corral.domain.health import Probe, ProbeResult
from corral.domain.states import FinishedReason, TaskState
from corral.domain.wire import Health, LaunchSpec, TaskReport

log = logging.getLogger(__name__)

LOGS_KEPT = 10_000  # simulated logs of this many recent tasks are kept
SIGKILL_EXIT = 137
SIGTERM_EXIT = 143


@dataclass(frozen=True, slots=True)
class SimScript:
    """What a simulated task does: wait ``seconds`` (None: forever) then exit with ``exit_code``."""

    seconds: float | None
    exit_code: int = 0


def parse_script(argv: tuple[str, ...]) -> SimScript:
    if len(argv) >= 3 and argv[0] in ("sh", "/bin/sh", "bash", "/bin/bash") and argv[1] == "-c":
        text = argv[2]
    elif argv:
        text = shlex.join(argv)
    else:
        return SimScript(None)
    total = 0.0
    understood = False
    for statement in re.split(r";|&&|\n", text):
        words = statement.split()
        if not words:
            continue
        program, args = words[0].rsplit("/", 1)[-1], words[1:]
        if program == "sleep" and args:
            try:
                total += float(args[0])
            except ValueError:
                return SimScript(None)
            understood = True
        elif program == "exit":
            return SimScript(total, int(args[0]) if args and args[0].lstrip("-").isdigit() else 0)
        elif program in ("true", "echo", ":"):
            understood = True
        elif program == "false":
            return SimScript(total, 1)
        else:
            return SimScript(None)
    return SimScript(total if understood else None, 0)


@dataclass(frozen=True, slots=True)
class SimProbeRules:
    """How a task's simulated http and tcp probes behave, from its environment (seconds of sim time)."""

    ready_after_s: float | None = None  # SIM_READY_AFTER_S
    readiness_fails: bool = False  # SIM_READINESS=fail
    liveness_fails_after_s: float | None = None  # SIM_LIVENESS_FAIL_AFTER_S

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SimProbeRules:
        return cls(
            ready_after_s=_seconds(env, "SIM_READY_AFTER_S"),
            readiness_fails=env.get("SIM_READINESS", "").strip().lower() == "fail",
            liveness_fails_after_s=_seconds(env, "SIM_LIVENESS_FAIL_AFTER_S"),
        )

    def passes(self, kind: ProbeKind, elapsed_s: float) -> Attempt:
        """Whether a network probe of ``kind`` passes ``elapsed_s`` after the start, and why."""
        if kind == "readiness":
            if self.readiness_fails:
                return Attempt(False, "sim: readiness fails (SIM_READINESS=fail)")
            if self.ready_after_s is not None and elapsed_s < self.ready_after_s:
                return Attempt(False, f"sim: not ready until {self.ready_after_s:g}s after the start")
        elif self.liveness_fails_after_s is not None and elapsed_s >= self.liveness_fails_after_s:
            return Attempt(False, f"sim: failing since {self.liveness_fails_after_s:g}s after the start")
        return Attempt(True, "sim: passes")


def _seconds(env: Mapping[str, str], name: str) -> float | None:
    text = env.get(name)
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        log.warning("sim: %s=%r is not a number of seconds; ignored", name, text)
        return None


class SimRuntime:
    name = "sim"

    def __init__(self, start_delay_s: float = 0.0, speed: float = 1.0) -> None:
        self.start_delay_s = start_delay_s
        self.speed = speed  # >1 runs simulated time faster
        self._report: Reporter = lambda _r: None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._outcomes: dict[str, tuple[int, FinishedReason | None, str]] = {}
        self._log: dict[str, list[str]] = {}
        self._probe_overrides: dict[tuple[str, ProbeKind], bool] = {}
        self._probers: dict[str, ProbeRunner] = {}

    def bind(self, report: Reporter) -> None:
        self._report = report

    @property
    def running(self) -> list[str]:
        return list(self._tasks)

    async def launch(self, spec: LaunchSpec) -> None:
        if spec.task_id in self._tasks:
            return  # a repeated launch is a no-op
        script = parse_script(spec.container.entrypoint + spec.container.command)
        argv = " ".join(spec.container.entrypoint + spec.container.command)
        self._log[spec.task_id] = [f"sim: {argv or '(image default)'}\n"]
        while len(self._log) > LOGS_KEPT:
            del self._log[next(iter(self._log))]
        self._tasks[spec.task_id] = asyncio.get_running_loop().create_task(self._run(spec, script))

    async def _run(self, spec: LaunchSpec, script: SimScript) -> None:
        task_id = spec.task_id
        exit_code, reason, detail = 0, None, ""
        try:
            self._report(TaskReport(task_id, TaskState.START_INITIATED))
            if self.start_delay_s:
                await asyncio.sleep(self.start_delay_s / self.speed)
            self._report(TaskReport(task_id, TaskState.STARTED))
            self._probe(spec)
            if script.seconds is None:
                await asyncio.Event().wait()
            else:
                await asyncio.sleep(script.seconds / self.speed)
            exit_code = script.exit_code
        except asyncio.CancelledError:
            exit_code, reason, detail = self._outcomes.pop(task_id, (SIGKILL_EXIT, None, "killed"))
        finally:
            self._tasks.pop(task_id, None)
            self._stop_probes(task_id)  # before Finished: no probe report may follow it
            for kind in ("liveness", "readiness"):
                self._probe_overrides.pop((task_id, kind), None)
        detail = detail or ("exited 0" if exit_code == 0 else f"exited {exit_code}")
        self._log.setdefault(task_id, []).append(f"sim: {detail}\n")
        self._report(TaskReport(task_id, TaskState.FINISHED, reason, detail, exit_code))

    def _probe(self, spec: LaunchSpec) -> None:
        checks = spec.container.health
        if checks is None or (checks.liveness is None and checks.readiness is None):
            return
        task_id = spec.task_id

        def changed(result: ProbeResult) -> None:
            self._report(TaskReport(task_id, TaskState.STARTED, probes=result))

        check = self._check(task_id, SimProbeRules.from_env(spec.container.env))
        runner = ProbeRunner(checks, spec.ports, check, changed, speed=self.speed)
        runner.start()
        self._probers[task_id] = runner

    def _stop_probes(self, task_id: str) -> None:
        runner = self._probers.pop(task_id, None)
        if runner is not None:
            runner.stop()

    def _check(self, task_id: str, rules: SimProbeRules) -> Check:
        """Simulated probe attempts of one task (``elapsed`` in sim time since it started)."""
        loop = asyncio.get_running_loop()
        started = loop.time()

        async def check(kind: ProbeKind, probe: Probe, port: int | None) -> Attempt:
            override = self._probe_overrides.get((task_id, kind))
            if override is not None:
                return Attempt(override, f"sim: {kind} set to {'pass' if override else 'fail'}")
            if probe.exec is not None:
                script = parse_script(probe.exec.command)
                if script.seconds is None:
                    await asyncio.Event().wait()  # never exits: the probe's timeout ends it
                else:
                    await asyncio.sleep(script.seconds / self.speed)
                return Attempt(script.exit_code == 0, f"sim: {probe.describe()} exited {script.exit_code}")
            return rules.passes(kind, (loop.time() - started) * self.speed)

        return check

    def set_probe(self, task_id: str, kind: ProbeKind, passing: bool | None) -> None:
        """Tests: make the task's ``kind`` probe pass or fail from its next attempt (None: as it would)."""
        if passing is None:
            self._probe_overrides.pop((task_id, kind), None)
        else:
            self._probe_overrides[(task_id, kind)] = passing

    async def kill(self, task_id: str, grace_period_s: float) -> None:
        task = self._tasks.get(task_id)
        if task is None:
            self._report(TaskReport(task_id, TaskState.FINISHED, FinishedReason.KILLED, "not running", None))
            return
        self._outcomes[task_id] = (SIGTERM_EXIT, None, "killed")
        self._stop_probes(task_id)  # a probe report after this would read as the task running again
        self._report(TaskReport(task_id, TaskState.KILL_INITIATED))
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    def fail(
        self, task_id: str, exit_code: int = 1, reason: FinishedReason | None = None, detail: str = ""
    ) -> bool:
        """End a running task now as if it failed (or crashed, with a system-error ``reason``)."""
        task = self._tasks.get(task_id)
        if task is None:
            return False
        self._outcomes[task_id] = (exit_code, reason, detail or f"failed on demand (exit {exit_code})")
        task.cancel()
        return True

    async def recover(self) -> list[TaskReport]:
        return []  # simulated tasks do not outlive their agent

    async def logs(self, task_id: str, tail: int | None, follow: bool) -> AsyncIterator[str]:
        """A simulated task's log: the lines of its life so far (and, following, until it ends)."""
        if task_id not in self._log:
            raise LogsUnavailable(f"task {task_id} never ran here")
        return self._lines(task_id, tail, follow)

    async def _lines(self, task_id: str, tail: int | None, follow: bool) -> AsyncIterator[str]:
        lines = self._log[task_id]
        start = max(0, len(lines) - tail) if tail is not None else 0
        sent = start
        while True:
            while sent < len(lines):
                yield lines[sent]
                sent += 1
            if not follow or task_id not in self._tasks:
                return
            await asyncio.sleep(0.05)

    async def health(self) -> Health:
        return Health(True, "", {"sim": "ok"})

    async def images(self) -> tuple[str, ...]:
        return ()

    async def housekeeping(self) -> None:
        return None

    async def kill_all(self) -> None:
        self.bind(lambda _r: None)  # as if the host died: nothing is reported
        for task in list(self._tasks.values()):
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    async def close(self) -> None:
        await self.kill_all()  # simulated tasks cannot outlive their runtime

    def usage(self) -> dict[str, Usage]:
        return {task_id: Usage() for task_id in list(self._tasks)}  # simulated tasks use nothing

    def errors(self) -> dict[str, int]:
        return {}
