"""A real Corral for tests: a master in its own process (uvicorn on a loopback port, SQLite in a temp
dir) and simulated agents on a background event loop, talking over real WebSockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import httpx

from corral.agent.pool import AgentPool, FleetSpec
from corral.domain.states import FinishedReason

T = TypeVar("T")

# Short timeouts so failure handling shows up in seconds, not minutes.
# Every test master seeds these credentials (CORRAL_BOOTSTRAP_*); tests/conftest.py exports them as
# CORRAL_TOKEN and CORRAL_AGENT_TOKEN, so the CLI and agents started by tests use them too.
ADMIN_TOKEN = "crl_test-admin-0123456789abcdef"
AGENT_TOKEN = "crl_test-agent-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def _sign(request: httpx.Request) -> None:
    request.headers.setdefault("Authorization", AUTH["Authorization"])


def client(**kwargs: Any) -> httpx.Client:
    """An httpx client that presents the admin token on every request, redirected ones included
    (httpx drops Authorization when a redirect changes origin, as a standby's redirect to the leader does)."""
    return httpx.Client(event_hooks={"request": [_sign]}, **kwargs)


async def _asign(request: httpx.Request) -> None:
    _sign(request)


def async_client(**kwargs: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(event_hooks={"request": [_asign]}, **kwargs)


FAST_ENV = {
    "CORRAL_BOOTSTRAP_TOKEN": ADMIN_TOKEN,
    "CORRAL_BOOTSTRAP_AGENT_TOKEN": AGENT_TOKEN,
    "CORRAL_LEASE_TTL_S": "2.0",
    "CORRAL_LEASE_POLL_S": "0.2",
    "CORRAL_HEARTBEAT_INTERVAL_S": "0.3",
    "CORRAL_HEARTBEAT_TIMEOUT_S": "1.5",
    "CORRAL_LOST_AFTER_S": "2.0",
    "CORRAL_LAUNCHED_TIMEOUT_S": "10",
    "CORRAL_SYSTEM_RETRY_INITIAL_S": "0.2",
    "CORRAL_SYSTEM_RETRY_MAX_S": "1.0",
    "CORRAL_CRASH_LOOP_INITIAL_S": "0.2",
    "CORRAL_CRASH_LOOP_MAX_S": "1.0",
    "CORRAL_SERVICE_STABLE_AFTER_S": "1.0",
    "CORRAL_SQLITE_SYNCHRONOUS": "NORMAL",
    "CORRAL_UNKNOWN_TASK_SETTLE_S": "1.0",
    "CORRAL_AUTOSCALE_INTERVAL_S": "0.3",
    "CORRAL_PROVIDER_LIST_S": "0.5",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for(predicate: Callable[[], T], timeout: float = 20.0, interval: float = 0.05, what: str = "") -> T:
    """Poll until ``predicate`` returns something truthy; fail the test with ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}; last value {last!r}")


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, exited but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


class MasterProcess:
    def __init__(
        self,
        data_dir: Path,
        env: dict[str, str] | None = None,
        port: int | None = None,
        store_url: str = "",
        host: str = "127.0.0.1",  # the address it listens on ("0.0.0.0": every one)
    ) -> None:
        self.data_dir = data_dir
        self.store_url = store_url
        self.host = host
        self.port = port or free_port()
        self.env = {**os.environ, **FAST_ENV, **(env or {})}
        cert = self.env.get("CORRAL_TLS_CERT_FILE", "")  # a TLS master: https, trusting its certificate
        self.url = f"{'https' if cert else 'http'}://127.0.0.1:{self.port}"
        self.log_path = data_dir / "master.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.http = httpx.Client(
            base_url=self.url,
            timeout=30,
            headers=AUTH,
            verify=ssl.create_default_context(cafile=cert) if cert else True,
        )

    def start(self, wait: bool = True) -> MasterProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        cmd = [
            sys.executable,
            "-m",
            "corral",
            "master",
            "--data-dir",
            str(self.data_dir),
            "--port",
            str(self.port),
            "--host",
            self.host,
        ]
        if self.store_url:
            cmd += ["--store-url", self.store_url]
        self.proc = subprocess.Popen(
            [*cmd, "--log-level", "info"], stdout=log, stderr=subprocess.STDOUT, env=self.env
        )
        log.close()
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        def ready() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"master exited with {self.proc.returncode}:\n{self.log()}")
            try:
                return self.http.get("/readyz").status_code == 200
            except httpx.TransportError:
                return False

        wait_for(ready, timeout, what="the master to be ready")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def answers(self) -> bool:
        try:
            return self.http.get("/healthz").status_code == 200
        except httpx.TransportError:
            return False

    def leads(self) -> bool:
        try:
            return self.http.get("/readyz").status_code == 200
        except httpx.TransportError:
            return False

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no final flush — a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode

    def close(self) -> None:
        self.stop()
        self.http.close()

    # -- API helpers ----------------------------------------------------------------------------

    def submit(self, spec: dict[str, Any]) -> dict[str, Any]:
        r = self.http.post("/api/v1/jobs", json=spec)
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        return body

    def job(self, job_id: str) -> dict[str, Any]:
        r = self.http.get(f"/api/v1/jobs/{job_id}")
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    def tasks(self, job_id: str | None = None, states: list[str] | None = None) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        after = None
        while True:
            params: dict[str, Any] = {"limit": 5000}
            if job_id:
                params["job"] = job_id
            if states:
                params["state"] = states
            if after:
                params["after"] = after
            page = self.http.get("/api/v1/tasks", params=params).json()
            items.extend(page["items"])
            after = page["next"]
            if not after:
                return items

    def wait_job_finished(self, job_id: str, timeout: float = 60.0) -> dict[str, Any]:
        return wait_for(
            lambda: (j := self.job(job_id))["state"] == "Finished" and j,
            timeout,
            interval=0.1,
            what=f"job {job_id} to finish",
        )


class Fleet:
    """Simulated agents on their own event loop in a background thread."""

    def __init__(self, master_url: str, spec: FleetSpec) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="fleet")
        self.thread.start()
        spec = spec if spec.token else replace(spec, token=AGENT_TOKEN)
        self.pool: AgentPool = self.call(self._make(master_url, spec))

    @staticmethod
    async def _make(url: str, spec: FleetSpec) -> AgentPool:
        pool = AgentPool(url, spec, seed=7)
        pool.start()
        return pool

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def run(self, fn: Callable[[], T]) -> T:
        async def wrapper() -> T:
            return fn()

        return self.call(wrapper())

    def wait_connected(self, timeout: float = 20.0) -> None:
        self.call(self.pool.wait_connected(timeout), timeout + 5)

    def fail_task(self, task_id: str, exit_code: int = 1, reason: FinishedReason | None = None) -> bool:
        def fail() -> bool:
            runtime = self.pool.runtime_of(task_id)
            return runtime is not None and runtime.fail(task_id, exit_code, reason)

        return self.run(fail)

    def crash_agent(self, agent_id: str) -> None:
        """The agent and everything it ran disappear at once, as when a host dies."""
        self.call(self.pool.agent(agent_id).stop(kill_tasks=True))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.call(self.pool.stop(), 30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@contextlib.contextmanager
def cluster(
    tmp: Path, agents: int = 3, cpu: float = 8.0, env: dict[str, str] | None = None
) -> Iterator[tuple[MasterProcess, Fleet]]:
    master = MasterProcess(tmp / "master", env).start()
    fleet = Fleet(master.url, FleetSpec(count=agents, cpu=cpu, heartbeat_backoff_max_s=1.0))
    try:
        fleet.wait_connected()
        yield master, fleet
    except BaseException:
        print("---- master log ----\n" + master.log()[-20000:])
        raise
    finally:
        fleet.close()
        master.close()
