"""One job that makes the leader raise is set aside: marked, alerted, counted and explained, while the
leader and every standby go on leading the rest (a record a buggy older version wrote, say)."""

from __future__ import annotations

import signal
import sqlite3
from pathlib import Path
from typing import Any

import psycopg
import pytest

from corral.agent.pool import FleetSpec
from tests.support.cluster import Fleet, MasterProcess, wait_for
from tests.support.postgres import SERVER, fresh_database
from tests.support.specs import batch_job, service_job

pytestmark = pytest.mark.integration

# The job's body loses its batch spec: it still decodes (and its columns still agree with it), but the
# reconciler cannot tell what the job wants and raises.
POISON_SQLITE = (
    "UPDATE corral_jobs SET body = json_set(body, '$.descriptor.batch', json('null')) WHERE id = ?"
)
POISON_PG = (
    "UPDATE corral_jobs SET body = jsonb_set(body::jsonb, '{descriptor,batch}', 'null'::jsonb)::text "
    "WHERE id = %s"
)


def running(master: MasterProcess, job_id: str) -> int:
    return sum(1 for t in master.tasks(job_id) if t["state"] == "Started")


def set_aside(master: MasterProcess, job_id: str) -> dict[str, Any] | None:
    aside: dict[str, Any] | None = master.job(job_id).get("set_aside")
    return aside


def test_a_job_that_makes_reconciliation_raise_is_set_aside_and_the_leader_goes_on(tmp_path: Path) -> None:
    master = MasterProcess(tmp_path / "m").start()
    fleet = Fleet(master.url, FleetSpec(count=2, cpu=8.0, heartbeat_backoff_max_s=1.0))
    try:
        fleet.wait_connected()
        good = master.submit(service_job(2))["id"]
        bad = master.submit(batch_job(["sleep", "1000"], size=2))["id"]
        wait_for(lambda: running(master, good) == 2 and running(master, bad) == 2, what="both jobs running")
        master.kill()
        with sqlite3.connect(tmp_path / "m" / "corral.db") as db:
            db.execute(POISON_SQLITE, (bad,))

        master.start()  # it leads, rather than dying on the job at its first reconciliation
        aside = wait_for(lambda: set_aside(master, bad), what="the job to be set aside")
        assert aside["stage"] == "reconcile"
        assert "ValueError" in aside["error"]
        alerts = master.http.get("/api/v1/admin/alerts").json()["items"]
        assert [a["job_id"] for a in alerts if a["kind"] == "job_set_aside"] == [bad]
        metrics = master.http.get("/metrics").text
        assert 'corral_jobs_set_aside_total{stage="reconcile"} 1.0' in metrics
        assert "corral_jobs_set_aside_now 1.0" in metrics
        # Nothing is killed for it: its tasks keep running where they are.
        wait_for(lambda: running(master, bad) == 2, what="the set-aside job's tasks to be re-adopted")

        # The rest of the cluster is led as before: the good job is kept at its size and resized.
        tasks = master.tasks(good)
        fleet.fail_task(tasks[0]["id"])
        r = master.http.put(f"/api/v1/jobs/{good}/capacity", json={"min": 0, "desired": 3, "max": 5})
        assert r.status_code == 200, r.text
        wait_for(lambda: running(master, good) == 3, what="the good job to be resized and kept whole")
        assert master.leads()

        # An operator retries it: it is reconciled again, and raises again, so it is set aside again.
        alert = f"job-{bad}"
        r = master.http.post(f"/api/v1/admin/alerts/{alert}/resolve", json={"action": "retry"})
        assert r.status_code == 200, r.text
        wait_for(
            lambda: 'corral_jobs_set_aside_total{stage="reconcile"} 2.0' in master.http.get("/metrics").text,
            what="the retried job to be set aside again",
        )
        assert master.leads()
    except BaseException:
        print("---- master log ----\n" + master.log()[-20000:])
        raise
    finally:
        fleet.close()
        master.close()


