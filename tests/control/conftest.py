"""A real SQLite store in a temp dir for the control-plane tests that write through to it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.store import SqlStore, open_store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    opened = open_store(f"sqlite:///{tmp_path / 'corral.db'}", sqlite_synchronous="NORMAL")
    yield opened
    opened.close()
