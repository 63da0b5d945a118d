"""A leader killed in the middle of a scale-down: the new leader finishes it from the group's record — no
host is terminated twice, none is terminated while it holds a task, and the service keeps its budget."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

from corral.domain.hostgroup import HostGroup
from corral.providers import ProviderContext
from corral.providers.local import LocalProvider
from tests.ha.test_failover import Pair, pair  # noqa: F401 - the fixture
from tests.integration.test_autoscaler import SHAPE
from tests.integration.test_rollouts import Poller, probed_service
from tests.support.cluster import AGENT_TOKEN, MasterProcess, wait_for

TERMINATE = re.compile(r"autoscaler: host group fo: terminate (.+)$")


def body(masters: Pair, state_dir: Path, min_size: int) -> dict[str, Any]:
    return {
        "shape": SHAPE,
        "min_size": min_size,
        "max_size": 10,
        "scale_up_cooldown_s": 0.5,
        "scale_down_cooldown_s": 1.0,
        "unneeded_for_s": 1.0,
        "pending_after_s": 0.5,
        "removal_deadline_s": 1.0,
        "provider": {
            "kind": "local",
            # Both masters start and stop the same processes: they share the provider's directory, and
            # the agents know both masters.
            "config": {
                "runtime": "sim",
                "grace_s": "3",
                "state_dir": str(state_dir),
                "master_url": masters.urls,
            },
        },
    }


def group_hosts(m: MasterProcess) -> list[dict[str, Any]]:
    items = m.http.get("/api/v1/hosts", params={"limit": 1000}).json()["items"]
    return [h for h in items if h["attributes"]["host_group"] == "fo" and h["state"] == "ready"]


def terminations(*masters: MasterProcess) -> list[str]:
    out: list[str] = []
    for m in masters:
        for line in m.log().splitlines():
            found = TERMINATE.search(line)
            if found:
                out += found.group(1).split(", ")
    return out


def test_a_scale_down_survives_the_leader_killed_mid_way(pair: Pair, tmp_path: Path) -> None:  # noqa: F811
    state_dir = tmp_path / "provider"
    first = pair.leader()
    try:
        first.http.put("/api/v1/hostgroups/fo", json=body(pair, state_dir, 6)).raise_for_status()
        wait_for(lambda: len(group_hosts(first)) == 6, 90, what="6 hosts")
        spec = probed_service(6, ["true"])
        spec["container"]["resources"]["cpu"] = 1.0
        spec["container"]["soft_constraints"] = {"unique_host": "true"}
        spec["disruption_budget"] = {"availability_percentage": 80}
        job_id = first.submit(spec)["id"]

        def ready(m: MasterProcess) -> list[dict[str, Any]]:
            return [
                t
                for t in m.tasks(job_id)
                if t["state"] == "Started" and t.get("ready") and not t.get("kill_reason")
            ]

        wait_for(lambda: len(ready(first)) == 6, 60, what="6 ready tasks")
        first.http.put("/api/v1/hostgroups/fo", json=body(pair, state_dir, 1)).raise_for_status()
        wait_for(lambda: terminations(first), 90, what="the first host terminated")
        first.kill()
        second = pair.leader()
        assert second is not first
        poller = Poller(second, job_id, lambda: len(ready(second)))
        wait_for(lambda: len(group_hosts(second)) == 1, 180, what="the new leader to finish the scale-down")
        assert poller.stop() >= 5  # 80 % of 6

        def terminated() -> list[str]:
            out: list[str] = second.http.get("/api/v1/hostgroups/fo/explain").json()["terminated"]
            return out

        wait_for(lambda: len(terminated()) == 5, 60, what="5 terminations confirmed")
        # Each asked of the provider once: by the first leader (some maybe just before it died, their
        # note lost with it: the new leader found them terminated) or by the second.
        asked = terminations(first, second)
        assert len(asked) == len(set(asked)), Counter(asked)
        assert set(asked) <= set(terminated()) and len(set(terminated())) == 5
        tasks = second.tasks(job_id)
        assert len(ready(second)) == 6
        ended = Counter(t["reason"] for t in tasks if t["state"] == "Finished")
        assert set(ended) <= {"relocated"}, ended  # none lost with a terminated host: each moved first
        record = second.http.get("/api/v1/hostgroups/fo/explain").json()
        assert record["desired"] == 1
    finally:
        provider = LocalProvider(ProviderContext(pair.urls, AGENT_TOKEN, data_dir=state_dir))
        group = HostGroup("fo")
        provider.terminate(group, [i.host_id for i in provider.list(group)])
