"""The ``local`` provider: each instance is a ``corral agent`` process on this machine (``runtime`` "sim"
or "docker" from the provider's config), shaped as the group says.

What it knows lives in files under ``<data_dir>/providers/local/<group>/``: one record per instance (its
pid, the kernel's start time of that pid, its zone and port share), the next instance number (ids are
never reused: a master refuses a known host id presented with another credential) and each instance's
own ``--state-dir`` and log. A master that takes over on this machine reads the same files, so it lists
and terminates the same processes; a lock file keeps two masters from starting or terminating at once.

The processes are started detached (their own session, re-parented away from the master), as a
machine outlives the master that asked for it: a master that exits leaves its instances running.
An instance whose process died shows as terminated until the next ``scale_to`` replaces it. Linux
only (``/proc`` tells a live process from a reused pid).
"""

from __future__ import annotations

import builtins
import contextlib
import fcntl
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, replace
from pathlib import Path

from corral.domain.hostgroup import HostGroup
from corral.providers.local_layout import (
    LocalInstance,
    agent_argv,
    agent_env,
    free_slot,
    instance_id,
    next_zone,
    port_slots,
    runtime_of,
    state_of,
)
from corral.providers.protocol import Instance, ProviderContext, ProviderError

log = logging.getLogger(__name__)

# The label a docker agent puts on its containers (agent/runtimes/docker/config.py LABEL_HOST; the
# providers sit below the agent in the layers, so it is repeated here and a test keeps the two equal).
DOCKER_HOST_LABEL = "corral.host"

# Starts the agent in a session of its own and exits at once, printing its pid: the agent is never the
# master's child (no zombie to reap, nothing tied to the master's life). The launcher is single-threaded,
# so forking it is safe, unlike forking the master.
_LAUNCHER = """
import os, sys
log = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
null = os.open(os.devnull, os.O_RDONLY)
pid = os.fork()
if pid == 0:
    try:
        os.setsid()
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.execv(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
print(pid, flush=True)
"""


