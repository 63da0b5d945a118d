"""``corral up``: the embedded cluster makes its own credentials, or runs without any when told."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.cluster import free_port, wait_for

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
