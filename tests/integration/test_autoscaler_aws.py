"""The cluster autoscaler driving an EC2 Auto Scaling group through the ``aws`` provider (boto3), served by
moto on loopback — AWS cannot be reached from here, and moto's server mode is the one emulator accepted.
Instances boot into sim agents (``InstanceBooter`` plays the launch template's user data). The same scenario
as the local provider's: a burst asks for exactly the instances it needs, at once; the load gone, drained
empty instances are terminated with the group's desired capacity decremented, never one twice."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_autoscaler import actions, group_hosts, terminated
from tests.support.cloud import AWS_ENV, REGION, InstanceBooter, moto_server
from tests.support.cluster import MasterProcess, wait_for
from tests.support.specs import batch_job

pytestmark = pytest.mark.integration

ASG = "corral-burst"


def test_the_autoscaler_drives_an_auto_scaling_group(tmp_path: Path) -> None:
    with moto_server(tmp_path / "moto") as moto:
        moto.create_asg(ASG, min_size=0, max_size=10, zones=(f"{REGION}a",))
        master = MasterProcess(tmp_path / "master", AWS_ENV).start()
        try:
            with InstanceBooter(moto, ASG, "cloud", master.url, tmp_path / "instances", cpu=4.0) as booter:
                body: dict[str, Any] = {
                    "shape": {
                        "resources": {
                            "cpu": 4.0,
                            "memory_mb": 8192,
                            "disk_mb": 500_000,
                            "network_mbps": 10_000,
                        },
                        "zones": [f"{REGION}a"],
                        "instance_type": "t3.micro",
                    },
                    "min_size": 2,
                    "max_size": 10,
                    "scale_up_cooldown_s": 0.5,
                    "scale_down_cooldown_s": 1.0,
                    "unneeded_for_s": 1.0,
                    "pending_after_s": 0.5,
                    "removal_deadline_s": 1.0,
                    "provider": {
                        "kind": "aws",
                        "config": {"asg": ASG, "region": REGION, "endpoint_url": moto.url},
                    },
                }
                master.http.put("/api/v1/hostgroups/cloud", json=body).raise_for_status()
                wait_for(lambda: len(group_hosts(master, "cloud")) == 2, 90, what="2 instances as hosts")
                assert moto.group(ASG)["DesiredCapacity"] == 2

                spec = batch_job(["sleep", "1000"], size=24)
                spec["container"]["resources"].update(cpu=1.0, memory_mb=256)
                job = master.submit(spec)
                # 2 instances of 4 cpu hold 8 tasks; 16 more need exactly 4 instances.
                wait_for(lambda: len(master.tasks(job["id"], ["Started"])) == 24, 120, what="24 started")
                ups = [a["detail"].split()[0] for a in actions(master, "cloud") if a["action"] == "scale_to"]
                assert ups == ["2", "6"], ups
                assert moto.group(ASG)["DesiredCapacity"] == 6

                master.http.post(f"/api/v1/jobs/{job['id']}/kill").raise_for_status()
                wait_for(lambda: len(terminated(master, "cloud")) >= 4, 120, what="4 instances terminated")
                wait_for(lambda: moto.group(ASG)["DesiredCapacity"] == 2, 30, what="desired back to 2")
                gone = terminated(master, "cloud")
                assert len(gone) == len(set(gone)) == 4, gone
                live = {i["InstanceId"] for i in moto.group(ASG)["Instances"]}
                assert len(live) == 2 and not live & set(gone)
                wait_for(lambda: len(group_hosts(master, "cloud")) == 2, 60, what="2 hosts left")
                assert not booter.errors, booter.errors
        except BaseException:
            print("---- master log ----\n" + master.log()[-20000:])
            raise
        finally:
            master.close()
