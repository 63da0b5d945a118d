"""Idempotency keys of submissions: a retry with the same key and body finds the job the first request
made; the same key with another body is refused (409 ``idempotency_key_reused``).

The leader keeps recent keys in memory (a retry usually follows within seconds, and two copies of one
request may even be in flight at once) and writes each key with its job, in the same store transaction,
so a new leader finds it after a failover: a key memory does not hold is looked up in the store.
Keys are scoped per principal and kept ``retention_s`` (24 h) before the store prunes them.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from corral.domain.auth import Principal
from corral.domain.errors import ConflictError, ValidationError
from corral.domain.idempotency import IdempotencyRecord
from corral.store.protocol import AsyncKeyLookup

MAX_KEY_LENGTH = 255
MEMORY = 100_000  # recent keys held in memory; older ones are looked up in the store


def request_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def scope_of(principal: Principal) -> str:
    """Keys belong to the credential that used them (the principal's name when authentication is off)."""
    return principal.token_id or f"name:{principal.name}"


def check_key(key: str) -> None:
    if not 0 < len(key) <= MAX_KEY_LENGTH or not key.isprintable() or not key.isascii():
        raise ValidationError(
            "invalid_idempotency_key",
            f"an Idempotency-Key is 1-{MAX_KEY_LENGTH} printable ASCII characters",
            "Idempotency-Key",
        )


class IdempotencyKeys:
    """Keys memory holds, and lookups of the others grouped: the keys asked for while one store query runs
    go together in the next one (like the writer's group commit), so a burst of keyed submissions costs a
    few queries, not one each."""

    def __init__(
        self,
        find: Callable[[Sequence[tuple[str, str]]], list[IdempotencyRecord]],
        put: Callable[[IdempotencyRecord], None],
        clock: Callable[[], float],
        retention_s: float,
        find_async: AsyncKeyLookup | None = None,
    ) -> None:
        self._find = find  # the store's, run in a worker thread ...
        self._find_async = find_async  # ... unless the store offers a lookup the loop awaits itself
        self._put = put  # the writer's: the record commits with the job
        self._clock = clock
        self.retention_s = retention_s
        self._recent: OrderedDict[tuple[str, str], IdempotencyRecord] = OrderedDict()
        self._waiting: dict[tuple[str, str], asyncio.Future[IdempotencyRecord | None]] = {}
        self._reading = False
        # A thread of its own: a submission's lookup never waits in line behind slower work in the shared
        # pool (500 hosts joining at once put 500 credential writes there, and stalled submissions 3 s).
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="corral-idempotency")

    async def lookup(self, principal: Principal, key: str, body_hash: str) -> str | None:
        """The id of the job an earlier request with this key made, or None if the key is new."""
        check_key(key)
        scope = scope_of(principal)
        record = self._recent.get((scope, key))
        if record is None:
            record = await self._look_up(scope, key)
        if record is None or record.created_at < self._clock() - self.retention_s:
            return None
        if record.request_hash != body_hash:
            raise ConflictError(
                "idempotency_key_reused",
                f"Idempotency-Key {key!r} was used for a different request (it made {record.resource} "
                f"{record.resource_id}); use a new key for a new request",
                "Idempotency-Key",
            )
        return record.resource_id

    async def _look_up(self, scope: str, key: str) -> IdempotencyRecord | None:
        future = self._waiting.get((scope, key))
        if future is None:
            future = self._waiting[(scope, key)] = asyncio.get_running_loop().create_future()
            if not self._reading:
                self._reading = True
                asyncio.get_running_loop().create_task(self._read())
        return await asyncio.shield(future)

    async def _read(self) -> None:
        """Answer every waiting lookup, a group at a time, until none waits."""
        try:
            while self._waiting:
                waiting, self._waiting = self._waiting, {}
                try:
                    if self._find_async is not None:
                        found = await self._find_async(list(waiting))
                    else:
                        loop = asyncio.get_running_loop()
                        found = await loop.run_in_executor(self._thread, self._find, list(waiting))
                except Exception as e:
                    for future in waiting.values():
                        if not future.done():
                            future.set_exception(e)
                    continue
                by_pair = {(r.principal, r.key): r for r in found}
                for pair, future in waiting.items():
                    if not future.done():
                        future.set_result(by_pair.get(pair))
        finally:
            self._reading = False

    async def close(self) -> None:
        """Let the lookup thread and connection go (once the term has stopped)."""
        self._thread.shutdown(wait=False)
        if self._find_async is not None:
            await self._find_async.close()

    def remember(self, principal: Principal, key: str, body_hash: str, job_id: str) -> None:
        record = IdempotencyRecord(scope_of(principal), key, body_hash, "job", job_id, self._clock())
        self._recent[(record.principal, key)] = record
        while len(self._recent) > MEMORY:
            self._recent.popitem(last=False)
        self._put(record)

    def forget(self, principal: Principal, key: str) -> None:
        self._recent.pop((scope_of(principal), key), None)

    def load(self, records: list[IdempotencyRecord]) -> None:
        for record in records[-MEMORY:]:
            self._recent[(record.principal, record.key)] = record
