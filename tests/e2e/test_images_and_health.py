"""Images from a registry, image garbage collection, and host health."""

from __future__ import annotations

import docker
import pytest

from tests.support.cluster import MasterProcess, free_port, wait_for
from tests.support.docker_node import Registry, containers, node, unique_host
from tests.support.specs import batch_job

pytestmark = pytest.mark.e2e


def job_with_image(ref: str, command: list[str]) -> dict:
    name, tag = ref.rsplit(":", 1)
    spec = batch_job(command)
    spec["container"]["image"] = {"name": name, "tag": tag}
    spec["container"]["resources"].update(cpu=0.2, memory_mb=64, shm_mb=8)
    return spec


def image_present(ref: str) -> bool:
    client = docker.from_env()
    try:
        client.images.get(ref)
        return True
    except docker.errors.ImageNotFound:
        return False
    finally:
        client.close()


def test_an_image_pushed_to_the_registry_is_pulled_run_and_collected(
    master: MasterProcess, registry: Registry
) -> None:
    ref = registry.push("corral/pulled", f"v{free_port()}")
    assert not image_present(ref)
    with node(master.url, unique_host("e2e-pull"), log_retention_s=0.5, image_gc_age_s=1.0):
        job = master.submit(job_with_image(ref, ["sh", "-c", "echo pulled"]))
        assert master.wait_job_finished(job["id"], timeout=60)["reason"] == "normal"
        [task] = master.tasks(job["id"])
        assert task["exit_code"] == 0
        # Unused once its container is gone, the image this agent pulled is collected.
        wait_for(lambda: not image_present(ref), 30, what="the pulled image to be collected")

        missing = master.submit(job_with_image(f"{registry.address}/corral/nothing:v1", ["true"]))
        assert master.wait_job_finished(missing["id"], timeout=60)["reason"] == "failed"
        [gone] = master.tasks(missing["id"])
        assert gone["reason"] == "invalid_request" and "not found" in gone["reason_detail"]


def test_an_image_in_use_is_never_collected(master: MasterProcess, registry: Registry) -> None:
    ref = registry.push("corral/busy", f"v{free_port()}")
    host = unique_host("e2e-inuse")
    with node(master.url, host, log_retention_s=0.5, image_gc_age_s=0.0):
        job = master.submit(job_with_image(ref, ["sleep", "100"]))
        wait_for(lambda: master.tasks(job["id"], ["Started"]), 60, what="started")
        host_images = wait_for(
            lambda: [
                h for h in master.http.get("/api/v1/hosts").json()["items"] if ref in h.get("images", [])
            ],
            30,
            what="the host to report the image",
        )
        assert host_images

        # Proof that image collection ran while the image was in use, rather than a fixed wait: a
        # housekeeping pass removes finished containers, then unused images. Two passes seen removing a
        # container each mean the first one's image collection ran, and left this image alone.
        def a_housekeeping_pass() -> None:
            once = master.submit(job_with_image("corral/busybox:latest", ["true"]))  # never collected
            master.wait_job_finished(once["id"], timeout=60)
            [task] = master.tasks(once["id"])
            wait_for(
                lambda: all(f"/corral-{task['id']}" not in c["Names"] for c in containers(host)),
                30,
                what="housekeeping to remove a finished container",
            )

        a_housekeeping_pass()
        a_housekeeping_pass()
        assert image_present(ref)
        master.http.post(f"/api/v1/jobs/{job['id']}/kill")
    client = docker.from_env()  # the node removed its containers: the image is ours to remove
    try:
        client.images.remove(ref)
    finally:
        client.close()


def test_an_unhealthy_host_gets_no_new_tasks_and_recovers(master: MasterProcess) -> None:
    port = free_port()
    host = unique_host("e2e-health")
    with node(master.url, host, registry=f"127.0.0.1:{port}"):

        def state() -> dict:
            return master.http.get(f"/api/v1/hosts/{host}").json()

        unhealthy = wait_for(lambda: (s := state())["healthy"] is False and s, 30, what="unhealthy")
        assert "registry" in unhealthy["health_detail"] and unhealthy["schedulable"] is False
        job = master.submit(job_with_image("corral/busybox:latest", ["true"]))
        waiting = wait_for(
            lambda: (t := master.tasks(job["id"])) and t[0].get("pending") and t[0], 30, what="pending"
        )
        assert waiting["pending"]["reason"] == "no_hosts"
        registry = Registry(port).start()  # the registry the health check looks for comes up
        try:
            wait_for(lambda: state()["healthy"], 30, what="the host to recover")
            assert master.wait_job_finished(job["id"], timeout=60)["reason"] == "normal"
        finally:
            registry.close()
