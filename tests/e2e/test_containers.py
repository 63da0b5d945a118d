"""Real containers through the whole of Corral: master, store, scheduler, agent, Docker."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.support.cluster import MasterProcess, wait_for
from tests.support.docker_node import containers, node, unique_host
from tests.support.specs import batch_job, service_job

pytestmark = pytest.mark.e2e


def busybox(spec: dict, memory_mb: int = 64, cpu: float = 0.2) -> dict:
    spec["container"]["image"] = {"name": "corral/busybox", "tag": "latest"}
    spec["container"]["resources"].update(cpu=cpu, memory_mb=memory_mb, shm_mb=8)
    return spec


def test_batch_exit_codes_complete_or_retry_per_policy(master: MasterProcess) -> None:
    with node(master.url, unique_host("e2e-batch")):
        job = master.submit(
            busybox(
                batch_job(
                    ["sh", "-c", "echo index $CORRAL_TASK_INDEX; exit $CORRAL_TASK_INDEX"],
                    size=2,
                    retry={"kind": "immediate", "retries": 1},
                )
            )
        )
        done = master.wait_job_finished(job["id"], timeout=60)
        assert done["reason"] == "failed" and done["reason_detail"] == "1 of 2 tasks failed"
        tasks = master.tasks(job["id"])
        zero = [t for t in tasks if t["index"] == 0]
        one = sorted((t for t in tasks if t["index"] == 1), key=lambda t: t["attempt"])
        assert [(t["reason"], t["exit_code"]) for t in zero] == [("normal", 0)]
        assert [(t["reason"], t["exit_code"], t["attempt"]) for t in one] == [
            ("failed", 1, 0),
            ("failed", 1, 1),
        ]
        logs = master.http.get(f"/api/v1/tasks/{zero[0]['id']}/logs").text
        assert logs == "index 0\n"


def test_a_service_container_killed_outside_corral_is_replaced(master: MasterProcess) -> None:
    host = unique_host("e2e-svc")
    with node(master.url, host):
        job = master.submit(busybox(service_job(2, ["sh", "-c", "while true; do sleep 1; done"])))
        first = wait_for(
            lambda: (t := master.tasks(job["id"], ["Started"])) and len(t) == 2 and t, 60, what="2 up"
        )
        victim = first[0]["id"]
        import docker

        client = docker.from_env()
        client.containers.get(f"corral-{victim}").kill()
        client.close()
        wait_for(
            lambda: (
                (t := master.tasks(job["id"], ["Started"]))
                and len(t) == 2
                and victim not in {x["id"] for x in t}
            ),
            60,
            what="a replacement",
        )
        dead = next(t for t in master.tasks(job["id"]) if t["id"] == victim)
        assert (dead["reason"], dead["exit_code"]) == ("failed", 137)
        assert len(containers(host, running_only=True)) == 2


def test_runtime_limit_oom_and_job_kill(master: MasterProcess) -> None:
    host = unique_host("e2e-limits")
    with node(master.url, host, log_retention_s=0.5):
        limited = master.submit(busybox(batch_job(["sleep", "1000"], runtime_limit_s=2)))
        hog = master.submit(
            busybox(batch_job(["sh", "-c", "x=a; while true; do x=$x$x; done"]), memory_mb=16)
        )
        done = master.wait_job_finished(limited["id"], timeout=60)
        [task] = master.tasks(limited["id"])
        assert task["reason"] == "runtime_limit_exceeded" and done["reason"] == "failed"
        assert 2.0 <= task["finished_at"] - task["started_at"] < 15
        master.wait_job_finished(hog["id"], timeout=60)
        [oom] = master.tasks(hog["id"])
        assert oom["reason"] == "failed" and "OOM" in oom["reason_detail"], oom

        service = master.submit(busybox(service_job(3, ["sh", "-c", "while true; do sleep 1; done"])))
        wait_for(lambda: len(master.tasks(service["id"], ["Started"])) == 3, 60, what="3 up")
        master.http.post(f"/api/v1/jobs/{service['id']}/kill")
        assert master.wait_job_finished(service["id"], timeout=60)["reason"] == "killed"
        ids = {f"/corral-{t['id']}" for t in master.tasks(service["id"])}
        # Stopped at once; removed once their (here short) log retention is over.
        assert not any(set(c["Names"]) & ids for c in containers(host, running_only=True))
        wait_for(
            lambda: not any(set(c["Names"]) & ids for c in containers(host)), 30, what="containers removed"
        )


def test_the_assigned_host_port_answers_from_inside_the_container(master: MasterProcess) -> None:
    with node(master.url, unique_host("e2e-port")):
        spec = busybox(service_job(1, ["sh", "-c", "httpd -f -p $CORRAL_PORT_0 -h /www"]))
        spec["container"]["resources"]["ports"] = 1
        job = master.submit(spec)
        [task] = wait_for(lambda: master.tasks(job["id"], ["Started"]), 60, what="started")
        port = task["ports"][0]
        assert 31000 <= port <= 31999

        def answers() -> str:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/index.html", timeout=1).text
            except httpx.HTTPError:
                return ""

        assert wait_for(answers, 30, what="httpd to answer") == "hello from corral\n"
        master.http.post(f"/api/v1/jobs/{job['id']}/kill")


def test_an_agent_restarted_mid_run_re_adopts_its_containers(master: MasterProcess) -> None:
    host = unique_host("e2e-restart")
    with node(master.url, host) as n:
        service = master.submit(busybox(service_job(2, ["sh", "-c", "while true; do sleep 1; done"])))
        batch = master.submit(busybox(batch_job(["sleep", "4"], size=2)))
        wait_for(lambda: len(master.tasks(service["id"], ["Started"])) == 2, 60, what="service up")
        wait_for(lambda: len(master.tasks(batch["id"], ["Started"])) == 2, 60, what="batch up")
        before = {t["id"] for t in master.tasks(service["id"])}
        n.restart()  # the agent goes away and comes back; its containers keep running
        assert master.wait_job_finished(batch["id"], timeout=60)["reason"] == "normal"
        assert [t["reason"] for t in master.tasks(batch["id"])] == ["normal", "normal"]  # nothing ran twice
        wait_for(
            lambda: {t["id"] for t in master.tasks(service["id"], ["Started"])} == before,
            30,
            what="the same service tasks Started",
        )
        assert {t["id"] for t in master.tasks(service["id"])} == before
        running = containers(host, running_only=True)
        assert sorted(c["Names"][0] for c in running) == sorted(f"/corral-{t}" for t in before)


def test_logs_follow_a_running_task(master: MasterProcess) -> None:
    with node(master.url, unique_host("e2e-logs")):
        # 3 s of output, of which the stream must follow at least 0.5 s: that leaves 2.5 s for the test to
        # see the task Started (it polls every 0.05 s) and open the stream.
        job = master.submit(
            busybox(batch_job(["sh", "-c", "for i in 1 2 3; do echo line $i; sleep 1; done"]))
        )
        [task] = wait_for(lambda: master.tasks(job["id"], ["Started"]), 60, what="started")
        started = time.monotonic()
        with master.http.stream("GET", f"/api/v1/tasks/{task['id']}/logs", params={"follow": "true"}) as r:
            assert r.status_code == 200
            text = "".join(r.iter_text())
        assert text == "line 1\nline 2\nline 3\n"
        assert time.monotonic() - started >= 0.5  # it followed the task to its end
        tail = master.http.get(f"/api/v1/tasks/{task['id']}/logs", params={"tail": 1}).text
        assert tail == "line 3\n"
        missing = master.http.get("/api/v1/tasks/nope/logs")
        assert (missing.status_code, missing.json()["code"]) == (404, "task_not_found")


def pinned(spec: dict, host: str) -> dict:
    spec["container"]["hard_constraints"] = {"host": host}
    return spec


def start_stranger(host: str, task_id: str) -> str:
    """A running container labelled as a task of ``host`` that no master ever heard of."""
    import docker

    client = docker.from_env()
    try:
        container = client.containers.run(
            "corral/busybox:latest",
            ["sleep", "600"],
            detach=True,
            init=True,
            name=f"corral-{task_id}",
            labels={"corral.managed": "true", "corral.host": host, "corral.task_id": task_id},
        )
        return str(container.id)
    finally:
        client.close()


def test_unknown_containers_follow_the_safety_rule(master: MasterProcess) -> None:
    few, many = unique_host("e2e-few"), unique_host("e2e-many")
    for i in range(2):
        start_stranger(few, f"{few}-ghost{i}")
    for i in range(8):
        start_stranger(many, f"{many}-ghost{i}")
    try:
        with node(master.url, few):
            # Two containers the master never heard of: killed.
            wait_for(lambda: containers(few, running_only=True) == [], 30, what="the ghosts to be killed")
        with node(master.url, many):
            alerts = wait_for(lambda: master.http.get("/api/v1/status").json()["alerts"], 30, what="an alert")
            assert alerts[0]["host_id"] == many and len(alerts[0]["unknown_tasks"]) == 8
            # Over the limit: nothing killed. A kill would have gone out with the alert; the orders the
            # host takes after it (a pause, then a launch it must carry out) prove it was listening since.
            time.sleep(1.0)
            after = master.submit(busybox(pinned(batch_job(["sleep", "600"]), many)))
            wait_for(
                lambda: master.tasks(after["id"], ["Started"]), 60, what="a task started after the alert"
            )
            running = {c["Names"][0] for c in containers(many, running_only=True)}
            assert {f"/corral-{many}-ghost{i}" for i in range(8)} <= running
    finally:
        from tests.support.docker_node import remove_containers

        remove_containers(few)
        remove_containers(many)


def test_task_logs_from_the_command_line(master: MasterProcess) -> None:
    import os
    import subprocess
    import sys

    with node(master.url, unique_host("e2e-cli")):
        job = master.submit(busybox(batch_job(["sh", "-c", "echo one; echo two >&2"])))
        master.wait_job_finished(job["id"], timeout=60)
        [task] = master.tasks(job["id"])
        env = {**os.environ, "CORRAL_MASTER": master.url}
        out = subprocess.run(
            [sys.executable, "-m", "corral", "task", "logs", task["id"]],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        assert sorted(out.stdout.split()) == ["one", "two"]
        tail = subprocess.run(
            [sys.executable, "-m", "corral", "task", "logs", task["id"], "--tail", "1"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert len(tail.stdout.split()) == 1