def test_a_task_record_its_host_cannot_hold_sets_its_job_aside_not_the_host(tmp_path: Path) -> None:
    master = MasterProcess(tmp_path / "m").start()
    fleet = Fleet(master.url, FleetSpec(count=1, cpu=8.0, heartbeat_backoff_max_s=1.0))
    try:
        fleet.wait_connected()
        good = master.submit(service_job(2))["id"]
        bad = master.submit(batch_job(["sleep", "1000"]))["id"]
        wait_for(lambda: running(master, good) == 2 and running(master, bad) == 1, what="both jobs running")
        before = {t["id"] for t in master.tasks(good)}
        master.kill()
        with sqlite3.connect(tmp_path / "m" / "corral.db") as db:  # an address on no interface of the host
            db.execute(
                "UPDATE corral_tasks SET body = json_set(body, '$.interface', 99) WHERE job_id = ?", (bad,)
            )
        master.start()
        aside = wait_for(lambda: set_aside(master, bad), what="the job to be set aside")
        assert aside["stage"] == "agent" and "IndexError" in aside["error"]
        # The host registered all the same, and the good job's tasks were re-adopted, not replaced.
        wait_for(lambda: running(master, good) == 2, what="the good tasks re-adopted")
        assert {t["id"] for t in master.tasks(good)} == before
        assert master.http.get("/api/v1/hosts/sim-0000").json()["state"] == "ready"
    except BaseException:
        print("---- master log ----\n" + master.log()[-20000:])
        raise
    finally:
        fleet.close()
        master.close()


def test_a_pending_task_of_a_set_aside_job_says_why(tmp_path: Path) -> None:
    master = MasterProcess(tmp_path / "m").start()
    try:
        bad = master.submit(batch_job(["sleep", "1000"]))["id"]  # no agent: it stays pending
        wait_for(lambda: master.tasks(bad), what="its task to be created")
        master.stop()
        with sqlite3.connect(tmp_path / "m" / "corral.db") as db:
            db.execute(POISON_SQLITE, (bad,))
        master.start()
        wait_for(lambda: set_aside(master, bad), what="the job to be set aside")
        (task,) = master.tasks(bad)
        placement = master.http.get(f"/api/v1/tasks/{task['id']}/placement").json()
        assert placement["pending"]["reason"] == "set_aside"
        assert f"job {bad} set aside: its reconcile raised ValueError" in placement["pending"]["message"]
        assert f"corral admin resolve job-{bad} --retry" in placement["pending"]["message"]
    except BaseException:
        print("---- master log ----\n" + master.log()[-20000:])
        raise
    finally:
        master.close()


def test_every_standby_sets_the_job_aside_too(tmp_path: Path) -> None:
    env = {"CORRAL_LOST_AFTER_S": "30"}
    with fresh_database() as url:
        a = MasterProcess(tmp_path / "a", env, store_url=url).start()
        b = MasterProcess(tmp_path / "b", env, store_url=url).start(wait=False)
        fleet = Fleet(f"{a.url},{b.url}", FleetSpec(count=2, cpu=8.0, heartbeat_backoff_max_s=1.0))
        try:
            wait_for(b.answers, 30, what="the standby to answer")
            fleet.wait_connected()
            good = a.submit(service_job(2))["id"]
            bad = a.submit(batch_job(["sleep", "1000"]))["id"]
            wait_for(lambda: running(a, good) == 2 and running(a, bad) == 1, what="both jobs running")
            schema = url.split("search_path%3D")[1]
            with psycopg.connect(f"postgresql://{SERVER}", autocommit=True) as conn:
                conn.execute(f"SET search_path TO {schema}")
                conn.execute(POISON_PG, (bad,))

            a.kill()  # the standby takes over and loads the poisoned job
            wait_for(b.leads, 30, what="the standby to lead")
            wait_for(lambda: set_aside(b, bad), what="the new leader to set the job aside")
            wait_for(lambda: running(b, good) == 2, what="the good job to be led by the new leader")

            a.start(wait=False)  # back as a standby, then leading again when b goes
            wait_for(a.answers, 30, what="the old leader to come back as a standby")
            b.signal(signal.SIGKILL)
            wait_for(a.leads, 30, what="the standby to lead again")
            wait_for(lambda: set_aside(a, bad), what="the next leader to set the job aside too")
            wait_for(lambda: running(a, good) == 2, what="the good job to be led")
        except BaseException:
            for m in (a, b):
                print(f"---- {m.url} ----\n" + m.log()[-15000:])
            raise
        finally:
            fleet.close()
            a.close()
            b.close()
