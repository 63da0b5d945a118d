"""Fencing without gaps (issue 11, point 3): a leader frozen mid-burst past its lease, replaced, then woken
up, never writes a row after its successor's first write — checked in the database itself.

Two masters share one PostgreSQL store, each connecting under its own ``application_name``. A test-only
audit trigger (installed here, not part of the product) records every job and task row written — the
writing connection's name, the row's ``epoch`` column and ``clock_timestamp()`` — and every change of
leader epoch. Twenty times, under a steady burst of submissions and task updates, the leader is stopped
(SIGSTOP) until the standby has taken over and written, then resumed (SIGCONT). A row by a master
written after another master took the lease and wrote is a write by a deposed leader: there must be none.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest

from corral.agent.pool import FleetSpec
from tests.support.cluster import Fleet, MasterProcess, client, wait_for
from tests.support.postgres import SERVER, fresh_database
from tests.support.specs import batch_job

pytestmark = pytest.mark.integration

CYCLES = 20
ENV = {
    "CORRAL_LEASE_TTL_S": "1.0",  # short, so that twenty takeovers fit in a minute
    "CORRAL_LEASE_POLL_S": "0.1",
    "CORRAL_LOST_AFTER_S": "60",  # agents have time to find the new leader: no task is lost meanwhile
}

AUDIT = """
CREATE TABLE {s}.test_audit (kind text, id text, epoch integer, app text, at double precision);
CREATE FUNCTION {s}.test_audit_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO {s}.test_audit VALUES (
    TG_TABLE_NAME, NEW.id::text, (to_jsonb(NEW) ->> 'epoch')::integer,
    current_setting('application_name'), extract(epoch FROM clock_timestamp()));
  RETURN NEW;
END $$;
CREATE TRIGGER test_audit_jobs AFTER INSERT OR UPDATE ON {s}.corral_jobs
  FOR EACH ROW EXECUTE FUNCTION {s}.test_audit_row();
CREATE TRIGGER test_audit_tasks AFTER INSERT OR UPDATE ON {s}.corral_tasks
  FOR EACH ROW EXECUTE FUNCTION {s}.test_audit_row();
CREATE TRIGGER test_audit_lease AFTER UPDATE ON {s}.corral_leader
  FOR EACH ROW WHEN (NEW.epoch IS DISTINCT FROM OLD.epoch) EXECUTE FUNCTION {s}.test_audit_row();
