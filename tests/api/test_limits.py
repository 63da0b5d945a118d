"""API edges (issue 11, point 7): request body limit and slow clients, against a real server.

The master runs in its own process, built as ``corral master`` builds it — the application from
``create_app`` served by ``build_server`` (body limit, header and body deadlines) — on a loopback port,
with a 2 s request deadline so that slow clients show in seconds. Raw sockets play the clients that no
HTTP library would be: a 100 MB body, half a request line, a body that never ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import selectors
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.support.cluster import ADMIN_TOKEN, AGENT_TOKEN, AUTH, MasterProcess, wait_for
from tests.support.specs import batch_job

pytestmark = pytest.mark.integration

DEADLINE_S = 2.0
MARGIN = 5  # every timing window: 5x what it should take
LIMIT = 1024 * 1024  # the default body limit

# The server as ``corral master`` builds it (cli/servers.py ``_server``), from the application up.
RUNNER = """
import asyncio, sys
from dataclasses import replace
from pathlib import Path

from corral.api.app import create_app
from corral.api.server import build_server
from corral.control.config import MasterConfig, from_env

config = replace(from_env(MasterConfig()), data_dir=Path(sys.argv[1]), listen_port=int(sys.argv[2]))
server = None

def fatal(_error):
    server.should_exit = True

