"""The docker runtime itself: launch, watch, kill, recover, read logs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import docker
from docker.errors import APIError, DockerException, ImageNotFound, NotFound

from corral.agent.probes import HttpProber, ProbeRunner, host_check
from corral.agent.runtimes.base import LogsUnavailable, Reporter, Usage
from corral.agent.runtimes.docker import cgroups, housekeeping
from corral.agent.runtimes.docker.config import LABEL_HOST, LABEL_TASK, DockerConfig
from corral.agent.runtimes.docker.health import check_health
from corral.agent.runtimes.docker.outcome import outcome
from corral.agent.runtimes.docker.spec import container_name, create_kwargs, read_probe_labels
from corral.domain.health import HealthChecks, ProbeResult
from corral.domain.job import Image
from corral.domain.states import FinishedReason, TaskState
from corral.domain.wire import Health, LaunchSpec, TaskReport

log = logging.getLogger(__name__)
T = TypeVar("T")

LABEL_LIMIT = "corral.runtime_limit_s"
LABEL_MEMORY = "corral.memory_mb"
EXEC_POLL_S = (0.02, 0.5)  # an exec probe's end is polled for, from the first to the second, doubling


class ImageUnavailable(Exception):
    def __init__(self, reason: FinishedReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(slots=True)
class _Running:
    container_id: str
    memory_mb: int | None
    reason: FinishedReason | None = None  # set when the agent ends the task itself (runtime limit)
    timer: asyncio.TimerHandle | None = None
    finishing: bool = False
    probes: ProbeRunner | None = None


@dataclass(slots=True)
class _Launch:
    spec: LaunchSpec
    kill_grace_s: float | None = None  # a kill that arrived while the launch was in flight
    task: asyncio.Task[None] | None = None
    died: bool = False


class DockerRuntime:
    name = "docker"

    def __init__(self, config: DockerConfig, client: docker.DockerClient | None = None) -> None:
        self.config = config
        self.client = client or docker.from_env(timeout=int(config.docker_timeout_s))
        self.pool = ThreadPoolExecutor(
            config.launch_concurrency, thread_name_prefix=f"docker-{config.host_id}"
        )
        self._report: Reporter = lambda _r: None
        self._running: dict[str, _Running] = {}
        self._launching: dict[str, _Launch] = {}
        self._pulled: dict[str, float] = {}  # images this agent pulled -> when a task last used them
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watcher: threading.Thread | None = None
        self._events: Any = None
        self._closing = False
        self._background: set[asyncio.Task[None]] = set()
        self._errors: Counter[str] = Counter()  # failed Docker calls by call
        self._http = HttpProber()  # http probes of every task

    def bind(self, report: Reporter) -> None:
        self._report = report

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn`` on the Docker thread pool; its failures are counted (an absent object is an answer)."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self.pool, partial(fn, *args, **kwargs))
        except NotFound:
            raise
        except DockerException:
            self._errors[getattr(fn, "__name__", "call").lstrip("_")] += 1
            raise
        except ImageUnavailable as e:
            if e.reason is FinishedReason.TRANSIENT_SYSTEM_ERROR:
                self._errors["pull"] += 1
            raise

    def _spawn(self, coro: Any) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    # -- launching ------------------------------------------------------------------------------

    async def launch(self, spec: LaunchSpec) -> None:
        if spec.task_id in self._running or spec.task_id in self._launching:
            return  # a repeated launch is a no-op
        self._watch()
        launch = self._launching[spec.task_id] = _Launch(spec)
        launch.task = self._spawn(self._start(launch))

    async def _start(self, launch: _Launch) -> None:
        spec = launch.spec
        task_id = spec.task_id
        self._report(TaskReport(task_id, TaskState.START_INITIATED))
        try:
            await self._call(self._ensure_image, spec.container.image)
            container_id = await self._call(self._create_and_start, spec)
        except ImageUnavailable as e:
            self._launching.pop(task_id, None)
            self._report(TaskReport(task_id, TaskState.FINISHED, e.reason, e.detail))
            return
        except (APIError, DockerException) as e:
            self._launching.pop(task_id, None)
            await self._call(self._remove_quietly, container_name(task_id))
            self._report(
                TaskReport(task_id, TaskState.FINISHED, FinishedReason.LOCAL_SYSTEM_ERROR, f"docker: {e}")
            )
            return
        self._launching.pop(task_id, None)
        running = self._running[task_id] = _Running(container_id, spec.container.resources.memory_mb)
        self._report(TaskReport(task_id, TaskState.STARTED, detail=f"container {container_id[:12]}"))
        running.probes = self._probe(task_id, container_id, spec.container.health, spec.ports)
        if spec.runtime_limit_s is not None:
            self._limit(task_id, running, spec.runtime_limit_s, spec.container.kill_grace_period_s)
        if launch.kill_grace_s is not None:
            await self.kill(task_id, launch.kill_grace_s)
        elif launch.died:
            self._spawn(self._finish(task_id))

    def _ensure_image(self, image: Image) -> None:
        ref = image.reference
        try:
            self.client.images.get(ref)
            if ref in self._pulled:
                self._pulled[ref] = time.time()
            return
        except ImageNotFound:
            pass
        try:
            if image.digest:
                self.client.images.pull(f"{image.name}@{image.digest}")
            else:
                self.client.images.pull(image.name, tag=image.tag or "latest")
        except (ImageNotFound, NotFound) as e:
            raise ImageUnavailable(FinishedReason.INVALID_REQUEST, f"image {ref} not found: {_why(e)}") from e
        except (APIError, DockerException) as e:
            text = _why(e)
            if "not found" in text or "manifest unknown" in text or "does not exist" in text:
                raise ImageUnavailable(
                    FinishedReason.INVALID_REQUEST, f"image {ref} not found: {text}"
                ) from e
            raise ImageUnavailable(
                FinishedReason.TRANSIENT_SYSTEM_ERROR, f"could not pull image {ref}: {text}"
            ) from e
        self._pulled[ref] = time.time()

    def _create_and_start(self, spec: LaunchSpec) -> str:
        kwargs = create_kwargs(spec, self.config)
        kwargs["labels"][LABEL_MEMORY] = str(spec.container.resources.memory_mb)
        if spec.runtime_limit_s is not None:
            kwargs["labels"][LABEL_LIMIT] = str(spec.runtime_limit_s)
        try:
            container = self.client.containers.create(**kwargs)
        except APIError as e:
            if e.status_code != 409:  # 409: a container of this task exists (the agent restarted mid-launch)
                raise
            container = self.client.containers.get(container_name(spec.task_id))
            if container.status == "running":
                return str(container.id)
        container.start()
        return str(container.id)

    def _limit(self, task_id: str, running: _Running, limit_s: float, grace_s: float) -> None:
        """The agent enforces the runtime limit too, a little after the master would, in case it cannot."""
        loop = asyncio.get_running_loop()

        def expire() -> None:
            if self._running.get(task_id) is running:
                running.reason = FinishedReason.RUNTIME_LIMIT_EXCEEDED
                self._spawn(self.kill(task_id, grace_s))

        running.timer = loop.call_later(limit_s + self.config.runtime_limit_slack_s, expire)

    # -- probes ---------------------------------------------------------------------------------

    def _probe(
        self, task_id: str, container_id: str, checks: HealthChecks | None, ports: tuple[int, ...]
    ) -> ProbeRunner | None:
        """Start the task's probes (if it has any): each change is reported as the task running."""
        if checks is None or (checks.liveness is None and checks.readiness is None):
            return None

        def changed(result: ProbeResult) -> None:
            self._report(TaskReport(task_id, TaskState.STARTED, probes=result))

        async def run_exec(command: tuple[str, ...]) -> int:
            return await self._exec(container_id, command)

        runner = ProbeRunner(checks, ports, host_check(self._http, run_exec), changed)
        runner.start()
        return runner

    async def _exec(self, container_id: str, command: tuple[str, ...]) -> int:
        """Run ``command`` in the container (Docker's exec API); its exit code.

        Started detached and polled for, so a command that hangs holds no thread of the Docker pool: the
        probe's timeout cancels the polling (the command itself runs on, as Docker cannot stop an exec)."""
        created = await self._call(
            self.client.api.exec_create, container_id, list(command), stdout=False, stderr=False
        )
        await self._call(self.client.api.exec_start, created["Id"], detach=True)
        delay, most = EXEC_POLL_S
        while True:
            info = await self._call(self.client.api.exec_inspect, created["Id"])
            if not info.get("Running") and info.get("ExitCode") is not None:
                return int(info["ExitCode"])
            await asyncio.sleep(delay)
            delay = min(delay * 2, most)

    # -- ends -----------------------------------------------------------------------------------

    def _watch(self) -> None:
        """Start the thread that turns Docker's ``die`` events into task ends (once)."""
        if self._watcher is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._watcher = threading.Thread(target=self._watch_events, daemon=True, name="docker-events")
        self._watcher.start()

    def _watch_events(self) -> None:
        filters = {"type": "container", "event": ["die"], "label": [f"{LABEL_HOST}={self.config.host_id}"]}
        while not self.closing():
            try:
                self._events = self.client.events(decode=True, filters=filters)
                for event in self._events:
                    task_id = event.get("Actor", {}).get("Attributes", {}).get(LABEL_TASK)
                    if task_id and self._loop is not None:
                        self._loop.call_soon_threadsafe(self._died, task_id)
            except Exception as e:  # Docker restarted or the stream broke: listen again
                if self.closing():
                    return
                self._errors["events"] += 1
                log.warning("docker events stream ended (%s); reconnecting", e)
                time.sleep(1.0)

    def closing(self) -> bool:
        return self._closing

    def _died(self, task_id: str) -> None:
        launching = self._launching.get(task_id)
        if launching is not None:
            launching.died = True  # it exited before the launch finished: handled when it does
        elif task_id in self._running:
            self._spawn(self._finish(task_id))

    async def _finish(self, task_id: str) -> None:
        running = self._running.get(task_id)
        if running is None or running.finishing:
            return
        running.finishing = True
        try:
            attrs = await self._call(self._inspect, running.container_id)
        except NotFound:
            attrs = {"State": {"ExitCode": None, "Error": "container disappeared"}}
        state = attrs.get("State", {})
        if state.get("Running"):
            running.finishing = False
            return
        if running.timer is not None:
            running.timer.cancel()
        if running.probes is not None:
            running.probes.stop()  # before Finished: no probe report may follow it
        del self._running[task_id]
        reason, detail, exit_code = outcome(state, running.memory_mb)
        if running.reason is not None:
            reason, detail = running.reason, "the agent stopped it at its runtime limit"
        self._report(TaskReport(task_id, TaskState.FINISHED, reason, detail, exit_code))

    def _inspect(self, container_id: str) -> dict[str, Any]:
        attrs: dict[str, Any] = self.client.api.inspect_container(container_id)
        return attrs

    def _remove_quietly(self, name: str) -> None:
        with contextlib.suppress(NotFound, APIError):
            self.client.api.remove_container(name, force=True)

    # -- kills ----------------------------------------------------------------------------------

    async def kill(self, task_id: str, grace_period_s: float) -> None:
        launching = self._launching.get(task_id)
        if launching is not None:
            launching.kill_grace_s = grace_period_s  # stopped as soon as it has started
            return
        running = self._running.get(task_id)
        if running is None:
            await self._finish_unknown(task_id)
            return
        if running.probes is not None:
            running.probes.stop()  # a probe report after this would read as the task running again
        self._report(TaskReport(task_id, TaskState.KILL_INITIATED))
        try:
            # SIGTERM, the grace period, then SIGKILL: Docker's stop.
            await self._call(
                self.client.api.stop, running.container_id, timeout=max(0, round(grace_period_s))
            )
        except NotFound:
            pass
        except APIError as e:
            log.warning("stopping %s failed: %s", task_id, e)
        await self._finish(task_id)

    async def _finish_unknown(self, task_id: str) -> None:
        """A kill for a task not running here: say how it ended, if its container is still around."""
        try:
            attrs = await self._call(self._inspect, container_name(task_id))
        except NotFound:
            self._report(TaskReport(task_id, TaskState.FINISHED, FinishedReason.KILLED, "not running"))
            return
        if attrs.get("State", {}).get("Running"):
            await self._call(self.client.api.stop, attrs["Id"], timeout=0)
            attrs = await self._call(self._inspect, attrs["Id"])
        reason, detail, exit_code = outcome(attrs.get("State", {}), None)
        self._report(TaskReport(task_id, TaskState.FINISHED, reason, detail, exit_code))

    async def kill_all(self) -> None:
        """As if the host died: every container of this host gone at once, nothing reported."""
        self.bind(lambda _r: None)
        self._stop_probes()
        for container in await self._call(self._ours, True):
            await self._call(self._remove_quietly, container["Id"])
        self._running.clear()

    # -- after a restart ------------------------------------------------------------------------

    def _ours(self, include_exited: bool) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.client.api.containers(
            all=include_exited, filters={"label": [f"{LABEL_HOST}={self.config.host_id}"]}
        )
        return found

    async def recover(self) -> list[TaskReport]:
        """Find this host's containers by label: running ones are adopted, ended ones reported."""
        self._watch()
        reports = []
        probed: list[tuple[str, _Running, HealthChecks | None, tuple[int, ...]]] = []
        for summary in await self._call(self._ours, True):
            labels = summary.get("Labels") or {}
            task_id = labels.get(LABEL_TASK)
            if not task_id:
                continue
            attrs = await self._call(self._inspect, summary["Id"])
            state = attrs.get("State", {})
            memory = int(labels[LABEL_MEMORY]) if labels.get(LABEL_MEMORY, "").isdigit() else None
            if state.get("Running"):
                running = self._running[task_id] = _Running(summary["Id"], memory)
                limit = labels.get(LABEL_LIMIT)
                if limit and limit.isdigit():
                    started = _started_at(state)
                    left = max(0.0, int(limit) - (time.time() - started)) if started else float(limit)
                    self._limit(task_id, running, left, 10.0)
                probed.append((task_id, running, *read_probe_labels(labels)))
                reports.append(
                    TaskReport(task_id, TaskState.STARTED, detail="re-adopted after agent restart")
                )
            else:
                reason, detail, exit_code = outcome(state, memory)
                reports.append(TaskReport(task_id, TaskState.FINISHED, reason, detail, exit_code))
        # Probes start last, with no wait before the agent records these reports: their first changes
        # come after them, not before (where the re-adoption report would hide them).
        for task_id, running, checks, ports in probed:
            running.probes = self._probe(task_id, running.container_id, checks, ports)
        if reports:
            log.info("agent %s re-adopted %d containers", self.config.host_id, len(reports))
        return reports

    # -- logs -----------------------------------------------------------------------------------

    async def logs(self, task_id: str, tail: int | None, follow: bool) -> AsyncIterator[str]:
        try:
            container = await self._call(self.client.containers.get, container_name(task_id))
        except NotFound as e:
            raise LogsUnavailable(
                f"no container for task {task_id} on {self.config.host_id} (gone past retention?)"
            ) from e
        stream = await self._call(
            container.logs,
            stream=True,
            follow=follow,
            stdout=True,
            stderr=True,
            tail=tail if tail is not None else "all",
        )
        return self._pump(task_id, stream)

    async def _pump(self, task_id: str, stream: Any) -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()

        def pump() -> None:  # its own thread: a followed log can last as long as the task
            try:
                for chunk in stream:
                    loop.call_soon_threadsafe(queue.put_nowait, chunk)
            except Exception:
                pass
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, None)

        threading.Thread(target=pump, daemon=True, name=f"logs-{task_id}").start()
        try:
            while (chunk := await queue.get()) is not None:
                yield chunk.decode(errors="replace")
        finally:
            with contextlib.suppress(Exception):
                stream.close()

    # -- the host -------------------------------------------------------------------------------

    async def health(self) -> Health:
        return await self._call(check_health, self.client, self.config)

    async def images(self) -> tuple[str, ...]:
        try:
            return await self._call(housekeeping.local_images, self.client)
        except DockerException:
            return ()

    async def housekeeping(self) -> None:
        for task_id in list(self._running):
            running = self._running.get(task_id)
            if running is None:  # it ended (its die event came) while an earlier one was inspected
                continue
            try:
                state = (await self._call(self._inspect, running.container_id)).get("State", {})
            except NotFound:
                state = {}
            if not state.get("Running"):
                await self._finish(task_id)  # a die event we missed
        await self._call(housekeeping.remove_expired_containers, self.client, self.config)
        await self._call(housekeeping.remove_unused_images, self.client, self.config, self._pulled)

    def usage(self) -> dict[str, Usage]:
        return {
            task_id: cgroups.read_usage(running.container_id) or Usage()
            for task_id, running in list(self._running.items())
        }

    def errors(self) -> dict[str, int]:
        return dict(self._errors)

    async def close(self) -> None:
        self._closing = True
        if self._events is not None:
            with contextlib.suppress(Exception):
                self._events.close()
        for running in self._running.values():
            if running.timer is not None:
                running.timer.cancel()
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        runners = [r.probes for r in self._running.values() if r.probes is not None]
        await asyncio.gather(*(runner.wait_stopped() for runner in runners))
        await self._http.aclose()
        self.pool.shutdown(wait=False, cancel_futures=True)

    def _stop_probes(self) -> None:
        for running in self._running.values():
            if running.probes is not None:
                running.probes.stop()


def _why(error: Exception) -> str:
    explanation = getattr(error, "explanation", None)
    return str(explanation or error).strip()


def _started_at(state: dict[str, Any]) -> float | None:
    text = state.get("StartedAt") or ""
    try:
        from datetime import datetime

        return datetime.fromisoformat(text[:26].rstrip("Z") + "+00:00").timestamp()
    except ValueError:
        return None
