"""``corral admin token|team`` and ``corral whoami`` against a running master, as an operator would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.cluster import MasterProcess

pytestmark = pytest.mark.integration


def corral(master: MasterProcess, *args: str, token: str | None = None, cwd: Path | None = None) -> Any:
    env = {**os.environ, "CORRAL_MASTER": master.url, "COLUMNS": "200"}
    if token is not None:
        env["CORRAL_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "corral", *args], capture_output=True, text=True, env=env, timeout=60, cwd=cwd
    )


def test_teams_and_tokens_from_the_cli(tmp_path: Path) -> None:
    master = MasterProcess(tmp_path / "m").start()
    try:
        made = corral(master, "admin", "team", "set", "payments", "--email", "@payments.example.com",
                      "--max-jobs", "3", "--rate", "2")  # fmt: skip
        assert made.returncode == 0, made.stderr
        teams = json.loads(corral(master, "--json", "admin", "team", "ls").stdout)
        assert teams[0]["name"] == "payments" and teams[0]["max_active_jobs"] == 3

        created = corral(master, "--json", "admin", "token", "create", "alice", "--team", "payments",
                         "--expires", "1d")  # fmt: skip
        assert created.returncode == 0, created.stderr
        alice = json.loads(created.stdout)
        assert alice["role"] == "user" and alice["expires_at"] - alice["created_at"] == pytest.approx(86400)
        me = json.loads(corral(master, "--json", "whoami", token=alice["secret"]).stdout)
        assert me == {"token_id": alice["id"], "name": "alice", "team": "payments", "role": "user"}

        listed = corral(master, "admin", "token", "list")
        assert listed.returncode == 0 and "alice" in listed.stdout and alice["secret"] not in listed.stdout
        denied = corral(master, "admin", "token", "list", token=alice["secret"])
        assert denied.returncode == 1 and "forbidden" in denied.stderr and "not an admin" in denied.stderr

        assert corral(master, "admin", "token", "revoke", alice["id"]).returncode == 0
        gone = corral(master, "whoami", token=alice["secret"])
        assert gone.returncode == 1 and "unauthenticated" in gone.stderr and "revoked" in gone.stderr
        anonymous = corral(master, "whoami", token="", cwd=tmp_path)  # no token anywhere
        assert anonymous.returncode == 1 and "bearer token is required" in anonymous.stderr

        # The CLI reads ./.corral/admin.token (what `corral up` writes) when nothing else says otherwise.
        (tmp_path / ".corral").mkdir()
        (tmp_path / ".corral" / "admin.token").write_text(alice["secret"] + "\n")
        env_free = {k: v for k, v in os.environ.items() if k not in ("CORRAL_TOKEN", "CORRAL_TOKEN_FILE")}
        from_file = subprocess.run(
            [sys.executable, "-m", "corral", "--master", master.url, "whoami"],
            capture_output=True, text=True, env=env_free, timeout=60, cwd=tmp_path,
        )  # fmt: skip
        assert "revoked" in from_file.stderr  # it was read and sent
    except BaseException:
        print(master.log()[-10000:])
        raise
    finally:
        master.close()