server = build_server(create_app(config, on_fatal=fatal), config, "info")
asyncio.run(server.serve())
"""


class LimitedMaster(MasterProcess):
    def start(self, wait: bool = True) -> LimitedMaster:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", RUNNER, str(self.data_dir), str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
            )
        if wait:
            self.wait_ready()
        return self

    def rss_bytes(self) -> int:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LimitedMaster]:
    m = LimitedMaster(
        Path(tmp_path_factory.mktemp("limits")), env={"CORRAL_REQUEST_TIMEOUT_S": str(DEADLINE_S)}
    ).start()
    try:
        yield m
    except BaseException:
        print("---- master log ----\n" + m.log()[-20000:])
        raise
    finally:
        m.close()


def connect(master: MasterProcess) -> socket.socket:
    return socket.create_connection(("127.0.0.1", master.port), timeout=DEADLINE_S * MARGIN)


def head(path: str, length: int | None = None, auth: bool = True, **extra: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    if auth:
        lines.append(f"Authorization: Bearer {ADMIN_TOKEN}")
    if length is not None:
        lines.append(f"Content-Length: {length}")
    lines += [f"{k.replace('_', '-')}: {v}" for k, v in extra.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP response (status, headers, body by Content-Length); the socket's timeout bounds the wait."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed before a response; got {data!r}")
        data += chunk
    header_block, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = header_block.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (h.split(":", 1) for h in header_lines)}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(status_line.split()[1]), headers, body


def closed_by_server(sock: socket.socket, within_s: float) -> bool:
    """True when the server closes ``sock`` (EOF or reset) within ``within_s``; whatever it sends first
    (a response) is read and dropped."""
    deadline = time.monotonic() + within_s
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            if not sock.recv(65536):
                return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except TimeoutError:
            return False
    return False


# -- body limit ------------------------------------------------------------------------------------


def test_a_100_mb_content_length_is_refused_at_once_and_the_body_is_not_kept(master: LimitedMaster) -> None:
    before = master.rss_bytes()
    sock = connect(master)
    sent = 0
    stop = threading.Event()

    def blast() -> None:  # a client that writes its whole body without waiting for an answer
        nonlocal sent
        chunk = b"x" * 65536
        with contextlib.suppress(OSError):
            while sent < 100 * 2**20 and not stop.is_set():
                sock.sendall(chunk)
                sent += len(chunk)

    started = time.monotonic()
    sock.sendall(head("/api/v1/jobs", 100 * 2**20))
    sender = threading.Thread(target=blast)
    sender.start()
    try:
        status, headers, body = read_response(sock)
        elapsed = time.monotonic() - started
        assert closed_by_server(sock, DEADLINE_S * MARGIN)
    finally:
        stop.set()
        sender.join(30)
        sock.close()
    assert status == 413
    assert json.loads(body)["code"] == "body_too_large"
    assert headers["connection"] == "close"
    assert elapsed < DEADLINE_S * MARGIN, elapsed  # answered, not timed out; ``sent`` proves it was early
    assert sent < 50 * 2**20, f"the server went on reading: {sent} bytes taken"
    grown = master.rss_bytes() - before
    assert grown < 16 * 2**20, f"the server grew by {grown} bytes"
    assert master.http.get("/readyz").status_code == 200


def test_a_client_waiting_for_100_continue_gets_the_413_instead(master: LimitedMaster) -> None:
    with connect(master) as sock:
        sock.sendall(head("/api/v1/jobs", 100 * 2**20, Expect="100-continue"))
        status, _, body = read_response(sock)
        assert status == 413, body  # and no "100 Continue" before it: the body is never asked for
        assert json.loads(body)["code"] == "body_too_large"
        assert closed_by_server(sock, DEADLINE_S * MARGIN)


def test_an_oversize_body_is_refused_even_before_authentication(master: LimitedMaster) -> None:
    with connect(master) as sock:
        sock.sendall(head("/api/v1/jobs", LIMIT + 1, auth=False))
        status, _, body = read_response(sock)
        assert status == 413, body


def test_a_chunked_body_over_the_limit_is_cut_off_with_413(master: LimitedMaster) -> None:
    sent = 0

    def body() -> Iterator[bytes]:
        nonlocal sent
        yield b'{"padding": "'
        while sent < 4 * LIMIT:
            sent += 16384
            yield b"x" * 16384
        yield b'"}'

    with httpx.Client(base_url=master.url, headers=AUTH, timeout=DEADLINE_S * MARGIN) as http:
        r = http.post("/api/v1/jobs", content=body(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413, r.text
    assert r.json()["code"] == "body_too_large"
    assert r.headers["connection"] == "close"


def test_a_chunked_body_over_the_limit_is_refused_when_it_passes_the_limit(master: LimitedMaster) -> None:
    """Sent by hand, chunk by chunk: the 413 comes once the limit is passed, not at the end of the body."""
    with connect(master) as sock:
        sock.sendall(head("/api/v1/jobs", None, Transfer_Encoding="chunked"))
        chunk = b"x" * 65536
        for _ in range(LIMIT // len(chunk) + 1):
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        # the body has not ended (no last chunk): the server answers anyway
        status, headers, body = read_response(sock)
        assert status == 413, body
        assert json.loads(body)["code"] == "body_too_large"
        assert headers["connection"] == "close"
        assert closed_by_server(sock, DEADLINE_S * MARGIN)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_body_at_the_limit_is_read_and_answered(master: LimitedMaster, chunked: bool) -> None:
    """Exactly at the limit: parsed (a 400 for the unknown field), not refused."""
    content = json_of_size(LIMIT)
    with httpx.Client(base_url=master.url, headers=AUTH, timeout=DEADLINE_S * MARGIN) as http:
        payload: Any = iter([content[: LIMIT // 2], content[LIMIT // 2 :]]) if chunked else content
        r = http.post("/api/v1/jobs", content=payload, headers={"Content-Type": "application/json"})
        assert r.status_code == 400, r.text
        assert r.json()["code"] in ("missing_field", "unknown_field")  # it was parsed
        # and the connection is as good as before: a job is still accepted on it
        assert http.post("/api/v1/jobs", json=batch_job(["true"])).status_code == 201


def json_of_size(size: int) -> bytes:
    """A JSON object of exactly ``size`` bytes: an unknown field holding strings of 1000 bytes or fewer
    (one string of a megabyte would be refused for its length, not for the field)."""
    strings = [b'"' + b"x" * 1000 + b'"'] * (size // 1003)
    content = b'{"padding": [' + b",".join(strings) + b"]}"
    while len(content) > size:
        strings.pop()
        content = b'{"padding": [' + b",".join(strings) + b"]}"
    rest = size - len(content) - 3  # one more string: a comma and two quotes
    content = b'{"padding": [' + b",".join([*strings, b'"' + b"x" * rest + b'"']) + b"]}"
    assert len(content) == size
    return content


# -- slow clients ----------------------------------------------------------------------------------

PARTIAL_REQUESTS = [
    b"",  # connects and says nothing
    b"GET /heal",  # half a request line
    b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ",  # half the headers
]


def test_250_slow_header_connections_are_closed_while_others_are_served(master: LimitedMaster) -> None:
    socks: list[socket.socket] = []
    for i in range(250):
        sock = socket.create_connection(("127.0.0.1", master.port), timeout=DEADLINE_S * MARGIN)
        sock.sendall(PARTIAL_REQUESTS[i % len(PARTIAL_REQUESTS)])
        socks.append(sock)
    opened = time.monotonic()
    # 25 of those in the middle of a header send one more byte of it every 0.2 s: a deadline that any
    # byte put off again would never come
    trickling = socks[2::3][:25]
    open_socks = set(socks)
    selector = selectors.DefaultSelector()
    for sock in socks:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
    served = 0
    last_trickle = 0.0
    try:
        with httpx.Client(base_url=master.url, timeout=DEADLINE_S * MARGIN) as http:
            while open_socks and time.monotonic() - opened < DEADLINE_S * MARGIN:
                assert http.get("/healthz").status_code == 200  # a normal client, meanwhile
                served += 1
                if time.monotonic() - last_trickle > 0.2:
                    last_trickle = time.monotonic()
                    for sock in trickling:
                        if sock in open_socks:
                            with contextlib.suppress(OSError):
                                sock.send(b"a")
                for key, _ in selector.select(timeout=0.05):
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    try:
                        data = sock.recv(4096)
                    except (ConnectionResetError, BrokenPipeError):
                        data = b""
                    if not data:  # closed by the server, without a word
                        selector.unregister(sock)
                        open_socks.discard(sock)
                    else:
                        raise AssertionError(f"a slow client got an answer: {data[:200]!r}")
        closed_after = time.monotonic() - opened
    finally:
        selector.close()
        for sock in socks:
            sock.close()
    assert not open_socks, (
        f"{len(open_socks)} of 250 slow connections still open after {DEADLINE_S * MARGIN}s"
    )
    assert closed_after >= DEADLINE_S * 0.9, f"closed after {closed_after:.1f}s: before their deadline?"
    assert served >= 3, served
    assert master.http.get("/readyz").status_code == 200


def test_a_request_sent_slowly_but_within_the_deadline_is_served(master: LimitedMaster) -> None:
    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    pieces = [request[i : i + 8] for i in range(0, len(request), 8)]
    with connect(master) as sock:
        for piece in pieces:  # over about a quarter of the deadline
            sock.sendall(piece)
            time.sleep(DEADLINE_S / 4 / len(pieces))
        status, _, _ = read_response(sock)
    assert status == 200


def test_the_header_deadline_restarts_for_each_request_of_a_kept_alive_connection(
    master: LimitedMaster,
) -> None:
    """Several requests on one connection, together longer than the deadline, each well within it."""
    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    started = time.monotonic()
    with connect(master) as sock:
        while time.monotonic() - started < DEADLINE_S * 1.5:
            sock.sendall(request[:10])
            time.sleep(DEADLINE_S / 10)
            sock.sendall(request[10:])
            status, _, _ = read_response(sock)
            assert status == 200


def test_oversize_headers_are_a_400_and_the_connection_is_closed(master: LimitedMaster) -> None:
    with connect(master) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        with contextlib.suppress(OSError):
            for i in range(200):
                sock.sendall(b"X-Pad-%d: %s\r\n" % (i, b"a" * 1000))
        status, _, _ = read_response(sock)
        assert status == 400
        assert closed_by_server(sock, DEADLINE_S * MARGIN)


@pytest.mark.parametrize("trickle", [False, True], ids=["stalled", "trickling"])
def test_slow_bodies_get_408_and_are_closed(master: LimitedMaster, trickle: bool) -> None:
    socks = [connect(master) for _ in range(50)]
    started = time.monotonic()
    for sock in socks:
        sock.sendall(head("/api/v1/jobs", 1000) + b'{"owner": ')
    try:
        answers: list[int] = []
        pending = list(socks)
        while pending and time.monotonic() - started < DEADLINE_S * MARGIN:
            if trickle:
                for sock in pending:
                    with contextlib.suppress(OSError):
                        sock.send(b" ")
            ready, _, _ = selectors_select(pending, 0.2)
            for sock in ready:
                sock.settimeout(DEADLINE_S * MARGIN)
                status, headers, body = read_response(sock)
                assert (status, json.loads(body)["code"], headers["connection"]) == (
                    408,
                    "request_timeout",
                    "close",
                )
                assert closed_by_server(sock, DEADLINE_S * MARGIN)
                answers.append(status)
                pending.remove(sock)
        elapsed = time.monotonic() - started
    finally:
        for sock in socks:
            sock.close()
    assert len(answers) == 50, f"{50 - len(answers)} slow bodies still open after {DEADLINE_S * MARGIN}s"
    assert elapsed >= DEADLINE_S * 0.9, elapsed
    assert master.http.get("/readyz").status_code == 200


def test_a_trickled_body_that_is_never_read_does_not_hold_the_connection(master: LimitedMaster) -> None:
    """Refused before its body is read (no credential: 401), a request whose client keeps trickling the
    body: the answer closes the connection (uvicorn would otherwise keep it open for every byte)."""
    with connect(master) as sock:
        sock.sendall(head("/api/v1/jobs", 10**6, auth=False) + b"{")
        status, headers, _ = read_response(sock)
        assert status == 401
        assert headers["connection"] == "close"
        sock.setblocking(False)
        deadline = time.monotonic() + DEADLINE_S * MARGIN
        closed = False
        while time.monotonic() < deadline and not closed:
            try:
                sock.send(b" ")
                closed = sock.recv(100) == b""
            except BlockingIOError:
                pass
            except OSError:
                closed = True
            time.sleep(0.1)
        assert closed


def selectors_select(socks: list[socket.socket], timeout: float) -> tuple[list[socket.socket], None, None]:
    with selectors.DefaultSelector() as selector:
        for sock in socks:
            selector.register(sock, selectors.EVENT_READ)
        ready = [key.fileobj for key, _ in selector.select(timeout)]
    return [s for s in socks if s in ready], None, None


# -- long-lived exchanges are not requests that are late -------------------------------------------


def test_an_idle_event_stream_outlives_the_deadline(master: LimitedMaster) -> None:
    """An SSE stream reads no body and waits for its client to leave: the deadlines must leave it alone."""
    with (
        httpx.Client(base_url=master.url, headers=AUTH, timeout=DEADLINE_S * MARGIN) as http,
        http.stream("GET", "/api/v1/events", params={"snapshot": "false"}) as stream,
    ):
        assert stream.status_code == 200
        lines = stream.iter_lines()
        wait_for(lambda: "snapshot_end" in next(lines), DEADLINE_S * MARGIN, what="the snapshot's end")
        time.sleep(DEADLINE_S * 2)  # quiet for twice the deadline (the stream pings every 15 s)
        job = master.submit(batch_job(["true"], application="streamed"))
        wait_for(lambda: job["id"] in next(lines), DEADLINE_S * MARGIN, what="the job's event")


def test_an_idle_websocket_outlives_the_deadline(master: LimitedMaster) -> None:
    async def scenario() -> None:
        url = f"ws://127.0.0.1:{master.port}/api/v1/agents/stream"
        headers = {"Authorization": f"Bearer {AGENT_TOKEN}"}
        async with websockets.connect(url, additional_headers=headers) as ws:
            await asyncio.sleep(DEADLINE_S * 2)  # quiet for twice the deadline (registration allows 10 s)
            pong = await ws.ping()
            await asyncio.wait_for(pong, DEADLINE_S * MARGIN)

    asyncio.run(scenario())


# -- wiring ------------------------------------------------------------------------------------------


def test_build_server_puts_the_limits_in_place_once_and_refuses_nonsense() -> None:
    from fastapi import FastAPI

    from corral.api.limits import RequestLimits, install_limits
    from corral.api.server import HeaderDeadlineProtocol, ServerConfig, build_server
    from corral.control.config import MasterConfig

    config = MasterConfig(max_body_bytes=4096, request_timeout_s=3.0)
    bare, prepared = FastAPI(), FastAPI()
    install_limits(prepared, 4096, 3.0)
    for app in (bare, prepared):
        server = build_server(app, config, "WARNING")
        limits = [m for m in app.user_middleware if getattr(m, "cls", None) is RequestLimits]
        assert len(limits) == 1
        assert limits[0].kwargs == {"max_body_bytes": 4096, "request_timeout_s": 3.0}
        assert isinstance(server.config, ServerConfig)
        assert server.config.http is HeaderDeadlineProtocol
        assert server.config.header_timeout_s == 3.0
    with pytest.raises(ValueError, match="request_timeout_s"):
        RequestLimits(bare, 1, 0.0)
    with pytest.raises(ValueError, match="max_body_bytes"):
        RequestLimits(bare, -1, 1.0)
    with pytest.raises(ValueError, match="header_timeout_s"):
        ServerConfig(bare, header_timeout_s=0)
