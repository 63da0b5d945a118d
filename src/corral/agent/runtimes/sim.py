"""The ``sim`` runtime: tasks "run" without processes, for tests and benchmarks at scale.

A task's command is read as a tiny shell script, so the same job runs on ``sim`` and on real Docker:
``sleep N`` waits N seconds, ``exit N`` ends with code N, ``true``/``false``/``echo`` do what they say;
statements are separated by ``;`` or ``&&``, optionally wrapped in ``sh -c "..."``. A task whose
program is none of these (or is empty) runs until it is killed, like a server. Tests can also fail or
crash any task on demand.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shlex
from collections.abc import AsyncIterator
from dataclasses import dataclass

from corral.agent.runtimes.base import LogsUnavailable, Reporter, Usage
from corral.domain.states import FinishedReason, TaskState
from corral.domain.wire import Health, LaunchSpec, TaskReport

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


class SimRuntime:
    name = "sim"

    def __init__(self, start_delay_s: float = 0.0, speed: float = 1.0) -> None:
        self.start_delay_s = start_delay_s
        self.speed = speed  # >1 runs simulated time faster
        self._report: Reporter = lambda _r: None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._outcomes: dict[str, tuple[int, FinishedReason | None, str]] = {}
        self._log: dict[str, list[str]] = {}

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
        self._tasks[spec.task_id] = asyncio.get_running_loop().create_task(self._run(spec.task_id, script))

    async def _run(self, task_id: str, script: SimScript) -> None:
        exit_code, reason, detail = 0, None, ""
        try:
            self._report(TaskReport(task_id, TaskState.START_INITIATED))
            if self.start_delay_s:
                await asyncio.sleep(self.start_delay_s / self.speed)
            self._report(TaskReport(task_id, TaskState.STARTED))
            if script.seconds is None:
                await asyncio.Event().wait()
            else:
                await asyncio.sleep(script.seconds / self.speed)
            exit_code = script.exit_code
        except asyncio.CancelledError:
            exit_code, reason, detail = self._outcomes.pop(task_id, (SIGKILL_EXIT, None, "killed"))
        finally:
            self._tasks.pop(task_id, None)
        detail = detail or ("exited 0" if exit_code == 0 else f"exited {exit_code}")
        self._log.setdefault(task_id, []).append(f"sim: {detail}\n")
        self._report(TaskReport(task_id, TaskState.FINISHED, reason, detail, exit_code))

    async def kill(self, task_id: str, grace_period_s: float) -> None:
        task = self._tasks.get(task_id)
        if task is None:
            self._report(TaskReport(task_id, TaskState.FINISHED, FinishedReason.KILLED, "not running", None))
            return
        self._outcomes[task_id] = (SIGTERM_EXIT, None, "killed")
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
