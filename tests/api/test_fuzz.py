"""Fuzzing the API from its own OpenAPI document (schemathesis): whatever is sent, no 5xx comes back, and
every status code that does come back is one the document lists for that route.

It runs as an admin (every route reachable) and as a plain user (every refusal path), against a real
master with simulated agents. ``CORRAL_FUZZ_EXAMPLES`` and ``CORRAL_FUZZ_SEED`` widen or vary the run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.agent.pool import FleetSpec
from tests.support.cluster import ADMIN_TOKEN, Fleet, MasterProcess

pytestmark = pytest.mark.integration

EXAMPLES = os.environ.get("CORRAL_FUZZ_EXAMPLES", "30")  # per operation; more by hand: CORRAL_FUZZ_EXAMPLES
SEED = os.environ.get("CORRAL_FUZZ_SEED", "1")


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MasterProcess]:
    # No autoscaler: a fuzzed host group must not make a provider start real agent processes.
    m = MasterProcess(Path(tmp_path_factory.mktemp("fuzz")), {"CORRAL_AUTOSCALE_INTERVAL_S": "0"}).start()
    fleet = Fleet(m.url, FleetSpec(count=2, heartbeat_backoff_max_s=1.0))
    try:
        fleet.wait_connected()
        yield m
    finally:
        fleet.close()
        m.close()


def fuzz(master: MasterProcess, token: str, tmp: Path) -> str:
    done = subprocess.run(
        [
            sys.executable, "-m", "schemathesis.cli", "run", f"{master.url}/openapi.json",
            "--header", f"Authorization: Bearer {token}",
            "--checks", "not_a_server_error,status_code_conformance",
            "--phases", "examples,coverage,fuzzing",
            "--max-examples", EXAMPLES,
            "--seed", SEED,
            "--request-timeout", "20",
            # Streams never end by themselves: the event stream and followed logs are left out.
            "--exclude-path", "/api/v1/events",
            "--exclude-path-regex", ".*/logs$",
            "--report-dir", str(tmp),
        ],
        capture_output=True, text=True, timeout=600, cwd=tmp,
    )  # fmt: skip
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-8000:] + "\n---- master log ----\n" + master.log()[-4000:]
    return out


def operations_tested(out: str) -> int:
    found = re.search(r"Tested:\s+(\d+)", out)
    assert found, out[-3000:]
    return int(found.group(1))


def test_fuzzing_as_an_admin_finds_no_server_error(master: MasterProcess, tmp_path: Path) -> None:
    out = fuzz(master, ADMIN_TOKEN, tmp_path)
    assert operations_tested(out) >= 35  # every operation but the two streams was exercised
    assert re.search(r"\d+ generated, \d+ passed", out), out[-3000:]


def test_fuzzing_as_a_user_of_a_team_finds_no_server_error(master: MasterProcess, tmp_path: Path) -> None:
    master.http.put("/api/v1/admin/teams/fuzzers", json={"emails": ["@fuzz.example.com"]})
    made = master.http.post("/api/v1/admin/tokens", json={"name": "fuzzer", "team": "fuzzers"})
    assert made.status_code == 201
    assert operations_tested(fuzz(master, made.json()["secret"], tmp_path)) >= 35
