"""Idempotent submission (issue 11, point 5): a connection cut after the master answered, and the CLI's
retry, make one job — not two.

Reproduced before: a proxy between the CLI and the leader cut the connection after the master answered;
the CLI re-sent the job to the next master, printed one id and exited 0, and two jobs existed (with a
``job_group`` the retry failed with ``job_group_conflict`` although the job was created).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.support.cluster import AUTH, MasterProcess, free_port
from tests.support.specs import batch_job

pytestmark = pytest.mark.integration


class CuttingProxy:
    """Forwards each request to the master, reads the master's whole answer, then closes the client's
    connection without passing it on: the request was taken, the client cannot know."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream = upstream_port
        self.port = free_port()
        self.cut = 0
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        with client, socket.create_connection(("127.0.0.1", self.upstream)) as upstream:
            request = _read_message(client)
            if not request:
                return
            upstream.sendall(request)
            _read_message(upstream)  # the master answered ...
            self.cut += 1  # ... and the answer is lost on the way back

    def close(self) -> None:
        self._server.close()


def _read_message(sock: socket.socket) -> bytes:
    """One HTTP/1.1 message: the headers, then Content-Length bytes of body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


@pytest.fixture
def master(tmp_path: Path) -> Iterator[MasterProcess]:
    m = MasterProcess(tmp_path / "m").start()
    try:
        yield m
    finally:
        m.close()


def submit_through(
    proxy: CuttingProxy, master: MasterProcess, job_file: Path
) -> subprocess.CompletedProcess[str]:
    # The proxy first, then the master itself: the CLI re-sends to the next master when the first cuts.
    masters = f"http://127.0.0.1:{proxy.port},{master.url}"
    env = {**os.environ, "CORRAL_MASTER": masters, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "corral", "--json", "job", "submit", "-f", str(job_file)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


@pytest.mark.parametrize("with_group", [False, True], ids=["plain", "job_group"])
def test_a_cut_connection_and_a_retry_make_exactly_one_job(
    master: MasterProcess, tmp_path: Path, with_group: bool
) -> None:
    spec = batch_job(["sleep", "10"])
    if with_group:
        spec["job_group"] = {"stack": "prod", "detail": "api", "sequence": "v001"}
    job_file = tmp_path / "job.yaml"
    job_file.write_text(yaml.safe_dump(spec))
    proxy = CuttingProxy(int(master.url.rsplit(":", 1)[1]))
    try:
        done = submit_through(proxy, master, job_file)
    finally:
        proxy.close()
    assert proxy.cut == 1  # the first attempt reached the master and its answer was lost
    assert done.returncode == 0, done.stdout + done.stderr
    printed = yaml.safe_load(done.stdout)["id"]
    jobs = master.http.get("/api/v1/jobs", params={"limit": 100}).json()["items"]
    assert [j["id"] for j in jobs] == [printed]


def test_the_same_key_with_another_body_is_refused(master: MasterProcess) -> None:
    headers = {**AUTH, "Idempotency-Key": "deploy-42"}
    first = master.http.post("/api/v1/jobs", json=batch_job(["sleep", "1"]), headers=headers)
    again = master.http.post("/api/v1/jobs", json=batch_job(["sleep", "1"]), headers=headers)
    other = master.http.post("/api/v1/jobs", json=batch_job(["sleep", "2"]), headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert (other.status_code, other.json()["code"]) == (409, "idempotency_key_reused")
    assert len(master.http.get("/api/v1/jobs").json()["items"]) == 1
    bad = master.http.post(
        "/api/v1/jobs", json=batch_job(["sleep", "1"]), headers={**AUTH, "Idempotency-Key": ""}
    )
    assert bad.status_code == 201  # an empty key is no key


def test_a_key_survives_a_restart_of_the_master(master: MasterProcess) -> None:
    headers = {**AUTH, "Idempotency-Key": "nightly-2026-11-30"}
    first = master.http.post("/api/v1/jobs", json=batch_job(["sleep", "1"]), headers=headers)
    assert first.status_code == 201
    master.kill()
    master.start()
    again = master.http.post("/api/v1/jobs", json=batch_job(["sleep", "1"]), headers=headers)
    assert (again.status_code, again.json()["id"]) == (200, first.json()["id"])
