"""Idempotency keys: what a creating request with an ``Idempotency-Key`` made, so a retry finds it again.

A client that cannot tell whether its request was taken (the connection dropped after the master
answered) sends it again with the same key. The record says which principal used the key, a digest of
what was asked (the same key with a different body is a mistake, not a retry) and what was created.
The record is kept with what it created, in the same store transaction, so it survives a failover.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    principal: str  # who used the key: keys are scoped per principal, so two clients cannot collide
    key: str  # the client's Idempotency-Key
    request_hash: str  # a digest of the request body: a reused key with another body is refused
    resource: str  # what was created, e.g. "job"
    resource_id: str  # its id
    created_at: float  # when the key was first used (records older than the retention are pruned)

    @property
    def ident(self) -> str:
        """One string naming the record (principal and key), for logs and the writer's bookkeeping."""
        return f"{self.principal}/{self.key}"
