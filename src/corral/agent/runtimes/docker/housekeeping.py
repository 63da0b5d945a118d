"""Clean-up on the host: finished containers past their log retention, and images this agent pulled
that no container uses any more. Never an image a container (running or kept) still uses."""

from __future__ import annotations

import logging
import time
from datetime import datetime

import docker
from docker.errors import APIError, NotFound

from corral.agent.runtimes.docker.config import LABEL_HOST, DockerConfig

log = logging.getLogger(__name__)


def local_images(client: docker.DockerClient) -> tuple[str, ...]:
    tags = {tag for image in client.images.list() for tag in image.tags}
    return tuple(sorted(tags))


def remove_expired_containers(client: docker.DockerClient, config: DockerConfig) -> int:
    ended = client.api.containers(
        all=True, filters={"label": [f"{LABEL_HOST}={config.host_id}"], "status": ["exited", "dead"]}
    )
    removed = 0
    now = time.time()
    for summary in ended:
        try:
            state = client.api.inspect_container(summary["Id"]).get("State", {})
        except NotFound:
            continue
        finished = _timestamp(state.get("FinishedAt", ""))
        if finished is not None and now - finished > config.log_retention_s:
            try:
                client.api.remove_container(summary["Id"], force=True)
                removed += 1
            except (NotFound, APIError) as e:
                log.warning("could not remove container %s: %s", summary["Id"][:12], e)
    return removed


def remove_unused_images(
    client: docker.DockerClient, config: DockerConfig, pulled: dict[str, float]
) -> list[str]:
    """Remove images in ``pulled`` (ref -> last used) unused longer than the GC age and by no container."""
    everything = client.api.containers(all=True)
    in_use = {c["Image"] for c in everything} | {c["ImageID"] for c in everything}
    removed = []
    now = time.time()
    for ref, last_used in list(pulled.items()):
        if now - last_used < config.image_gc_age_s:
            continue
        try:
            image = client.images.get(ref)
        except NotFound:
            del pulled[ref]
            continue
        if ref in in_use or image.id in in_use:
            pulled[ref] = now  # still in use: it counts as used now
            continue
        try:
            client.images.remove(ref)
            removed.append(ref)
            del pulled[ref]
        except APIError as e:
            log.warning("could not remove image %s: %s", ref, e)
    return removed


def _timestamp(text: str) -> float | None:
    if not text or text.startswith("0001-"):
        return None
    try:
        return datetime.fromisoformat(text[:26].rstrip("Z") + "+00:00").timestamp()
    except ValueError:
        return None