"""


@dataclass(frozen=True, slots=True)
class Write:
    kind: str  # corral_jobs, corral_tasks, or corral_leader (a new epoch: a takeover)
    ident: str
    epoch: int | None  # the row's writing epoch (None: a store without the column)
    app: str  # which master's connection wrote it
    at: float


def deposed_writes(audit: list[Write]) -> list[tuple[Write, Write]]:
    """Rows written by a master after another master took the lease and wrote its first row, paired with
    that first row: each is a write from a deposed leader."""
    found: list[tuple[Write, Write]] = []
    holder: str | None = None
    successor_first: Write | None = None  # the current holder's first row since it took the lease
    for w in sorted(audit, key=lambda w: w.at):
        if w.kind == "corral_leader":
            holder, successor_first = w.app, None
        elif w.app == holder:
            successor_first = successor_first or w
        elif successor_first is not None:
            found.append((w, successor_first))
    return found


def stale_epochs(audit: list[Write]) -> list[tuple[Write, int]]:
    """Rows carrying an epoch older than one whose first row was written before them (the same rule,
    read from the rows' own ``epoch`` column)."""
    newest = 0
    found: list[tuple[Write, int]] = []
    for w in sorted(
        (w for w in audit if w.kind != "corral_leader" and w.epoch is not None), key=lambda w: w.at
    ):
        assert w.epoch is not None
        if w.epoch < newest:
            found.append((w, newest))
        newest = max(newest, w.epoch)
    return found


class Cluster:
    def __init__(self, tmp: Path, url: str) -> None:
        self.schema = url.rsplit("%3D", 1)[1]
        self.a = MasterProcess(tmp / "a", ENV, store_url=f"{url}&application_name=master-a").start()
        with psycopg.connect(f"postgresql://{SERVER}", autocommit=True) as conn:
            conn.execute(AUDIT.format(s=self.schema))  # the tables exist: the first master made them
        self.b = MasterProcess(tmp / "b", ENV, store_url=f"{url}&application_name=master-b").start(wait=False)
        wait_for(self.b.answers, 30, what="the standby to answer")
        self.apps = {self.a.url: "master-a", self.b.url: "master-b"}
        self.urls = f"{self.a.url},{self.b.url}"

    def audit(self, since: float = 0.0) -> list[Write]:
        with psycopg.connect(f"postgresql://{SERVER}") as conn:
            rows = conn.execute(
                f"SELECT kind, id, epoch, app, at FROM {self.schema}.test_audit WHERE at >= %s", (since,)
            ).fetchall()
        return [Write(*row) for row in rows]

    def close(self) -> None:
        for m in (self.a, self.b):
            if m.proc is not None and m.proc.poll() is None:
                m.signal(signal.SIGCONT)
            m.close()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with fresh_database() as url:
        c = Cluster(tmp_path, url)
        try:
            yield c
        except BaseException:
            for m in (c.a, c.b):
                print(f"---- {m.url} ----\n" + m.log()[-15000:])
            raise
        finally:
            c.close()


class Burst:
    """Clients submitting small batch jobs to whichever master leads, for as long as the test runs; the
    agents run the tasks, so task rows change all the time too."""

    def __init__(self, urls: str, threads: int = 3) -> None:
        self.urls = urls.split(",")
        self.stop = threading.Event()
        self.accepted = 0
        self.threads = [threading.Thread(target=self._submit, args=(n,), daemon=True) for n in range(threads)]
        for t in self.threads:
            t.start()

    def _submit(self, n: int) -> None:
        spec = batch_job(["sleep", "0.3"], size=2, application="burst")
        spec["container"]["resources"].update(cpu=0.01, memory_mb=16, shm_mb=8, network_mbps=1, disk_mb=10)
        bases = self.urls[n % 2 :] + self.urls[: n % 2]
        with client(timeout=2, follow_redirects=True) as http:
            while not self.stop.is_set():
                try:
                    r = http.post(f"{bases[0]}/api/v1/jobs", json=spec)
                except httpx.TransportError:  # a frozen or deposed master: try the other one
                    bases.reverse()
                    continue
                if r.status_code == 201:
                    self.accepted += 1
                else:
                    time.sleep(0.05)

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(10)


def freeze_and_resume(cluster: Cluster, burst: Burst, leader: MasterProcess, cycle: int) -> bool:
    """Stop ``leader`` mid-burst until the standby has taken over and written, then resume it and wait
    until it has stepped down. Whether the woken leader had a write refused by the fence."""
    standby = cluster.b if leader is cluster.a else cluster.a
    accepted = burst.accepted
    wait_for(lambda: burst.accepted >= accepted + 3, 30, interval=0.01, what="the burst to run")
    frozen_at = time.time()
    leader.signal(signal.SIGSTOP)
    wait_for(standby.leads, 30, interval=0.02, what=f"cycle {cycle}: the standby to take over")
    app = cluster.apps[standby.url]
    wait_for(
        lambda: any(w.app == app and w.kind != "corral_leader" for w in cluster.audit(frozen_at)),
        30,
        interval=0.02,
        what=f"cycle {cycle}: the new leader's first write",
    )
    refusals = leader.log().count("writes refused")
    leader.signal(signal.SIGCONT)  # it wakes up mid-burst, believing it leads
    wait_for(
        lambda: leader.http.get("/api/v1/status").json()["role"] == "standby",
        30,
        what=f"cycle {cycle}: the old leader to step down",
    )
    return leader.log().count("writes refused") > refusals


def test_a_frozen_leader_never_writes_after_its_successor(cluster: Cluster) -> None:
    started = time.monotonic()
    spec = FleetSpec(count=4, cpu=64, memory_mb=1 << 20, heartbeat_backoff_max_s=0.5, ping_interval_s=1.0,
                     addresses_per_interface=64)  # fmt: skip
    fleet = Fleet(cluster.urls, spec)
    burst = Burst(cluster.urls)
    refused = 0  # cycles in which the woken leader had a write refused by the fence
    try:
        fleet.wait_connected()
        leader = wait_for(
            lambda: next((m for m in (cluster.a, cluster.b) if m.leads()), None), 30, what="a leader"
        )
        for cycle in range(CYCLES):
            refused += freeze_and_resume(cluster, burst, leader, cycle)
            leader = cluster.b if leader is cluster.a else cluster.a
    finally:
        burst.close()
        fleet.close()
    audit = cluster.audit()
    elapsed = time.monotonic() - started
    print(
        f"{CYCLES} cycles in {elapsed:.1f}s; {len(audit)} rows audited; {refused} cycles with a refused write"
    )
    takeovers = [w for w in audit if w.kind == "corral_leader"]
    assert len(takeovers) >= CYCLES  # one per cycle (the first election came before the audit)
    assert deposed_writes(audit) == []
    assert stale_epochs(audit) == []
    assert all(w.epoch is not None for w in audit if w.kind != "corral_leader")  # every row says its epoch
    assert burst.accepted > CYCLES * 3
