"""The store's writer process: a child that commits the leader's write batches, so that the leader's busy
event loop never stands between a commit's round trips.

A commit is a dozen round trips to the database. In a thread of the leader each of them, once answered,
waits for the interpreter lock while the event loop serves requests: measured beside one busy thread, a
batch that commits in 5 ms took 130 ms. The leader prepares a batch's rows (``batch.prepare``, where a
record that cannot be encoded is found), sends them here over a pipe and waits for one answer; the
child runs the same fenced transaction as a thread would (``batch.committer_for``), so fencing is unchanged:
the transaction carries the leader's epoch and the database refuses it once another epoch leads.

The child holds no state of its own: it reads the store URL and settings first (not from its command
line, where ``ps`` would show a password), then answers each batch with ``ok`` or the kind of error. It
ends when its pipe closes — when the leader closes the store, exits or is killed. If it dies, the write
fails as a store error (retried by the leader's writer) and the next write starts a new child.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection

from corral.store.batch import PreparedBatch, committer_for
from corral.store.engine import EngineSettings, create_store_engine
from corral.store.lease import FencedError
from corral.store.protocol import StoreError, UnwritableRecord

log = logging.getLogger(__name__)

STOP_WAIT_S = 5.0  # how long closing waits for the child to finish its batch and exit
# The child's program (not ``-m`` on this module, which the store package has imported already).
CHILD = "import sys; from corral.store.writer_process import main; sys.exit(main(sys.argv))"


class WriterProcess:
    """Commits prepared batches in a child process (callable like ``batch.committer_for``'s); thread-safe, one
    batch at a time."""

    def __init__(self, url: str, settings: EngineSettings) -> None:
        self._url = url
        self._settings = settings
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._send: Connection | None = None
        self._receive: Connection | None = None
        self._closed = False
        self._start()  # now: a standby's child is ready before it ever leads

    def __call__(self, batch: PreparedBatch) -> None:
        with self._lock:
            if self._closed:
                raise StoreError("the store is closed")
            if self._proc is None or self._proc.poll() is not None:
                self._stop()
                self._start()
            assert self._send is not None and self._receive is not None
            try:
                self._send.send(batch)
                kind, message = self._receive.recv()
            except (EOFError, OSError) as e:
                code = self._proc.poll() if self._proc is not None else None
                self._stop()
                raise StoreError(f"the store's writer process ended (exit status {code}): {e!r}") from e
        if kind == "ok":
            return
        if kind == "fenced":
            raise FencedError(message)
        if kind == "unwritable":
            raise UnwritableRecord(message)
        raise StoreError(message)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._stop()

    def _start(self) -> None:
        child_reads, to_child = os.pipe()  # batches go down this pipe ...
        from_child, child_writes = os.pipe()  # ... and outcomes come back up this one
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-c", CHILD, str(child_reads), str(child_writes)],
                pass_fds=(child_reads, child_writes),
                stdin=subprocess.DEVNULL,
            )
        finally:
            os.close(child_reads)
            os.close(child_writes)
        self._send = Connection(to_child, readable=False)
        self._receive = Connection(from_child, writable=False)
        self._send.send((self._url, self._settings))

    def _stop(self) -> None:
        for conn in (self._send, self._receive):
            if conn is not None:
                conn.close()  # the child reads end-of-file and exits
        self._send = self._receive = None
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            proc.wait(STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            log.warning("the store's writer process %d did not exit: killing it", proc.pid)
            proc.kill()
            proc.wait()


def serve(receive: Connection, send: Connection) -> None:
    """The child's loop: commit each batch received, answer with its outcome; return at end of file."""
    try:
        url, settings = receive.recv()
    except EOFError:
        return
    engine = create_store_engine(url, settings)
    commit = committer_for(engine)
    try:
        while True:
            try:
                batch = receive.recv()
            except EOFError:
                return
            send.send(_outcome(commit, batch))
    finally:
        engine.dispose()


def _outcome(commit: Callable[[PreparedBatch], None], batch: PreparedBatch) -> tuple[str, str]:
    try:
        commit(batch)
    except FencedError as e:
        return "fenced", str(e)
    except UnwritableRecord as e:
        return "unwritable", str(e)
    except Exception as e:  # the store failed: the leader retries, then steps down
        return "store", f"store write failed: {e}"
    return "ok", ""


def main(argv: list[str]) -> int:
    # Ctrl-C in a terminal reaches the whole process group: the leader decides when this child ends.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s writer-process %(levelname)s %(message)s")
    receive = Connection(int(argv[1]), writable=False)
    send = Connection(int(argv[2]), readable=False)
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the leader is gone
        serve(receive, send)
    return 0
