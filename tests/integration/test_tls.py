"""TLS: a master serving HTTPS and WSS with its own certificate; agents and the CLI that trust it."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from corral.agent.metrics import AgentMetrics
from corral.agent.pool import FleetSpec
from tests.support.cluster import Fleet, MasterProcess, wait_for

pytestmark = pytest.mark.integration


def self_signed(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def test_master_agents_and_cli_over_tls(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    env = {"CORRAL_TLS_CERT_FILE": str(cert), "CORRAL_TLS_KEY_FILE": str(key)}
    master = MasterProcess(tmp_path / "m", env).start()
    assert master.url.startswith("https://")
    fleet = Fleet(master.url, FleetSpec(count=2, heartbeat_backoff_max_s=0.5, ca_file=str(cert)))
    try:
        fleet.wait_connected()
        wait_for(lambda: len(master.http.get("/api/v1/hosts").json()["items"]) == 2, what="2 hosts over wss")
        cli = subprocess.run(
            [sys.executable, "-m", "corral", "--master", master.url, "--ca-file", str(cert), "--json",
             "host", "ls"],
            capture_output=True, text=True, env={**os.environ}, timeout=60,
        )  # fmt: skip
        assert cli.returncode == 0, cli.stderr
        assert {h["id"] for h in json.loads(cli.stdout)} == {"sim-0000", "sim-0001"}
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"{master.url}/healthz")  # a client that does not trust the certificate
        with pytest.raises(httpx.HTTPError):
            httpx.get(master.url.replace("https://", "http://") + "/healthz", timeout=5)
    except BaseException:
        print(master.log()[-20000:])
        raise
    finally:
        fleet.close()
        master.close()


def test_agent_metrics_over_tls(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    port = AgentMetrics().serve("127.0.0.1", 0, str(cert), str(key))
    trusted = ssl.create_default_context(cafile=str(cert))
    text = httpx.get(f"https://127.0.0.1:{port}/metrics", verify=trusted, timeout=10).text
    assert "corral_agent_launch_seconds" in text
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
