"""A cloud for tests: moto's server on loopback, and instances that boot into Corral agents.

AWS itself cannot be reached from here (no network but loopback and the package registries), so moto in
server mode — a real HTTP server speaking the AWS APIs, started as a process of its own — is the only
emulator the tests use; boto3 talks to it over HTTP exactly as it would to AWS.

``InstanceBooter`` plays the user data of an EC2 launch template: for each instance of an Auto Scaling
group in service it starts a simulated ``corral agent`` whose host id is the instance id, and it stops
that agent when the instance leaves the group (moto's instances run nothing of their own).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx

from tests.support.cluster import AGENT_TOKEN, free_port, wait_for

REGION = "us-east-1"
# Credentials moto accepts; set for the life of the server so that nothing picks up a real profile.
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_CONFIG_FILE": "/nonexistent/corral-tests/aws-config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/corral-tests/aws-credentials",
    "AWS_EC2_METADATA_DISABLED": "true",
}
AMI = "ami-12c6146b"  # one of the images moto knows


@dataclass
class Moto:
    url: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def client(self, service: str) -> Any:
        return boto3.session.Session().client(service, endpoint_url=self.url, region_name=REGION)

    def reset(self) -> None:
        """Forget every resource (moto's own reset endpoint)."""
        httpx.post(f"{self.url}/moto-api/reset", timeout=30).raise_for_status()

    def create_asg(
        self,
        name: str,
        min_size: int = 0,
        max_size: int = 10,
        zones: tuple[str, ...] = (f"{REGION}a",),
        instance_type: str = "t3.micro",
    ) -> None:
        """A launch template and an Auto Scaling group of none (desired 0) using it."""
        ec2 = self.client("ec2")
        autoscaling = self.client("autoscaling")
        try:
            ec2.create_launch_template(
                LaunchTemplateName=f"{name}-template",
                LaunchTemplateData={"ImageId": AMI, "InstanceType": instance_type},
            )
            autoscaling.create_auto_scaling_group(
                AutoScalingGroupName=name,
                LaunchTemplate={"LaunchTemplateName": f"{name}-template"},
                MinSize=min_size,
                MaxSize=max_size,
                DesiredCapacity=min_size,
                AvailabilityZones=list(zones),
            )
        finally:
            ec2.close()
            autoscaling.close()

    def group(self, name: str) -> dict[str, Any]:
        autoscaling = self.client("autoscaling")
        try:
            found: dict[str, Any] = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])[
                "AutoScalingGroups"
            ][0]
            return found
        finally:
            autoscaling.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@contextlib.contextmanager
def moto_server(work_dir: Path) -> Iterator[Moto]:
    """moto's server on a free loopback port, with test credentials in the environment meanwhile."""
    saved = {k: os.environ.get(k) for k in AWS_ENV}
    os.environ.update(AWS_ENV)
    port = free_port()
    work_dir.mkdir(parents=True, exist_ok=True)
    log_path = work_dir / "moto.log"
    with log_path.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **AWS_ENV},
        )
    moto = Moto(f"http://127.0.0.1:{port}", proc, log_path)

    def answers() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"moto's server exited with {proc.returncode}:\n{moto.log()}")
        try:
            return httpx.get(f"{moto.url}/moto-api/", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for(answers, 60, interval=0.1, what="moto's server to answer")
        yield moto
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class InstanceBooter:
    """For each in-service instance of ``asg``, a sim ``corral agent --id <instance id> --host-group
    <group> --instance-id <instance id>`` dialling ``master_url``; stopped when the instance leaves."""

    def __init__(
        self,
        moto: Moto,
        asg: str,
        group: str,
        master_url: str,
        work_dir: Path,
        cpu: float = 4.0,
        memory_mb: int = 8192,
        token: str = AGENT_TOKEN,
        poll_s: float = 0.2,
    ) -> None:
        self.moto = moto
        self.asg = asg
        self.group = group
        self.master_url = master_url
        self.work_dir = work_dir
        self.cpu = cpu
        self.memory_mb = memory_mb
        self.token = token
        self.poll_s = poll_s
        self.agents: dict[str, subprocess.Popen[bytes]] = {}
        self.booted: list[str] = []  # every instance it ever started an agent for, in order
        self.errors: list[str] = []  # what went wrong in the polling thread (a test asserts it is empty)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"booter-{asg}")

    def __enter__(self) -> InstanceBooter:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def running(self) -> list[str]:
        """The instances whose agent process is alive now."""
        with self._lock:
            return sorted(i for i, p in self.agents.items() if p.poll() is None)

    def log(self, instance_id: str) -> str:
        path = self.work_dir / instance_id / "agent.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(30)
        with self._lock:
            for instance_id in list(self.agents):
                self._halt(instance_id)

    # -- the polling thread -----------------------------------------------------------------------

    def _run(self) -> None:
        client = self.moto.client("autoscaling")
        try:
            while not self._stop.is_set():
                try:
                    found = client.describe_auto_scaling_groups(AutoScalingGroupNames=[self.asg])
                    instances = (
                        found["AutoScalingGroups"][0]["Instances"] if found["AutoScalingGroups"] else []
                    )
                    in_service = {
                        i["InstanceId"]: i for i in instances if i.get("LifecycleState") == "InService"
                    }
                    with self._lock:
                        for instance_id, instance in in_service.items():
                            if instance_id not in self.agents:
                                self._boot(instance_id, instance)
                        for instance_id in [i for i in self.agents if i not in in_service]:
                            self._halt(instance_id)
                except Exception as e:  # keep polling; the test sees what failed
                    self.errors.append(f"{type(e).__name__}: {e}")
                self._stop.wait(self.poll_s)
        finally:
            client.close()

    def _boot(self, instance_id: str, instance: dict[str, Any]) -> None:
        """What the launch template's user data would run on the instance."""
        state_dir = self.work_dir / instance_id
        state_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            sys.executable,
            "-m",
            "corral",
            "agent",
            "--runtime",
            "sim",
            "--master",
            self.master_url,
            "--id",
            instance_id,
            "--host-group",
            self.group,
            "--instance-id",
            instance_id,
            "--instance-type",
            instance.get("InstanceType") or "t3.micro",
            "--zones",
            instance.get("AvailabilityZone") or f"{REGION}a",
            "--cpu",
            str(self.cpu),
            "--memory-mb",
            str(self.memory_mb),
            "--state-dir",
            str(state_dir),
            "--log-level",
            "info",
        ]
        with (state_dir / "agent.log").open("ab") as out:
            self.agents[instance_id] = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "CORRAL_AGENT_TOKEN": self.token},
            )
        self.booted.append(instance_id)

    def _halt(self, instance_id: str) -> None:
        """The instance is gone: so is its agent (SIGKILL would do as well: a machine just stops)."""
        proc = self.agents.pop(instance_id)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
