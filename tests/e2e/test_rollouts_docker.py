"""Changing a service with real containers: a rolling update, a failing version reverted, a task whose
liveness probe fails replaced, and a drain within a disruption budget.

The services are busybox httpd in two images built here (``FROM corral/busybox`` with an index.html
saying v1 or v2). A poller asks the master every 100 ms which tasks are ready and fetches each one's
page: a task the master counts as ready must answer, and with the right version.
"""

from __future__ import annotations

import contextlib
import copy
import io
import tarfile
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import docker
import httpx
import pytest

from tests.support import cluster
from tests.support.cluster import MasterProcess, wait_for
from tests.support.docker_node import IMAGE, node, unique_host
from tests.support.specs import service_job

pytestmark = pytest.mark.e2e

WEB = "corral/rollout-web"  # tagged v1 and v2: its /www/index.html says which
SERVE = "exec httpd -f -p $CORRAL_PORT_0 -h /www"
DEADLINE_S = 60.0


def build_image(tag: str) -> str:
    """``corral/rollout-web:<tag>``, whose page says ``<tag>``: a COPY onto the local busybox image."""
    ref = f"{WEB}:{tag}"
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        for name, text in (
            ("Dockerfile", f"FROM {IMAGE}\nCOPY index.html /www/index.html\n"),
            ("index.html", f"{tag}\n"),
        ):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    client = docker.from_env()
    try:
        client.images.build(fileobj=context, custom_context=True, tag=ref, rm=True)
    finally:
        client.close()
    return ref


@pytest.fixture(scope="module")
def web_images() -> Iterator[None]:
    refs = [build_image("v1"), build_image("v2")]
    yield
    client = docker.from_env()  # the nodes have removed their containers by now
    try:
        for ref in refs:
            with contextlib.suppress(docker.errors.APIError):
                client.images.remove(ref)
    finally:
        client.close()


def web_service(desired: int, tag: str = "v1", ready_path: str = "/index.html") -> dict[str, Any]:
    spec = service_job(desired, ["sh", "-c", SERVE])
    c = spec["container"]
    c["image"] = {"name": WEB, "tag": tag}
    c["resources"].update(cpu=0.1, memory_mb=32, shm_mb=8, ports=1)
    # initial_delay_s: two failed probes before the first pass make the task unhealthy (and fail its
    # version), so httpd gets a second to come up even on a busy machine; it usually needs milliseconds.
    c["health"] = {
        "readiness": {
            "http": {"port_index": 0, "path": ready_path},
            "interval_s": 0.5,
            "timeout_s": 0.5,
            "failures": 2,
            "initial_delay_s": 1.0,
        }
    }
    spec["update_strategy"] = {
        "rolling": {"max_unavailable": 1, "max_surge": 1, "min_healthy_s": 1, "progress_deadline_s": 60}
    }
    return spec


def version_of(spec: dict[str, Any], tag: str, ready_path: str = "/index.html") -> dict[str, Any]:
    new = copy.deepcopy(spec)
    new["container"]["image"]["tag"] = tag
    new["container"]["health"]["readiness"]["http"]["path"] = ready_path
    return new


