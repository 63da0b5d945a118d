"""A task container is kept in its box: it cannot see the host's processes, cannot gain privileges, and
cannot reach the control plane (the master's port, the agent's metrics port), whichever address it tries.

One master listening on every address (as on a real host) and one real agent process (``corral agent
--runtime docker``, so the port isolation it installs at start is the one under test) serve the module.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest

from corral.agent import firewall
from corral.agent.runtimes.docker.isolation import bridge_interface
from tests.support.cluster import MasterProcess, free_port, wait_for
from tests.support.docker_node import IMAGE, remove_containers, unique_host
from tests.support.specs import batch_job

pytestmark = pytest.mark.e2e

FAKE_MASTER_PORT = 8081  # a "master on another host": a container on the bridge, closed by DOCKER-USER
FAKE_OTHER_PORT = 8082  # the same container on a port nobody closed: the positive control
CAP_NET_BIND_SERVICE = 1 << 10


def host_address() -> str | None:
    """This host's own non-loopback IPv4 address (not a bridge's), as a remote client would use it."""
    out = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        fields = line.split()
        name, address = fields[1], fields[3].split("/")[0]
        if name != "lo" and not name.startswith(("docker", "br-", "veth")):
            return address
    return None


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"hello\n")

    def log_message(self, *_args: Any) -> None:
        pass


@dataclass
class Cluster:
    master: MasterProcess
    agent: subprocess.Popen[bytes]
    agent_log: Path
    host_id: str
    metrics_port: int
    open_port: int  # a plain HTTP listener on this host: containers may reach it
    host_ip: str | None
    fake_master_ip: str
    rules: list[firewall.Rule]

    def run(self, script: str, env: dict[str, str] | None = None, **container: Any) -> tuple[dict, str]:
        """Run ``script`` in a one-task batch job; the task once finished, and its output."""
        spec = batch_job(["sh", "-c", script], application="isolation")
        spec["container"]["resources"].update(cpu=0.2, memory_mb=64, shm_mb=8)
        spec["container"]["env"] = env or {}
        spec["container"].update(container)
        job = self.master.submit(spec)
        self.master.wait_job_finished(job["id"], timeout=90)
        [task] = self.master.tasks(job["id"])
        logs = self.master.http.get(f"/api/v1/tasks/{task['id']}/logs").text
        return task, logs


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("isolation")
    client = docker.from_env()
    host_id = unique_host("e2e-iso")
    fake = client.containers.run(
        IMAGE,
        ["sh", "-c", f"httpd -p {FAKE_MASTER_PORT} -h /www; exec httpd -f -p {FAKE_OTHER_PORT} -h /www"],
        detach=True,
        name=f"{host_id}-fake-master",
        labels={"corral.test": host_id},
    )
    fake.reload()
    fake_ip = fake.attrs["NetworkSettings"]["IPAddress"]
    listener = http.server.ThreadingHTTPServer(("0.0.0.0", 0), _Hello)
    threading.Thread(target=listener.serve_forever, daemon=True).start()
    master = MasterProcess(tmp / "master", host="0.0.0.0").start()
    ip = host_address()
    metrics_port = free_port()
    master_url = f"http://{ip or '127.0.0.1'}:{master.port}"
    agent_log = tmp / "agent.log"
    with agent_log.open("ab") as out:
        agent = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "corral",
                "agent",
                "--runtime",
                "docker",
                "--id",
                host_id,
                "--master",
                f"{master_url},http://{fake_ip}:{FAKE_MASTER_PORT}",
                "--cpu",
                "2",
                "--memory-mb",
                "2048",
                "--metrics-port",
                str(metrics_port),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=os.environ,
        )
    rules = firewall.rules(
        [
            firewall.Endpoint(master.port, "master"),
            firewall.Endpoint(metrics_port, "agent metrics"),
            firewall.Endpoint(FAKE_MASTER_PORT, "master", fake_ip),
        ],
        [bridge_interface(client)],
    )
    c = Cluster(
        master, agent, agent_log, host_id, metrics_port, listener.server_address[1], ip, fake_ip, rules
    )
    try:
        wait_for(
            lambda: (
                agent.poll() is None
                and any(h["id"] == host_id for h in master.http.get("/api/v1/hosts").json()["items"])
            ),
            60,  # a `corral agent` process starting: imports, then Docker, then registration
            what="the agent to register",
        )
        yield c
    except BaseException:
        print("---- agent log ----\n" + agent_log.read_text(errors="replace")[-10000:])
        print("---- master log ----\n" + master.log()[-10000:])
        raise
    finally:
        agent.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            agent.wait(15)
        master.close()
        listener.shutdown()
        listener.server_close()
        remove_containers(host_id)
        fake.remove(force=True)
        client.close()
        firewall.remove(rules)  # these ports were this module's alone


PROCESSES = 'for d in /proc/[0-9]*; do echo "$(basename $d) $(tr "\\0" " " < $d/cmdline)"; done'


def test_a_task_sees_only_its_own_processes(cluster: Cluster) -> None:
    task, logs = cluster.run(PROCESSES)
    assert task["reason"] == "normal", (task, logs)
    processes = dict(line.split(" ", 1) for line in logs.strip().splitlines())
    assert processes["1"].startswith("/sbin/docker-init"), processes  # its own PID 1: the tiny init
    assert len(processes) <= 4, processes  # init, the shell, and what the shell runs
    # Neither the master, the agent, this test nor Docker itself is visible.
    assert not any(re.search(r"python|corral|pytest|dockerd|containerd", cmd) for cmd in processes.values())


def test_a_task_cannot_gain_privileges(cluster: Cluster) -> None:
    script = """
