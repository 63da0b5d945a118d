"""The ``store`` fixture: one opened store per backend, over a fresh, empty database.

Every test in tests/store runs once per entry of ``BACKENDS``: SQLite (a file in a temp dir) and
PostgreSQL (a fresh schema on the machine's server).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.store import SqlStore, open_store
from tests.support.postgres import fresh_database

BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database of the backend under test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'corral.db'}"
        return
    with fresh_database() as url:
        yield url


@pytest.fixture
def store(database_url: str) -> Iterator[SqlStore]:
    opened = open_store(database_url)
    yield opened
    opened.close()
