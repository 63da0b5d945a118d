"""The canary's job: tiny, tagged, and its image reference read the way Docker reads one."""

from __future__ import annotations

import pytest

from corral.control.canary import APPLICATION, canary_job


@pytest.mark.parametrize(
    ("image", "name", "tag"),
    [
        ("corral/busybox:latest", "corral/busybox", "latest"),
        ("busybox", "busybox", "latest"),
        ("registry.local:5000/canary", "registry.local:5000/canary", "latest"),
        ("registry.local:5000/canary:v2", "registry.local:5000/canary", "v2"),
    ],
)
def test_canary_image_reference(image: str, name: str, tag: str) -> None:
    job = canary_job(image)
    assert (job.container.image.name, job.container.image.tag) == (name, tag)
    assert job.application == APPLICATION and job.labels == {"canary": "true"}
    assert job.container.resources.cpu <= 0.01 and job.batch is not None and job.batch.size == 1
