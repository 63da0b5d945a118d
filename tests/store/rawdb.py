"""Direct access to a store's database, to set up states Corral itself would never write."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, create_engine


@contextmanager
def raw(url: str) -> Iterator[Connection]:
    """One transaction on the database at ``url``, committed on leaving the block."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            yield conn
    finally:
        engine.dispose()
