"""Persistence behind the ``Store`` protocol: SQLite (embedded default) and, later, PostgreSQL (HA).

The store is synchronous and knows nothing of loops: the control layer calls it from a worker thread,
in batched transactions. Opening a store checks and migrates its schema; any doubt is an error.
"""

from corral.store.lease import FencedError, Lease
from corral.store.protocol import JobQuery, LoadedState, Store, StoreError, TaskQuery, WriteBatch
from corral.store.sql import SqlStore, open_store

__all__ = [
    "FencedError",
    "JobQuery",
    "Lease",
    "LoadedState",
    "SqlStore",
    "Store",
    "StoreError",
    "TaskQuery",
    "WriteBatch",
    "open_store",
]
