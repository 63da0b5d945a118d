"""``/api/v1/overview``, the newest-first job list, and the console's files as the master serves them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cluster import cluster, wait_for
from tests.support.specs import batch_job, with_changes

pytestmark = pytest.mark.integration


def test_overview_newest_first_and_console_files(tmp_path: Path) -> None:
    with cluster(tmp_path, agents=2) as (master, _fleet):
        running = master.submit(batch_job(["sh", "-c", "sleep 30"], size=3))
        stuck = master.submit(with_changes(batch_job(["true"]), "container.resources.cpu", 64))
        wait_for(lambda: len(master.tasks(running["id"], ["Started"])) == 3, 20, what="3 started")
        # The second job's task is made by the leader's loop, not by the submission: wait for it too.
        wait_for(lambda: master.tasks(stuck["id"]), 20, what="the stuck job's task")

        o = master.http.get("/api/v1/overview", params={"top": 1}).json()
        assert o["hosts"] == {"healthy": 2}
        assert o["resources"]["cpu"] == {"capacity": 16.0, "allocated": 1.5}
        assert o["queue"]["pending"] == 1 and o["queue"]["by_group"] == {"default": 1}
        assert [(b["job_id"], b["running"]) for b in o["busiest"]] == [(running["id"], 3)]
        assert o["leader"] and o["scheduler"]["iterations"] >= 1 and o["alerts"] == 0
        assert master.http.get("/api/v1/overview", params={"top": 101}).status_code == 400

        newest = master.http.get("/api/v1/jobs", params={"order": "newest", "limit": 1}).json()
        assert [j["id"] for j in newest["items"]] == [stuck["id"]]
        older = master.http.get("/api/v1/jobs", params={"order": "newest", "after": newest["next"]}).json()
        assert [j["id"] for j in older["items"]] == [running["id"]]

        page = master.http.get("/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert '<script type="module" src="/ui/console.js">' in page.text
        for name, kind in (("console.js", "javascript"), ("console.css", "text/css")):
            served = master.http.get(f"/ui/{name}")
            assert served.status_code == 200 and kind in served.headers["content-type"]
        assert master.http.get("/ui/nothing.js").status_code == 404
        assert "/" not in master.http.get("/openapi.json").json()["paths"]


def test_with_reads_scoped_to_teams_the_overview_names_no_other_teams_jobs(tmp_path: Path) -> None:
    from tests.support.cluster import MasterProcess

    master = MasterProcess(tmp_path / "m", {"CORRAL_READ_SCOPE": "team"}).start()
    try:
        tokens = {}
        for team in ("payments", "search"):
            master.http.put(f"/api/v1/admin/teams/{team}", json={"emails": [f"@{team}.example.com"]})
            made = master.http.post("/api/v1/admin/tokens", json={"name": f"{team}-dev", "team": team})
            tokens[team] = {"Authorization": f"Bearer {made.json()['secret']}"}
        jobs = {}
        for team in ("payments", "search"):  # no agent: their tasks wait, so both jobs are in the queue
            spec = with_changes(batch_job(["true"], size=2), "owner.team_email", f"ops@{team}.example.com")
            r = master.http.post("/api/v1/jobs", json=spec, headers=tokens[team])
            assert r.status_code == 201, r.text
            jobs[team] = r.json()["id"]
        wait_for(lambda: master.http.get("/api/v1/status").json()["pending"] == 4, what="both jobs pending")
        seen = master.http.get("/api/v1/overview", headers=tokens["payments"]).json()
        named = {b["job_id"] for b in seen["busiest"]}
        assert named == {jobs["payments"]}  # its own job, and not search's
        assert jobs["search"] not in str(seen)
        assert seen["queue"]["pending"] == 4  # the fleet's figures name no job
        admin = master.http.get("/api/v1/overview").json()
        assert {b["job_id"] for b in admin["busiest"]} == set(jobs.values())
    finally:
        master.close()