grep -E '^(NoNewPrivs|Seccomp|CapEff|CapBnd|CapPrm):' /proc/self/status
mount -t tmpfs none /mnt 2>/dev/null && echo "mount worked" || echo "mount failed"
echo 'nobody:x:65534:65534::/:/bin/sh' >> /etc/passwd
su -s /bin/sh nobody -c true 2>/dev/null && echo "setuid worked" || echo "setuid failed"
unshare -U -r true 2>/dev/null && echo "unshare worked" || echo "unshare failed"
"""
    task, logs = cluster.run(script)
    assert task["reason"] == "normal", (task, logs)
    seen: dict[str, object] = dict(re.findall(r"^(\w+):\s+(\S+)$", logs, re.MULTILINE))
    seen |= {f"Cap{name}": int(str(seen[f"Cap{name}"]), 16) for name in ("Eff", "Prm", "Bnd")}
    seen |= dict(line.split(" ", 1) for line in logs.splitlines() if line.endswith(("worked", "failed")))
    assert seen == {
        "NoNewPrivs": "1",  # setuid binaries and file capabilities raise nothing
        "Seccomp": "2",  # a filter: Docker's default profile
        "CapEff": CAP_NET_BIND_SERVICE,
        "CapPrm": CAP_NET_BIND_SERVICE,
        "CapBnd": CAP_NET_BIND_SERVICE,
        "mount": "failed",  # no CAP_SYS_ADMIN
        "setuid": "failed",  # no CAP_SETUID/CAP_SETGID: root cannot even become nobody
        "unshare": "failed",  # no way into a fresh user namespace full of capabilities
    }, logs

    attrs = docker.from_env().api.inspect_container(f"corral-{task['id']}")
    hc = attrs["HostConfig"]
    assert hc["Privileged"] is False
    assert hc["NetworkMode"] in ("bridge", "default")
    assert hc["PidMode"] in ("", "private") and hc["IpcMode"] == "private" and hc["UTSMode"] == ""
    assert hc["UsernsMode"] != "host"
    assert hc["CapDrop"] == ["ALL"]
    assert [c.removeprefix("CAP_") for c in hc["CapAdd"]] == ["NET_BIND_SERVICE"]
    assert hc["SecurityOpt"] == ["no-new-privileges:true"]
    assert hc["PidsLimit"] and hc["PidsLimit"] > 0
    assert hc["Memory"] == 64 * 2**20 and hc["MemorySwap"] == 64 * 2**20
    assert hc["Init"] is True


# An HTTP GET with busybox nc (busybox-static's wget crashes here): "open" when an HTTP answer comes back.
# nc stops at the end of its input, so the input lasts a while; the probes run side by side.
PROBE = r"""
probe() {
  if { printf 'GET %s HTTP/1.0\r\n\r\n' "$4"; sleep 2; } | nc -w 3 "$2" "$3" 2>/dev/null | head -n 1 |
    grep -q '^HTTP/'
  then echo "$1 open"; else echo "$1 closed"; fi
}
gw=$(ip route | awk '/^default/ {print $3}')
probe master-via-gateway "$gw" "$MASTER_PORT" /healthz &
probe metrics-via-gateway "$gw" "$METRICS_PORT" /metrics &
probe other-via-gateway "$gw" "$OPEN_PORT" / &
if [ -n "$HOST_IP" ]; then
  probe master-via-host "$HOST_IP" "$MASTER_PORT" /healthz &
  probe metrics-via-host "$HOST_IP" "$METRICS_PORT" /metrics &
  probe other-via-host "$HOST_IP" "$OPEN_PORT" / &
fi
probe remote-master "$FAKE_IP" "$FAKE_MASTER_PORT" /index.html &
probe remote-other "$FAKE_IP" "$FAKE_OTHER_PORT" /index.html &
wait
"""


def test_a_task_cannot_reach_the_master_or_the_agent_metrics(cluster: Cluster) -> None:
    env = {
        "MASTER_PORT": str(cluster.master.port),
        "METRICS_PORT": str(cluster.metrics_port),
        "OPEN_PORT": str(cluster.open_port),
        "HOST_IP": cluster.host_ip or "",
        "FAKE_IP": cluster.fake_master_ip,
        "FAKE_MASTER_PORT": str(FAKE_MASTER_PORT),
        "FAKE_OTHER_PORT": str(FAKE_OTHER_PORT),
    }
    task, logs = cluster.run(PROBE, env)
    assert task["reason"] == "normal", (task, logs)
    seen = dict(line.split(" ", 1) for line in logs.strip().splitlines())
    expected = {
        "master-via-gateway": "closed",
        "metrics-via-gateway": "closed",
        "other-via-gateway": "open",  # networking works: only the control ports are closed
        "remote-master": "closed",
        "remote-other": "open",
    }
    if cluster.host_ip:
        expected |= {"master-via-host": "closed", "metrics-via-host": "closed", "other-via-host": "open"}
    assert seen == expected, logs
    # The host itself (and other hosts) still reach both: the rules apply to the bridge only.
    assert cluster.master.http.get("/healthz").status_code == 200
    assert cluster.agent.poll() is None


def test_a_read_only_root_keeps_tmp_writable(cluster: Cluster) -> None:
    script = """
{ echo x > /written; } 2>/dev/null && echo "root writable" || echo "root read-only"
{ echo x > /tmp/written; } 2>/dev/null && echo "tmp writable" || echo "tmp read-only"
"""
    task, logs = cluster.run(script, read_only_root=True)
    assert task["reason"] == "normal", (task, logs)
    assert logs.split() == ["root", "read-only", "tmp", "writable"]
    _, plain = cluster.run(script)
    assert plain.split() == ["root", "writable", "tmp", "writable"]  # the option is what made it so
