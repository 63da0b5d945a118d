"""``corral up``: the embedded cluster makes its own credentials, or runs without any when told."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.cluster import free_port, process_alive, wait_for
from tests.support.specs import batch_job

pytestmark = pytest.mark.integration


def up(tmp: Path, *flags: str) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORRAL_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "corral", "up", "--runtime", "sim", "--agents", "2", "--port", str(port),
         "--data-dir", str(tmp / "data"), *flags],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=tmp,
    )  # fmt: skip
    return proc, f"http://127.0.0.1:{port}"


def stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    return out


def hosts(url: str, headers: dict[str, str]) -> int:
    try:
        r = httpx.get(f"{url}/api/v1/hosts", headers=headers, timeout=5)
    except httpx.TransportError:
        return 0
    return len(r.json()["items"]) if r.status_code == 200 else 0


def test_up_writes_and_prints_a_local_admin_token_and_its_agents_authenticate(tmp_path: Path) -> None:
    proc, url = up(tmp_path)
    try:
        token_file = tmp_path / "data" / "admin.token"
        # The file exists a moment before the token is in it: wait for the token.
        token = wait_for(lambda: token_file.exists() and token_file.read_text().strip(), 30, what="the token")
        assert oct(token_file.stat().st_mode & 0o777) == "0o600"
        auth = {"Authorization": f"Bearer {token}"}
        wait_for(lambda: hosts(url, auth) == 2, 30, what="both agents registered with their credential")
        me = httpx.get(f"{url}/api/v1/whoami", headers=auth, timeout=5).json()
        assert me["role"] == "admin" and me["name"] == "local-admin"
        assert httpx.get(f"{url}/api/v1/hosts", timeout=5).status_code == 401
    finally:
        out = stop(proc)
    assert f"admin token ({tmp_path / 'data' / 'admin.token'}): {token}" in out.replace("\n", "")


def test_up_without_auth_lets_anyone_in_and_says_so(tmp_path: Path) -> None:
    proc, url = up(tmp_path, "--no-auth")
    try:
        wait_for(lambda: hosts(url, {}) == 2, 30, what="agents without credentials")
        assert httpx.get(f"{url}/api/v1/whoami", timeout=5).json()["name"] == "anonymous"
        assert not (tmp_path / "data" / "admin.token").exists()
    finally:
        out = stop(proc)
    assert "authentication is off" in out


def test_up_autoscale_starts_agent_processes_as_needed_and_stops_them_with_itself(tmp_path: Path) -> None:
    proc, url = up(tmp_path, "--autoscale", "--max-hosts", "3")  # --agents 2: the group's min size
    token_file = tmp_path / "data" / "admin.token"
    try:
        token = wait_for(lambda: token_file.exists() and token_file.read_text().strip(), 30, what="the token")
        auth = {"Authorization": f"Bearer {token}"}
        # Two hosts for min size (both idle: min_idle 1 holds).
        wait_for(lambda: hosts(url, auth) == 2, 60, what="the local provider's agents to register")
        group = httpx.get(f"{url}/api/v1/hostgroups/local", headers=auth, timeout=5).json()
        assert group["provider"]["kind"] == "local" and group["max_size"] == 3
        # Work that fills both (8 cpu each): a third host comes, to keep one idle.
        spec = batch_job(["sleep", "600"], size=16)
        spec["container"]["resources"]["cpu"] = 1.0
        assert httpx.post(f"{url}/api/v1/jobs", json=spec, headers=auth, timeout=5).status_code == 201
        wait_for(lambda: hosts(url, auth) == 3, 60, what="a third agent to keep one host idle")
        pids = wait_for(lambda: len(p := _pids(tmp_path)) == 3 and p, 10, what="3 instance records")
        assert all(process_alive(pid) for pid in pids)
    finally:
        stop(proc)
    wait_for(lambda: not any(process_alive(pid) for pid in pids), 30, what="the agents to stop with `up`")


def _pids(tmp: Path) -> list[int]:
    records = (tmp / "data" / "providers" / "local" / "local" / "instances").glob("*.json")
    return [int(json.loads(r.read_text())["pid"]) for r in records]
