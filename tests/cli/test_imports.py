"""The client commands load no server code: ``corral --help`` and ``corral job ls`` stay fast because
FastAPI, SQLAlchemy, numpy and the rest of the master are imported only by the commands that run one.

Each check runs the real ``corral`` entry point in a fresh interpreter and records ``sys.modules`` as the
process exits (an ``atexit`` hook: typer ends every command with ``SystemExit``).
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_tls import self_signed
from tests.support.cluster import MasterProcess
from tests.support.specs import batch_job

SERVER_PACKAGES = (
    "fastapi",
    "starlette",
    "uvicorn",
    "sqlalchemy",
    "numpy",
    "psycopg",
    "docker",
    "prometheus_client",
    "sse_starlette",
    "websockets",
    "corral.api",
    "corral.control",
    "corral.store",
    "corral.agent",
    "corral.scheduler",
    "corral.jobs",
)

# Runs ``corral`` as its console script does, then writes every loaded module's name to argv[1].
RUN_CORRAL = """
import atexit, json, runpy, sys
out = sys.argv[1]
atexit.register(lambda: open(out, "w").write(json.dumps(sorted(sys.modules))))
sys.argv = ["corral", *sys.argv[2:]]
runpy.run_module("corral", run_name="__main__", alter_sys=True)
"""


# Modules that define commands: typer reads every command's annotations on every run, and string ones
# (``from __future__ import annotations``) it compiles and evaluates each time, ~20 ms for the tree.
COMMAND_MODULES = (
    "main",
    "jobs",
    "tasks",
    "hosts",
    "groups",
    "hostgroups",
    "plans",
    "security",
    "admin",
    "top",
    "servers",
)


def server_modules(modules: list[str]) -> list[str]:
    return [m for m in modules if any(m == p or m.startswith(p + ".") for p in SERVER_PACKAGES)]


def run_corral(
    tmp_path: Path, *args: str, master: str = ""
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    out = tmp_path / "modules.json"
    env = {**os.environ, "COLUMNS": "200"}
    if master:
        env["CORRAL_MASTER"] = master
    result = subprocess.run(
        [sys.executable, "-c", RUN_CORRAL, str(out), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    modules: list[str] = json.loads(out.read_text())
    return result, modules


def test_importing_the_cli_loads_no_server_code() -> None:
    code = "import json, sys, corral.cli.main; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    modules = json.loads(result.stdout)
    assert "corral.cli.main" in modules
    assert server_modules(modules) == []


@pytest.mark.parametrize("name", COMMAND_MODULES)
def test_command_modules_keep_their_annotations_evaluated(name: str) -> None:
    module = importlib.import_module(f"corral.cli.{name}")
    assert not hasattr(module, "annotations"), f"corral.cli.{name} has `from __future__ import annotations`"


@pytest.mark.parametrize(
    "args",
    [("--help",), ("master", "--help"), ("up", "--help"), ("agent", "--help"), ("admin", "backup", "--help")],
    ids=lambda a: " ".join(a),
)
def test_help_loads_no_server_code(tmp_path: Path, args: tuple[str, ...]) -> None:
    result, modules = run_corral(tmp_path, *args)
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout
    assert server_modules(modules) == []


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MasterProcess]:
    m = MasterProcess(Path(tmp_path_factory.mktemp("imports"))).start()
    yield m
    m.close()


@pytest.mark.integration
def test_job_ls_against_a_real_master_loads_no_server_code(tmp_path: Path, master: MasterProcess) -> None:
    job = master.submit(batch_job(["sleep", "100"], application="importless"))
    result, modules = run_corral(tmp_path, "job", "ls", master=master.url)
    assert result.returncode == 0, result.stderr
    assert job["id"] in result.stdout and "importless" in result.stdout
    assert "httpx" in modules  # it did talk to the master
    assert server_modules(modules) == []
    assert "click" not in modules and "pygments" not in modules  # httpx's own command line stays out


@pytest.mark.integration
def test_status_and_json_listing_load_no_server_code(tmp_path: Path, master: MasterProcess) -> None:
    for args in (("status",), ("--json", "task", "ls"), ("whoami",)):
        result, modules = run_corral(tmp_path, *args, master=master.url)
        assert result.returncode == 0, result.stderr
        assert server_modules(modules) == [], args


@pytest.mark.integration
def test_an_https_master_is_still_verified_when_tls_is_set_up_on_first_use(tmp_path: Path) -> None:
    """The client makes its TLS context when a connection first needs it (plain-HTTP commands skip the
    CA bundle): it is httpx's default one, so an untrusted certificate is refused and SSL_CERT_FILE,
    which that default honours, is enough to trust it."""
    cert, key = self_signed(tmp_path)
    env = {"CORRAL_TLS_CERT_FILE": str(cert), "CORRAL_TLS_KEY_FILE": str(key)}
    master = MasterProcess(tmp_path / "m", env).start()
    base = {
        k: v for k, v in os.environ.items() if k not in ("CORRAL_CA_FILE", "SSL_CERT_FILE", "SSL_CERT_DIR")
    }
    base |= {"CORRAL_MASTER": master.url, "COLUMNS": "200"}
    try:
        assert master.url.startswith("https://")
        untrusted = subprocess.run(
            [sys.executable, "-m", "corral", "status"], capture_output=True, text=True, env=base, timeout=60
        )
        assert untrusted.returncode == 2, untrusted.stdout + untrusted.stderr
        assert "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr
        trusted = subprocess.run(
            [sys.executable, "-m", "corral", "status"],
            capture_output=True,
            text=True,
            env={**base, "SSL_CERT_FILE": str(cert)},
            timeout=60,
        )
        assert trusted.returncode == 0, trusted.stderr
    finally:
        master.close()
