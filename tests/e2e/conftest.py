"""End-to-end tests run real containers: the Docker Engine must answer (``make test`` sets it up)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.support.cluster import MasterProcess
from tests.support.docker_node import IMAGE, Registry


@pytest.fixture(scope="session", autouse=True)
def docker_engine() -> None:
    client = docker.from_env()
    try:
        client.ping()
        client.images.get(IMAGE)  # built locally by scripts/ensure-docker.sh
    except Exception as e:
        pytest.fail(
            f"the end-to-end tests need a Docker Engine and {IMAGE}: run scripts/ensure-docker.sh ({e})"
        )
    finally:
        client.close()


@pytest.fixture
def master(tmp_path: Path) -> Iterator[MasterProcess]:
    m = MasterProcess(tmp_path / "master").start()
    try:
        yield m
    except BaseException:
        print("---- master log ----\n" + m.log()[-20000:])
        raise
    finally:
        m.close()


@pytest.fixture(scope="session")
def registry() -> Iterator[Registry]:
    r = Registry().start()
    yield r
    r.close()
