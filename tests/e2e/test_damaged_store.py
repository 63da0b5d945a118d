"""A damaged store is never trusted (issue 11, point 2), with real containers at stake.

A master runs five containers through a Docker agent, is stopped, its store is damaged, and it is started
again next to the same agent: it must refuse to lead (exit 3, saying what is wrong and how to restore) and
not one container may die. And a fleet of ten hosts, each running five containers the master has no
record of, gets no kill at all and exactly one alert: the budget is fleet-wide and judged on the whole
picture.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.cluster import MasterProcess, wait_for
from tests.support.docker_node import DockerNode, containers, node, remove_containers, unique_host
from tests.support.specs import service_job

pytestmark = pytest.mark.e2e

FIVE = 5


def busybox_service(desired: int) -> dict:
    spec = service_job(desired, ["sleep", "100000"])
    spec["container"]["image"] = {"name": "corral/busybox", "tag": "latest"}
    spec["container"]["resources"].update(cpu=0.05, memory_mb=16, shm_mb=1)
    return spec


@pytest.fixture
def five_running(tmp_path: Path) -> Iterator[tuple[MasterProcess, DockerNode, str]]:
    """A master (stopped when yielded) whose store held a service of five containers, still running."""
    host = unique_host("e2e-damage")
    master = MasterProcess(tmp_path / "master")
    master.start()
    with node(master.url, host) as agent:
        try:
            job = master.submit(busybox_service(FIVE))["id"]
            wait_for(lambda: len(master.tasks(job, ["Started"])) == FIVE, 90, what="five containers running")
            assert len(containers(host, running_only=True)) == FIVE
            master.stop()
            yield master, agent, job
        except BaseException:
            print("---- master log ----\n" + master.log()[-20000:])
            raise
        finally:
            master.close()
            remove_containers(host)


def damage(master: MasterProcess, *statements: str) -> None:
    with sqlite3.connect(master.data_dir / "corral.db") as db:
        for statement in statements:
            db.execute(statement)


def refuses(master: MasterProcess) -> str:
    """Start the master again: it must exit 3 by itself, and say why in its log."""
    master.start(wait=False)
    assert master.proc is not None
    code = master.proc.wait(60)
    log = master.log()
    assert code == 3, f"the master exited {code}, not 3:\n{log[-5000:]}"
    return log


# name -> (the SQL that damages the store, given the job's id; what the refusal must name)
DAMAGES: dict[str, tuple[Callable[[str], list[str]], Callable[[str], str]]] = {
    "tasks truncated": (lambda job: ["DELETE FROM corral_tasks"], lambda job: "corral_tasks"),
    "tasks and jobs truncated": (
        lambda job: ["DELETE FROM corral_tasks", "DELETE FROM corral_jobs", "DELETE FROM corral_job_labels"],
        lambda job: "corral_jobs",
    ),
    "a job row deleted, its tasks left": (
        lambda job: [f"DELETE FROM corral_jobs WHERE id = '{job}'"],
        lambda job: job,
    ),
    "an unknown task state": (
        lambda job: [
            f"UPDATE corral_tasks SET state = 'Exploded' WHERE id = "
            f"(SELECT id FROM corral_tasks WHERE job_id = '{job}' LIMIT 1)"
        ],
        lambda job: "Exploded",
    ),
    "a body that is not JSON": (
        lambda job: [f"UPDATE corral_jobs SET body = '{{\"broken\": ' WHERE id = '{job}'"],
        lambda job: job,
    ),
    "a dropped table": (lambda job: ["DROP TABLE corral_tasks"], lambda job: "corral_tasks"),
}


@pytest.mark.parametrize("name", list(DAMAGES))
def test_a_damaged_store_is_not_led_and_no_container_dies(
    name: str, five_running: tuple[MasterProcess, DockerNode, str]
) -> None:
    master, agent, job = five_running
    statements, named = DAMAGES[name]
    damage(master, *statements(job))
    log = refuses(master)
    assert named(job) in log, log[-5000:]
    assert "corral admin restore" in log or "corral admin verify" in log, log[-5000:]
    # The agent kept trying to reach a master that never led: all five containers still run.
    assert len(containers(agent.host_id, running_only=True)) == FIVE


def test_ten_hosts_with_five_unknown_containers_each_lose_none_and_raise_one_alert(tmp_path: Path) -> None:
    """The store is lost outright (a new, empty one: nothing to check it against), the fleet is not."""
    hosts = [unique_host(f"e2e-fleet{i}") for i in range(10)]
    # The whole picture first: a new leader judges unknown tasks only after it settled; 20 s is well over 5x
    # what ten agents reconnecting with a 0.5 s backoff need (they are all back within 2 s here).
    env = {"CORRAL_UNKNOWN_TASK_SETTLE_S": "20"}
    first = MasterProcess(tmp_path / "first", env).start()
    nodes = [DockerNode(first.url, host) for host in hosts]
    try:
        for host in hosts:
            spec = busybox_service(FIVE)
            spec["container"]["hard_constraints"] = {"host": host}
            first.submit(spec)
        wait_for(
            lambda: all(len(containers(h, running_only=True)) == FIVE for h in hosts),
            180,
            what="fifty containers running",
        )
        first.kill()
        second = MasterProcess(tmp_path / "second", env, port=first.port).start()
        try:
            alerts = wait_for(
                lambda: second.http.get("/api/v1/admin/alerts").json()["items"], 60, what="an alert"
            )
            assert len(alerts) == 1, alerts
            assert alerts[0]["kind"] == "unknown_tasks"
            assert len(alerts[0]["unknown_tasks"]) == 10 * FIVE
            assert sorted(alerts[0]["hosts"]) == sorted(hosts)
            assert all(len(containers(h, running_only=True)) == FIVE for h in hosts)
            metrics = second.http.get("/metrics").text
            assert "corral_reconciliation_alerts 1.0" in metrics
            assert "corral_agent_kills_total" not in metrics or "corral_agent_kills_total 0.0" in metrics
        finally:
            print("---- second master log ----\n" + second.log()[-8000:])
            second.close()
    finally:
        for n in nodes:
            n.close()
        first.close()
        for host in hosts:
            remove_containers(host)