class LocalProvider:
    def __init__(self, context: ProviderContext, config: dict[str, str] | None = None) -> None:
        self.context = context
        self.config = dict(config or {})
        self.root = Path(context.data_dir) / "providers" / "local"
        self.grace_s = float(self.config.get("grace_s") or 10.0)  # SIGTERM, then SIGKILL after this

    # -- the protocol -----------------------------------------------------------------------------

    def scale_to(self, group: HostGroup, desired: int) -> None:
        if desired < 0:
            raise ProviderError(f"group {group.name}: desired {desired} is negative")
        if group.max_size and desired > group.max_size:
            raise ProviderError(f"group {group.name}: desired {desired} exceeds max_size {group.max_size}")
        config = {**self.config, **group.provider.config}
        runtime = runtime_of(config)
        with self._locked(group):
            records = self._records(group)
            dead = [r for r in records if not _alive(r)]
            self._clean_up(group, dead)
            live = [r for r in records if r not in dead]
            missing = desired - len([r for r in live if not r.terminating])
            for _ in range(missing):
                live.append(self._start(group, runtime, live, config))

    def terminate(self, group: HostGroup, host_ids: Sequence[str]) -> None:
        with self._locked(group):
            by_id = {r.instance_id: r for r in self._records(group)}
            doomed = [by_id[h] for h in dict.fromkeys(host_ids) if h in by_id]  # unknown ids: nothing to do
            for i, record in enumerate(doomed):
                if not record.terminating:
                    doomed[i] = replace(record, terminating=True)
                    self._write(group, doomed[i])  # a master that takes over mid-way finishes the job
            self._stop(doomed)
            self._clean_up(group, doomed)

    def list(self, group: HostGroup) -> builtins.list[Instance]:
        return [Instance(r.instance_id, r.instance_id, state_of(r, _alive(r))) for r in self._records(group)]

    def close(self) -> None:
        """Nothing to release: the instances are processes of their own, and keep running."""

    # -- processes --------------------------------------------------------------------------------

    def _start(
        self, group: HostGroup, runtime: str, live: builtins.list[LocalInstance], config: dict[str, str]
    ) -> LocalInstance:
        slot = -1
        if runtime == "docker":  # docker agents on one machine share its host ports: each gets a share
            slots = port_slots(group, config)
            found = free_slot((r.slot for r in live), slots)
            if found is None:
                raise ProviderError(
                    f"group {group.name}: its port range is split {slots} ways and every share is taken"
                    " (set max_size or provider.config.port_slots)"
                )
            slot = found
        number = self._take_number(group)
        record = LocalInstance(
            instance_id=instance_id(group.name, number),
            number=number,
            zone=next_zone(group.shape.zones, (r.zone for r in live if not r.terminating)),
            slot=slot,
            runtime=runtime,
        )
        state_dir = self._dir(group) / "state" / record.instance_id
        state_dir.mkdir(parents=True, exist_ok=True)
        argv = agent_argv(
            sys.executable,
            group,
            record,
            self.context.master_url,
            str(state_dir),
            self.context.ca_file,
            config,
        )
        env = agent_env(os.environ, self.context.token)
        pid = _launch(argv, state_dir / "agent.log", env, state_dir)
        record = replace(record, pid=pid, proc_start=_proc_start(pid) or "", started_at=time.time())
        self._write(group, record)
        log.info("group %s: started instance %s (pid %d, %s)", group.name, record.instance_id, pid, runtime)
        return record

    def _stop(self, records: builtins.list[LocalInstance]) -> None:
        """SIGTERM every live one, SIGKILL those still there after the grace period."""
        for sig, within in ((signal.SIGTERM, self.grace_s), (signal.SIGKILL, 10.0)):
            running = [r for r in records if _alive(r)]
            for r in running:
                _signal(r.pid, sig)
            deadline = time.monotonic() + within
            while running and time.monotonic() < deadline:
                time.sleep(0.05)
                running = [r for r in running if _alive(r)]
            if not running:
                return
        left = ", ".join(r.instance_id for r in records if _alive(r))
        raise ProviderError(f"instances {left} outlived SIGKILL", retryable=True)

    def _clean_up(self, group: HostGroup, records: builtins.list[LocalInstance]) -> None:
        """Forget instances whose process is gone: their docker containers, state and record."""
        for r in records:
            if r.runtime == "docker":
                _remove_containers(r.instance_id)
            shutil.rmtree(self._dir(group) / "state" / r.instance_id, ignore_errors=True)
            with contextlib.suppress(FileNotFoundError):
                self._record_path(group, r.instance_id).unlink()
            log.info("group %s: instance %s is gone", group.name, r.instance_id)

    # -- files ------------------------------------------------------------------------------------

    def _dir(self, group: HostGroup) -> Path:
        return self.root / group.name

    def _record_path(self, group: HostGroup, iid: str) -> Path:
        return self._dir(group) / "instances" / f"{iid}.json"

    @contextlib.contextmanager
    def _locked(self, group: HostGroup) -> Iterator[None]:
        path = self._dir(group) / ".lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)  # released when the file closes
            yield

    def _records(self, group: HostGroup) -> builtins.list[LocalInstance]:
        folder = self._dir(group) / "instances"
        out = []
        for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            try:
                out.append(LocalInstance(**json.loads(path.read_text())))
            except FileNotFoundError:
                continue  # terminated meanwhile by another provider object
            except (OSError, ValueError, TypeError) as e:
                log.warning("local provider: skipping unreadable record %s: %s", path, e)
        return sorted(out, key=lambda r: r.number)

    def _write(self, group: HostGroup, record: LocalInstance) -> None:
        _write_atomically(self._record_path(group, record.instance_id), json.dumps(asdict(record)))

    def _take_number(self, group: HostGroup) -> int:
        path = self._dir(group) / "next-number"
        try:
            number = int(path.read_text().strip() or 0)
        except FileNotFoundError:
            number = 0
        _write_atomically(path, str(number + 1))  # taken before the launch: never reused, even on failure
        return number


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _launch(argv: builtins.list[str], log_path: Path, env: dict[str, str], cwd: Path) -> int:
    try:
        done = subprocess.run(
            [sys.executable, "-c", _LAUNCHER, str(log_path), *argv],
            capture_output=True,
            text=True,
            env=env,
            cwd=cwd,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ProviderError(f"cannot start an agent process: {e}", retryable=True) from e
    if done.returncode != 0 or not done.stdout.strip().isdigit():
        raise ProviderError(
            f"cannot start an agent process (exit {done.returncode}): {done.stderr.strip()[-500:]}",
            retryable=True,
        )
    return int(done.stdout.strip())


def _proc_start(pid: int) -> str | None:
    """The kernel's start time of a live process ``pid`` (None: no such process, or a zombie)."""
    if pid <= 0:
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()  # after "pid (comm) ": state is field 3, starttime 22
    if fields[0] in ("Z", "X"):
        return None
    return fields[19]


def _signal(pid: int, sig: int) -> None:
    """The agent leads its own session and process group: its helpers get the signal too."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:  # just launched: not yet the leader of its group
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _alive(record: LocalInstance) -> bool:
    started = _proc_start(record.pid)
    return started is not None and started == record.proc_start


def _remove_containers(host_id: str) -> None:
    """Remove a terminated docker agent's containers (they outlive an agent on purpose, not a machine)."""
    import docker
    from docker.errors import DockerException, NotFound

    try:
        client = docker.from_env()
    except DockerException as e:
        raise ProviderError(
            f"cannot reach Docker to remove {host_id}'s containers: {e}", retryable=True
        ) from e
    try:
        for c in client.api.containers(all=True, filters={"label": [f"{DOCKER_HOST_LABEL}={host_id}"]}):
            with contextlib.suppress(NotFound):
                client.api.remove_container(c["Id"], force=True)
    except DockerException as e:
        raise ProviderError(f"cannot remove {host_id}'s containers: {e}", retryable=True) from e
    finally:
        client.close()
