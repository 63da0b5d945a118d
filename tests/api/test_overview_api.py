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
