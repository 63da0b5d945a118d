"""Persistence behind the ``Store`` protocol: SQLite (embedded default) and PostgreSQL (HA).

The store is synchronous and knows nothing of loops: the control layer calls it from a worker thread,
in batched transactions. Opening a store checks and migrates its schema; loading it checks its integrity;
every write carries its leader's epoch and is fenced. Any doubt is an error.
"""

from corral.store.lease import FencedError, Lease
from corral.store.protocol import (
    IntegrityRecord,
    JobQuery,
    LoadedState,
    Store,
    StoreError,
    TaskQuery,
    WriteBatch,
)
from corral.store.sql import SqlStore, open_store

__all__ = [
    "FencedError",
    "IntegrityRecord",
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