def live(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [t for t in tasks if t["state"] != "Finished" and not t.get("kill_reason")]


def ready(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [t for t in live(tasks) if t.get("ready")]


def page(http: httpx.Client, task: dict[str, Any]) -> str | None:
    """What the task's httpd serves at /index.html (None: it does not answer)."""
    try:
        answer = http.get(f"http://127.0.0.1:{task['ports'][0]}/index.html")
    except httpx.HTTPError:
        return None
    return answer.text if answer.status_code == 200 else None


@dataclass
class Serving:
    """What the poller saw: the fewest ready tasks (as the master says) and the fewest that answered."""

    polls: int = 0
    lowest_ready: int | None = None
    lowest_answering: int | None = None
    stale: int = 0  # samples left out: a task stopped between the listing and the fetch
    # Tasks the master still counted as ready after they failed to answer, or answered another version.
    broken: list[str] = field(default_factory=list)


class ServingPoller:
    """Every 100 ms: the job's ready tasks from the master, then each one's page over HTTP."""

    def __init__(self, master: MasterProcess, job_id: str) -> None:
        self.job_id = job_id
        self.api = cluster.client(base_url=master.url, timeout=10)
        self.web = httpx.Client(trust_env=False, timeout=2.0, headers={"Connection": "close"})
        self.seen = Serving()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name="serving-poller")
        self._thread.start()

    def tasks(self) -> list[dict[str, Any]]:
        answer = self.api.get("/api/v1/tasks", params={"job": self.job_id, "limit": 5000})
        answer.raise_for_status()
        items: list[dict[str, Any]] = answer.json()["items"]
        return items

    def _run(self) -> None:
        try:
            while not self._stop.wait(0.1):
                self._sample()
        except BaseException as e:  # surfaces in stop()
            self._error = e

    def _sample(self) -> None:
        seen = self.seen
        listed = ready(self.tasks())
        wrong = [t for t in listed if page(self.web, t) != f"v{t['version']}\n"]
        seen.polls += 1
        seen.lowest_ready = min(len(listed), seen.lowest_ready if seen.lowest_ready is not None else 99)
        if wrong:
            # A task stopped (or its port given to a new task) since the listing excuses itself; one the
            # master still counts as ready must have answered.
            still = {t["id"] for t in ready(self.tasks())}
            for t in wrong:
                if t["id"] in still:
                    got = page(self.web, t)
                    seen.broken.append(f"{t['id']} v{t['version']} port {t['ports'][0]} answered {got!r}")
            seen.stale += 1
            return
        seen.lowest_answering = min(
            len(listed), seen.lowest_answering if seen.lowest_answering is not None else 99
        )

    def stop(self) -> Serving:
        self._stop.set()
        self._thread.join(30)
        self.api.close()
        self.web.close()
        if self._error is not None:
            raise AssertionError(f"the poller failed: {self._error!r}") from self._error
        return self.seen


def assert_served(seen: Serving, at_least: int) -> None:
    assert not seen.broken, f"ready tasks that did not serve their version: {seen.broken}"
    assert seen.polls >= 10 and seen.polls - seen.stale >= 5, seen
    assert seen.lowest_ready is not None and seen.lowest_ready >= at_least, seen
    assert seen.lowest_answering is not None and seen.lowest_answering >= at_least, seen


def pages(master: MasterProcess, job_id: str) -> list[str]:
    with httpx.Client(trust_env=False, timeout=2.0) as http:
        return sorted(page(http, t) or "" for t in ready(master.tasks(job_id)))


def rollout(master: MasterProcess, job_id: str) -> dict[str, Any]:
    status: dict[str, Any] = master.http.get(f"/api/v1/jobs/{job_id}/rollout").json()
    return status


def phase(master: MasterProcess, job_id: str) -> str | None:
    r = rollout(master, job_id)["rollout"]
    return r["phase"] if r else None


def kill_job(master: MasterProcess, job_id: str) -> None:
    master.http.post(f"/api/v1/jobs/{job_id}/kill").raise_for_status()
    master.wait_job_finished(job_id, timeout=DEADLINE_S)


def serving(master: MasterProcess, job_id: str, count: int, version: int) -> bool:
    """``count`` tasks, all of ``version``, ready and each answering with its page."""
    tasks = live(master.tasks(job_id))
    return (
        len(tasks) == count
        and all(t["version"] == version and t.get("ready") for t in tasks)
        and pages(master, job_id) == [f"v{version}\n"] * count
    )


def test_a_rolling_update_keeps_desired_minus_max_unavailable_serving(
    master: MasterProcess, web_images: None
) -> None:
    with node(master.url, unique_host("e2e-roll")):
        spec = web_service(4, "v1")
        job_id = master.submit(spec)["id"]
        wait_for(lambda: serving(master, job_id, 4, 1), DEADLINE_S, 0.2, "4 tasks serving v1")

        poller = ServingPoller(master, job_id)
        answer = master.http.put(f"/api/v1/jobs/{job_id}/spec", json=version_of(spec, "v2"))
        assert answer.status_code == 200, answer.text
        assert answer.json()["rollout_started"] and answer.json()["version"] == 2
        wait_for(lambda: phase(master, job_id) == "succeeded", DEADLINE_S, 0.2, "the rollout to succeed")
        assert_served(poller.stop(), 3)  # desired 4 - max_unavailable 1

        wait_for(lambda: serving(master, job_id, 4, 2), DEADLINE_S, 0.2, "4 tasks serving v2")
        versions = master.http.get(f"/api/v1/jobs/{job_id}/versions").json()["items"]
        assert [(v["number"], v["image"], v["current"]) for v in versions] == [
            (2, f"{WEB}:v2", True),
            (1, f"{WEB}:v1", False),
        ]
        kill_job(master, job_id)


def test_a_version_that_never_becomes_ready_is_reverted(master: MasterProcess, web_images: None) -> None:
    with node(master.url, unique_host("e2e-revert")):
        spec = web_service(4, "v1")
        job_id = master.submit(spec)["id"]
        wait_for(lambda: serving(master, job_id, 4, 1), DEADLINE_S, 0.2, "4 tasks serving v1")

        # Version 2 serves v2, but its readiness probe asks for a page it does not have (404).
        poller = ServingPoller(master, job_id)
        bad = master.http.put(f"/api/v1/jobs/{job_id}/spec", json=version_of(spec, "v2", "/missing.html"))
        assert bad.status_code == 200, bad.text
        assert bad.json()["version"] == 2

        def reverted() -> dict[str, Any]:
            r = rollout(master, job_id)
            back = r["version"] == 1 and (r["rollout"] or {}).get("phase") == "succeeded"
            return r if back else {}

        status = wait_for(reverted, DEADLINE_S, 0.2, "the revert to version 1")
        assert status["rollout"]["revert_of"] == 2 and status["rollout"]["to_version"] == 1
        assert master.job(job_id)["version"] == 1
        wait_for(lambda: serving(master, job_id, 4, 1), DEADLINE_S, 0.2, "4 tasks serving v1 again")
        assert_served(poller.stop(), 3)

        versions = master.http.get(f"/api/v1/jobs/{job_id}/versions").json()["items"]
        assert [(v["number"], v["current"]) for v in versions] == [(2, False), (1, True)]
        assert versions[0]["outcome"] == "failed", versions
        history = " | ".join(e["message"] for e in master.job(job_id)["history"])
        assert "version 2 failed" in history and "404" in history, history
        kill_job(master, job_id)


def test_a_task_whose_liveness_probe_fails_is_replaced(master: MasterProcess, web_images: None) -> None:
    with node(master.url, unique_host("e2e-live")):
        spec = web_service(1, "v1")
        spec["container"]["command"] = ["sh", "-c", f"touch /tmp/alive && {SERVE}"]
        spec["container"]["health"]["liveness"] = {
            "exec": {"command": ["test", "-f", "/tmp/alive"]},
            "interval_s": 0.5,
            "timeout_s": 0.5,
            "failures": 2,
        }
        job_id = master.submit(spec)["id"]
        [first] = wait_for(
            lambda: (t := ready(master.tasks(job_id))) and t[0]["health"] == "healthy" and t,
            DEADLINE_S,
            0.2,
            "a healthy task",
        )

        client = docker.from_env()
        try:
            [container] = client.containers.list(filters={"label": f"corral.task_id={first['id']}"})
            result = container.exec_run(["rm", "/tmp/alive"])
            assert result.exit_code == 0, result.output
        finally:
            client.close()

        def finished() -> dict[str, Any]:
            [task] = [t for t in master.tasks(job_id) if t["id"] == first["id"]]
            return task if task["state"] == "Finished" else {}

        gone = wait_for(finished, DEADLINE_S, 0.2, "the unhealthy task to be stopped")
        assert gone["reason"] == "unhealthy", gone
        assert "liveness" in gone["reason_detail"] and "test -f /tmp/alive" in gone["reason_detail"], gone
        [replacement] = wait_for(
            lambda: [t for t in master.tasks(job_id, ["Started"]) if t["id"] != first["id"]],
            DEADLINE_S,
            0.2,
            "a replacement to start",
        )
        assert replacement["version"] == 1
        wait_for(lambda: serving(master, job_id, 1, 1), DEADLINE_S, 0.2, "the replacement to serve")
        kill_job(master, job_id)


def kill_time(task: dict[str, Any]) -> float:
    at: float = next(e["at"] for e in task["history"] if e["state"] in ("KillInitiated", "Finished"))
    return at


def test_a_drain_moves_a_service_within_its_availability_budget(
    master: MasterProcess, web_images: None
) -> None:
    # Two agents on one Docker Engine: each takes host ports from a range of its own.
    with (
        node(master.url, unique_host("e2e-drain-a"), port_range=(31000, 31499)),
        node(master.url, unique_host("e2e-drain-b"), port_range=(31500, 31999)),
    ):
        spec = web_service(4, "v1")
        spec["disruption_budget"] = {"availability_percentage": 75}
        job_id = master.submit(spec)["id"]
        wait_for(lambda: serving(master, job_id, 4, 1), DEADLINE_S, 0.2, "4 tasks serving v1")
        before = ready(master.tasks(job_id))
        host, _count = Counter(t["host_id"] for t in before).most_common(1)[0]
        on_host = {t["id"] for t in before if t["host_id"] == host}

        poller = ServingPoller(master, job_id)
        answer = master.http.post(f"/api/v1/hosts/{host}/drain", json={"deadline_s": 30})
        assert answer.status_code == 200, answer.text
        wait_for(
            lambda: master.http.get(f"/api/v1/hosts/{host}/drain").json()["remaining"] == 0,
            DEADLINE_S,
            0.2,
            "the drained host to empty",
        )
        wait_for(lambda: serving(master, job_id, 4, 1), DEADLINE_S, 0.2, "4 tasks serving after the drain")
        assert_served(poller.stop(), 3)  # 75 % of 4

        tasks = {t["id"]: t for t in master.tasks(job_id)}
        assert all(t["host_id"] != host for t in live(list(tasks.values())))
        moved = [tasks[i] for i in on_host]
        assert all(t["state"] == "Finished" and t["reason"] == "relocated" for t in moved), moved
        for old in moved:
            note = next(e["detail"] for e in old["history"] if e["detail"].startswith("relocating: "))
            new = tasks[note.split()[1]]
            assert new["host_id"] != host, new
            assert new["ready_since"] is not None and new["ready_since"] <= kill_time(old), (old, new)
        master.http.post(f"/api/v1/hosts/{host}/undrain").raise_for_status()
        assert master.http.get(f"/api/v1/hosts/{host}/drain").json()["draining"] is False
        kill_job(master, job_id)
