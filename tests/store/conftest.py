"""The ``store`` fixture: one opened store per backend, over a fresh, empty database.

Every test in tests/store runs once per entry of ``BACKENDS``. To add PostgreSQL, add "postgresql" to
``BACKENDS`` and a branch in ``database_url`` that hands out the URL of a fresh, empty database.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.store import SqlStore, open_store

BACKENDS = ("sqlite",)


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty database of the backend under test."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'corral.db'}"
    raise NotImplementedError(f"no database for backend {request.param!r}")


@pytest.fixture
def store(database_url: str) -> Iterator[SqlStore]:
    opened = open_store(database_url)
    yield opened
    opened.close()
