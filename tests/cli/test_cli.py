"""The ``corral`` command against a running master: the tour a user takes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from corral.agent.pool import FleetSpec
from tests.support.cluster import Fleet, MasterProcess, free_port, wait_for
from tests.support.specs import batch_job, service_job

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MasterProcess]:
    m = MasterProcess(Path(tmp_path_factory.mktemp("cli"))).start()
    fleet = Fleet(m.url, FleetSpec(count=2, cpu=8, heartbeat_backoff_max_s=1.0))
    fleet.wait_connected()
    yield m
    fleet.close()
    m.close()


def corral(
    master: MasterProcess | str, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    url = master if isinstance(master, str) else master.url
    env = {**os.environ, "CORRAL_MASTER": url, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "corral", *args],
        capture_output=True,
        text=True,
        env=env,
        input=stdin,
        timeout=60,
    )


def as_json(master: MasterProcess, *args: str) -> Any:
    result = corral(master, "--json", *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_submit_from_yaml_then_list_show_and_watch_it_finish(master: MasterProcess, tmp_path: Path) -> None:
    spec = tmp_path / "job.yaml"
    spec.write_text(yaml.safe_dump(batch_job(["sh", "-c", "sleep 0.3"], size=3, application="cliapp")))
    result = corral(master, "job", "submit", "-f", str(spec))
    assert result.returncode == 0, result.stderr
    assert "submitted job" in result.stdout
    job = as_json(master, "job", "ls", "--all", "--app", "cliapp")[0]
    assert job["descriptor"]["batch"]["size"] == 3
    master.wait_job_finished(job["id"])
    table = corral(master, "job", "ls", "--all", "--app", "cliapp")
    assert job["id"] in table.stdout and "Finished" in table.stdout and "normal" in table.stdout
    shown = corral(master, "job", "show", job["id"])
    assert shown.returncode == 0 and "tasks (3)" in shown.stdout
    tasks = as_json(master, "task", "ls", "--job", job["id"], "--all")
    assert len(tasks) == 3
    detail = corral(master, "task", "show", tasks[0]["id"])
    assert "Started" in detail.stdout and "Finished" in detail.stdout


def test_json_submit_from_stdin_and_service_commands(master: MasterProcess) -> None:
    result = corral(
        master, "--json", "job", "submit", "-f", "-", stdin=json.dumps(service_job(2, application="cliweb"))
    )
    assert result.returncode == 0, result.stderr
    job = json.loads(result.stdout)
    wait_for(lambda: len(master.tasks(job["id"], ["Started"])) == 2, what="2 started")
    assert corral(master, "job", "resize", job["id"], "--desired", "3").returncode == 0
    wait_for(lambda: len(master.tasks(job["id"], ["Started"])) == 3, what="3 started")
    assert as_json(master, "job", "show", job["id"])["descriptor"]["service"]["capacity"]["desired"] == 3
    assert corral(master, "job", "disable", job["id"]).returncode == 0
    wait_for(lambda: master.tasks(job["id"], ["Started"]) == [], what="disabled")
    assert corral(master, "job", "enable", job["id"]).returncode == 0
    task = wait_for(lambda: master.tasks(job["id"], ["Started"]), what="enabled")[0]
    assert corral(master, "task", "kill", task["id"], "--shrink").returncode == 0
    assert corral(master, "job", "kill", job["id"]).returncode == 0
    assert master.wait_job_finished(job["id"])["reason"] == "killed"


def test_hosts_and_why(master: MasterProcess) -> None:
    hosts = as_json(master, "host", "ls")
    assert {h["id"] for h in hosts} == {"sim-0000", "sim-0001"}
    assert "sim-0000" in corral(master, "host", "ls").stdout
    big = batch_job(["true"], application="toobig")
    big["container"]["resources"]["memory_mb"] = 500_000
    job = master.submit(big)
    task = wait_for(lambda: (t := master.tasks(job["id"])) and t[0].get("pending") and t[0], what="pending")
    why = corral(master, "why", task["id"])
    assert "pending" in why.stdout and "memory" in why.stdout
    assert "resources:memory: 2 hosts rejected" in why.stdout
    corral(master, "job", "kill", job["id"])


def test_errors_are_one_line_with_the_code_and_a_non_zero_exit(master: MasterProcess, tmp_path: Path) -> None:
    missing = corral(master, "job", "show", "nope")
    assert missing.returncode == 1 and "job_not_found" in missing.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**batch_job(["true"]), "owner": {"team_email": "nobody"}}))
    invalid = corral(master, "job", "submit", "-f", str(bad))
    assert (
        invalid.returncode == 1 and "invalid_email" in invalid.stderr and "owner.team_email" in invalid.stderr
    )
    nowhere = corral(f"http://127.0.0.1:{free_port()}", "job", "ls")
    assert nowhere.returncode == 2 and "cannot reach the master" in nowhere.stderr
    unreadable = corral(master, "job", "submit", "-f", str(tmp_path / "missing.yaml"))
    assert unreadable.returncode == 2 and "Traceback" not in unreadable.stderr
    assert "cannot read" in unreadable.stderr and "No such file or directory" in unreadable.stderr


def test_status_reports_the_master(master: MasterProcess) -> None:
    status = json.loads(corral(master, "status").stdout)
    assert status["leader"] is True and status["hosts"] == {"ready": 2}


def test_capacity_groups_modes_and_drain_from_the_command_line(master: MasterProcess) -> None:
    made = corral(master, "group", "create", "render", "--tier", "critical", "--cpu", "1", "--limit-cpu", "1")
    assert made.returncode == 0, made.stderr
    listing = corral(master, "group", "ls")
    assert "render" in listing.stdout and "critical" in listing.stdout
    assert as_json(master, "group", "show", "render")["limit"]["cpu"] == 1

    spec = batch_job(["sleep", "100"], size=2, application="rendering")
    spec["capacity_group"] = "render"
    spec["container"]["resources"]["cpu"] = 1
    job = master.submit(spec)
    waiting = wait_for(
        lambda: [t for t in master.tasks(job["id"], ["Accepted"]) if t.get("pending")],
        what="one task held back",
    )
    why = corral(master, "why", waiting[0]["id"])
    assert "capacity group `render` at its limit" in why.stdout

    assert "spread" in corral(master, "scheduler", "mode", "critical", "spread").stdout
    assert as_json(master, "scheduler", "show")["modes"]["critical"] == "spread"
    bad = corral(master, "scheduler", "mode", "critical", "sideways")
    assert bad.returncode == 1 and "mode" in bad.stderr

    assert "draining" in corral(master, "host", "drain", "sim-0001").stdout
    assert as_json(master, "host", "ls")[1]["draining"] is True
    assert "taking new tasks" in corral(master, "host", "undrain", "sim-0001").stdout

    in_use = corral(master, "group", "delete", "render")
    assert in_use.returncode == 1 and "capacity_group_in_use" in in_use.stderr
    corral(master, "job", "kill", job["id"])
    master.wait_job_finished(job["id"])
    assert corral(master, "group", "delete", "render").returncode == 0


def test_updating_a_service_from_the_command_line(master: MasterProcess, tmp_path: Path) -> None:
    spec = service_job(2, ["sh", "-c", "echo v1; while true; do sleep 60; done"], application="cliupdate")
    spec["container"]["health"] = {
        "readiness": {"exec": {"command": ["true"]}, "interval_s": 0.2, "timeout_s": 0.2}
    }
    spec["update_strategy"] = {"rolling": {"canaries": 1, "min_healthy_s": 0.2, "progress_deadline_s": 30}}
    job_id = master.submit(spec)["id"]
    wait_for(lambda: len([t for t in master.tasks(job_id, ["Started"]) if t.get("ready")]) == 2, 30)
    spec["container"]["command"] = ["sh", "-c", "echo v2; while true; do sleep 60; done"]
    path = tmp_path / "v2.yaml"
    path.write_text(yaml.safe_dump(spec))

    updated = corral(master, "job", "update", job_id, "-f", str(path))
    assert updated.returncode == 0 and "version 2 rolling out from version 1 (canary)" in updated.stdout, (
        updated
    )
    wait_for(lambda: as_json(master, "job", "status", job_id)["waiting_for"].startswith("promotion"), 30)
    status = corral(master, "job", "status", job_id)
    assert "rollout 1 -> 2: canary" in status.stdout and "DESIRED" in status.stdout, status.stdout
    assert "promoted" in corral(master, "job", "promote", job_id).stdout
    wait_for(lambda: as_json(master, "job", "status", job_id)["rollout"]["phase"] == "succeeded", 30)
    history = corral(master, "job", "history", job_id)
    assert "* 2" in history.stdout and "healthy" in history.stdout, history.stdout
    back = corral(master, "job", "rollback", job_id, "--to", "1")
    assert back.returncode == 0 and "version 3" in back.stdout, back
    # A rollback is a rollout like any other: its canary waits for a promotion too.
    wait_for(lambda: as_json(master, "job", "status", job_id)["waiting_for"].startswith("promotion"), 30)
    corral(master, "job", "promote", job_id)
    wait_for(lambda: as_json(master, "job", "status", job_id)["rollout"]["phase"] == "succeeded", 30)
    drain = corral(master, "host", "drain", "--status", "sim-0000")
    assert drain.returncode == 0 and "not draining" in drain.stdout, drain
    corral(master, "job", "kill", job_id)
