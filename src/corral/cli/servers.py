"""``corral master``, ``corral agent`` and ``corral up``: the long-running processes.

The server modules (uvicorn, the API, the control plane, the store, the agent runtimes) are imported
inside the functions that run them: importing this module, as every ``corral`` invocation does to build
its help, must stay as cheap as a client command (tests/cli/test_imports.py).
"""

import logging
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from corral.cli.client import default_master
from corral.cli.output import console

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable, Coroutine
    from typing import Any

    import uvicorn

    from corral.agent.metrics import AgentMetrics
    from corral.agent.pool import AgentPool, FleetSpec
    from corral.control.config import MasterConfig

log = logging.getLogger("corral")

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def setup_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format=LOG_FORMAT, stream=sys.stderr)


def master_config(data_dir: Path, host: str, port: int, store_url: str) -> "MasterConfig":
    from corral.control.config import MasterConfig, from_env

    config = from_env(MasterConfig())
    return replace(
        config, data_dir=data_dir, listen_host=host, listen_port=port, store_url=store_url or config.store_url
    )


@dataclass(frozen=True)
class HostOptions:
    """What ``corral agent`` says of its hosts beyond cores, memory and zones: how a provider's instance
    registers as a host of its group (providers/local.py, and an instance's boot script)."""

    host_group: str = "default"
    instance_type: str = ""  # "": the runtime's own (sim.2xlarge, docker-host)
    attributes: dict[str, str] = field(default_factory=dict)  # custom attributes
    port_range: tuple[int, int] | None = None  # None: 30000-32767 (docker: split between the agents)
    exact_id: bool = False  # a single agent's id is the given id itself (sim: no -0000 suffix)
    disk_mb: int | None = None
    network_mbps: int | None = None
    gpu: int | None = None


def fleet_spec(
    count: int, prefix: str, cpu: float, memory_mb: int, zones: str, host: HostOptions | None = None
) -> "FleetSpec":
    from corral.agent.pool import FleetSpec

    spec = FleetSpec(
        count=count, id_prefix=prefix, cpu=cpu, memory_mb=memory_mb, zones=tuple(zones.split(","))
    )
    if host is None:
        return spec
    return replace(
        spec,
        ids=(prefix,) if host.exact_id and count == 1 else (),
        host_group=host.host_group,
        instance_type=host.instance_type or spec.instance_type,
        attributes=dict(host.attributes),
        port_range=host.port_range or spec.port_range,
        disk_mb=spec.disk_mb if host.disk_mb is None else host.disk_mb,
        network_mbps=spec.network_mbps if host.network_mbps is None else host.network_mbps,
        gpu=spec.gpu if host.gpu is None else host.gpu,
    )


class _Exit:
    """Carries the process's exit status out of uvicorn when the master fails while running."""

    code = 0


def _server(config: "MasterConfig", exit_status: _Exit, log_level: str) -> "uvicorn.Server":
    from corral.api.app import create_app
    from corral.api.server import build_server
    from corral.store.protocol import StoreError

    def fatal(error: BaseException) -> None:
        # A store that cannot be trusted (refused at load) exits 3, like one refused at start-up.
        exit_status.code = 3 if isinstance(error, StoreError) else 1
        server.should_exit = True

    app = create_app(config, on_fatal=fatal)
    # Limits on bodies and on slow clients; the protocol closes connections that never finish their headers.
    server = build_server(app, config, log_level)
    return server


def tune_gc() -> None:
    """A leader holds hundreds of thousands of long-lived records and allocates briskly: with the default
    thresholds the cyclic collector runs young collections every 700 allocations and full ones that walk
    everything often enough to stall the event loop (the submission benchmark's p99 dropped by a third).
    Young collections now come every 50,000 net allocations, full ones 100 times rarer still."""
    import gc

    gc.set_threshold(50_000, 20, 100)


def run_loop(main: "Coroutine[Any, Any, None]") -> None:
    """Run ``main`` on uvloop's event loop where it is installed (it comes with uvicorn[standard]): a
    leader's loop serves every request and agent message, and uvloop's costs a fraction of asyncio's
    own per event (the submission benchmark went from 390 to 420 jobs/s)."""
    import asyncio

    try:
        import uvloop

        factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(main)


async def _serve(server: "uvicorn.Server", exit_status: _Exit) -> None:
    await server.serve()
    if not server.started and exit_status.code == 0:
        exit_status.code = 3  # start-up failed: the store could not be trusted or the port is taken


def master(
    data_dir: Annotated[Path, typer.Option(help="where the SQLite store lives")] = Path(".corral"),
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8080,
    store_url: Annotated[
        str, typer.Option(help="SQLAlchemy URL of the store (default: SQLite in data-dir)")
    ] = "",
    tls_cert: Annotated[str, typer.Option(help="PEM certificate: serve HTTPS/WSS (with --tls-key)")] = "",
    tls_key: Annotated[str, typer.Option(help="PEM private key of --tls-cert")] = "",
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error")] = "info",
) -> None:
    """Run a master (API, job manager, scheduler) on SQLite. Knobs: CORRAL_* environment variables."""

    from corral.store.protocol import StoreError

    setup_logging(log_level)
    config = master_config(data_dir, host, port, store_url)
    if tls_cert or tls_key:
        config = replace(config, tls_cert_file=tls_cert, tls_key_file=tls_key)
    if bool(config.tls_cert_file) != bool(config.tls_key_file):
        console.print("[red]error[/red] TLS needs both a certificate and its key")
        raise typer.Exit(2)
    status = _Exit()
    try:
        tune_gc()
        run_loop(_serve(_server(config, status, log_level), status))
    except StoreError as e:
        console.print(f"[red]cannot start the master:[/red] {e}")
        raise typer.Exit(3) from e
    raise typer.Exit(status.code)


RUNTIMES = ("sim", "docker")


def agent_pool(
    runtime: str,
    master_url: str,
    count: int,
    id_prefix: str,
    cpu: float | None,
    memory_mb: int | None,
    zones: str,
    log_retention_s: float,
    registry: str,
    metrics: "AgentMetrics | None" = None,
    token: str = "",
    ca_file: str = "",
    state_dir: str = "",
    host: HostOptions | None = None,
) -> "AgentPool":
    """``count`` agents of ``runtime``: simulated hosts, or this machine's Docker (port ranges split).
    Each keeps the credential the master mints for its host in ``state_dir``."""
    from corral.agent.pool import AgentPool, credential_path

    host = host or HostOptions()
    if runtime == "sim":
        spec = replace(
            fleet_spec(count, id_prefix, cpu or 8.0, memory_mb or 32768, zones, host),
            token=token,
            ca_file=ca_file,
            state_dir=state_dir,
        )
        return AgentPool(master_url, spec, metrics=metrics)
    if runtime != "docker":
        console.print(f"[red]error[/red] unknown runtime {runtime!r} (available: {', '.join(RUNTIMES)})")
        raise typer.Exit(2)
    from corral.agent.local import docker_agent, local_resources
    from corral.agent.runtimes.docker import DockerConfig
    from corral.domain.host import HostAttributes

    zone_list = zones.split(",")
    low, high = host.port_range or (30000, 32767)
    span = (high - low + 1) // max(count, 1)
    resources = local_resources(cpu, memory_mb)
    resources = replace(
        resources,
        disk_mb=resources.disk_mb if host.disk_mb is None else host.disk_mb,
        network_mbps=resources.network_mbps if host.network_mbps is None else host.network_mbps,
        gpu=resources.gpu if host.gpu is None else host.gpu,
    )
    agents = []
    for i in range(count):
        agent_id = id_prefix if count == 1 else f"{id_prefix}-{i}"
        attributes = HostAttributes(
            zone=zone_list[i % len(zone_list)],
            instance_type=host.instance_type or "docker-host",
            host_group=host.host_group,
            custom=dict(host.attributes),
        )
        agents.append(
            docker_agent(
                master_url,
                agent_id=agent_id,
                resources=resources,
                attributes=attributes,
                port_range=(low + i * span, low + (i + 1) * span - 1),
                docker=DockerConfig(agent_id, log_retention_s=log_retention_s, registry=registry),
                metrics=metrics,
                token=token,
                ca_file=ca_file,
                credential_file=credential_path(state_dir, agent_id),
            )
        )
    return AgentPool.of(agents)


PORT_ISOLATION_HELP = "docker: firewall the master and metrics ports off from task containers"


def isolate_or_exit(runtime: str, master_url: str, metrics_port: int, enabled: bool) -> None:
    """Docker agents keep task containers off the control plane (agent/firewall.py), or do not start."""
    if runtime != "docker":
        return  # simulated tasks have no network
    from corral.agent.firewall import FirewallError
    from corral.agent.runtimes.docker.isolation import isolate_control_ports

    if not enabled:
        log.warning("port isolation is off: task containers may reach the master and agent metrics ports")
        return
    masters = [u.strip() for u in master_url.split(",") if u.strip()]
    local = [(metrics_port, "agent metrics")] if metrics_port else []
    try:
        rules = isolate_control_ports(masters, local)
    except FirewallError as e:
        console.print(
            f"[red]cannot keep task containers off the control ports:[/red] {e}\n"
            "  run the agent as root where iptables works, or pass --no-port-isolation to go without"
        )
        raise typer.Exit(3) from e
    log.info("task containers cannot reach: %s", "; ".join(sorted({r.what for r in rules})))


def agent(
    master_url: Annotated[str, typer.Option("--master", help="master URL (env CORRAL_MASTER)")] = "",
    runtime: Annotated[str, typer.Option(help="docker (real containers) or sim (simulated tasks)")] = "sim",
    count: Annotated[int, typer.Option(help="how many agents this process runs")] = 1,
    id_prefix: Annotated[
        str, typer.Option("--id", help="the agent's host id; with --count > 1 a prefix (sim <id>-0000, ...)")
    ] = "",
    cpu: Annotated[float | None, typer.Option(help="cores per agent (docker: this machine's)")] = None,
    memory_mb: Annotated[int | None, typer.Option(help="memory per agent (docker: this machine's)")] = None,
    disk_mb: Annotated[int | None, typer.Option(help="disk per agent (docker: this machine's)")] = None,
    network_mbps: Annotated[int | None, typer.Option(help="network per agent")] = None,
    gpu: Annotated[int | None, typer.Option(help="GPUs per agent")] = None,
    zones: Annotated[
        str, typer.Option(help="comma-separated zones, assigned round robin")
    ] = "zone-a,zone-b,zone-c",
    host_group: Annotated[str, typer.Option(help="the host group its hosts belong to")] = "default",
    instance_type: Annotated[str, typer.Option(help="instance type attribute (default: the runtime's)")] = "",
    instance_id: Annotated[
        str, typer.Option(help="the provider's instance id (custom attribute instance_id)")
    ] = "",
    attr: Annotated[
        list[str] | None, typer.Option("--attr", help="custom attribute key=value (repeatable)")
    ] = None,
    port_range: Annotated[
        str, typer.Option(help="host ports for tasks, low-high (docker: split between the agents)")
    ] = "",
    log_retention: Annotated[
        float, typer.Option(help="docker: keep finished containers (and logs) s")
    ] = 3600.0,
    registry: Annotated[
        str, typer.Option(help="docker: host:port of a registry the health check tries")
    ] = "",
    metrics_port: Annotated[int, typer.Option(help="serve the agents' /metrics on this port (0: off)")] = 0,
    metrics_host: Annotated[str, typer.Option(help="address the metrics port listens on")] = "0.0.0.0",
    port_isolation: Annotated[
        bool, typer.Option("--port-isolation/--no-port-isolation", help=PORT_ISOLATION_HELP)
    ] = True,
    token: Annotated[
        str, typer.Option(help="the agents' credential (an agent-role token)", envvar="CORRAL_AGENT_TOKEN")
    ] = "",
    token_file: Annotated[
        str, typer.Option(help="read the credential from this file", envvar="CORRAL_AGENT_TOKEN_FILE")
    ] = "",
    ca_file: Annotated[str, typer.Option(help="CA bundle for an https master", envvar="CORRAL_CA_FILE")] = "",
    metrics_tls_cert: Annotated[str, typer.Option(help="serve the metrics port over HTTPS with this")] = "",
    metrics_tls_key: Annotated[str, typer.Option(help="the private key of --metrics-tls-cert")] = "",
    state_dir: Annotated[
        str,
        typer.Option(
            help="where each agent keeps the credential minted for its host (keep it across restarts)",
            envvar="CORRAL_AGENT_STATE_DIR",
        ),
    ] = ".corral/agent",
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error")] = "info",
) -> None:
    """Run agents that dial a master and run what it sends them. Docker containers outlive the agent.

    --token is a join token (or a host's own credential): on its first registration a host gets its own
    credential, kept in --state-dir and presented from then on."""
    import contextlib
    import socket

    setup_logging(log_level)
    if token_file and not token:
        token = Path(token_file).read_text().strip()
    host = HostOptions(
        host_group=host_group,
        instance_type=instance_type,
        attributes={**parse_attributes(attr or []), **({"instance_id": instance_id} if instance_id else {})},
        port_range=parse_port_range(port_range),
        exact_id=bool(id_prefix) and count == 1,
        disk_mb=disk_mb,
        network_mbps=network_mbps,
        gpu=gpu,
    )
    isolate_or_exit(runtime, master_url or default_master(), metrics_port, port_isolation)
    prefix = id_prefix or ("sim" if runtime == "sim" else socket.gethostname())
    metrics = _agent_metrics(metrics_host, metrics_port, metrics_tls_cert, metrics_tls_key)
    pool = agent_pool(
        runtime,
        master_url or default_master(),
        count,
        prefix,
        cpu,
        memory_mb,
        zones,
        log_retention,
        registry,
        metrics,
        token,
        ca_file,
        state_dir,
        host,
    )

    async def run() -> None:
        pool.start()
        try:
            await pool.wait()
        finally:
            await pool.stop(kill_tasks=runtime == "sim")

    with contextlib.suppress(KeyboardInterrupt):
        run_loop(run())


def parse_attributes(pairs: list[str]) -> dict[str, str]:
    """``--attr key=value`` options as custom attributes (exit 2 on a malformed one)."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            console.print(f"[red]error[/red] --attr takes key=value, not {pair!r}")
            raise typer.Exit(2)
        out[key.strip()] = value
    return out


def parse_port_range(text: str) -> tuple[int, int] | None:
    """``--port-range low-high`` ("": the default range; exit 2 on a malformed one)."""
    if not text:
        return None
    low, sep, high = text.partition("-")
    if sep and low.strip().isdigit() and high.strip().isdigit() and 1 <= int(low) <= int(high) <= 65535:
        return int(low), int(high)
    console.print(f"[red]error[/red] --port-range takes low-high within 1-65535, not {text!r}")
    raise typer.Exit(2)


def _agent_metrics(host: str, port: int, tls_cert: str = "", tls_key: str = "") -> "AgentMetrics | None":
    if not port:
        return None
    from corral.agent.metrics import AgentMetrics

    metrics = AgentMetrics()
    try:
        metrics.serve(host, port, tls_cert, tls_key)
    except OSError as e:
        console.print(f"[red]cannot serve agent metrics on {host}:{port}:[/red] {e}")
        raise typer.Exit(3) from e
    log.info("agent metrics at %s://%s:%d/metrics", "https" if tls_cert else "http", host, port)
    return metrics


def up(
    agents: Annotated[int, typer.Option(help="how many agents to start beside the master")] = 3,
    runtime: Annotated[str, typer.Option(help="docker (real containers) or sim (simulated tasks)")] = "sim",
    data_dir: Annotated[Path, typer.Option(help="where the SQLite store lives")] = Path(".corral"),
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8080,
    cpu: Annotated[float | None, typer.Option(help="cores per agent (docker: this machine's)")] = None,
    memory_mb: Annotated[int | None, typer.Option(help="memory per agent (docker: this machine's)")] = None,
    zones: Annotated[str, typer.Option(help="comma-separated zones")] = "zone-a,zone-b,zone-c",
    log_retention: Annotated[
        float, typer.Option(help="docker: keep finished containers (and logs) s")
    ] = 3600.0,
    agent_metrics_port: Annotated[
        int, typer.Option(help="serve the agents' /metrics on this port (0: off)")
    ] = 0,
    port_isolation: Annotated[
        bool, typer.Option("--port-isolation/--no-port-isolation", help=PORT_ISOLATION_HELP)
    ] = True,
    auth: Annotated[
        bool, typer.Option("--auth/--no-auth", help="require tokens (off: anyone reaching the port is admin)")
    ] = True,
    autoscale: Annotated[
        bool,
        typer.Option(
            "--autoscale/--no-autoscale",
            help="agents are processes the local provider starts and stops as the autoscaler decides "
            "(host group `local`: --agents hosts at least, --max-hosts at most)",
        ),
    ] = False,
    max_hosts: Annotated[int, typer.Option(help="--autoscale: the group's max size")] = 10,
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error")] = "warning",
) -> None:
    """Run a whole local cluster in one process: a master on SQLite and agents (simulated or Docker).

    With --auth (the default) the master writes a local admin token to <data-dir>/admin.token, which the
    CLI reads from there when run in the same directory, and the agents get their own credential.
    With --autoscale the agents are `corral agent` processes of host group `local`, started and stopped
    by the cluster autoscaler through the local provider (they stop when `up` does)."""
    import asyncio

    from corral.control.auth import new_secret
    from corral.store.protocol import StoreError

    setup_logging(log_level)
    isolate_or_exit(runtime, f"http://{host}:{port}", agent_metrics_port, port_isolation)
    config = master_config(data_dir, host, port, "")
    config = replace(
        config,
        auth_enabled=auth,
        bootstrap_agent_token=config.bootstrap_agent_token or (new_secret() if auth else ""),
        admin_token_file=config.admin_token_file or (str(data_dir / "admin.token") if auth else ""),
    )
    status = _Exit()
    metrics = _agent_metrics(host, agent_metrics_port)

    async def run() -> None:
        server = _server(config, status, log_level)
        serving = asyncio.get_running_loop().create_task(_serve(server, status))
        while not server.started and not serving.done():  # noqa: ASYNC110 - uvicorn offers no event
            await asyncio.sleep(0.05)
        if serving.done():
            await serving
            return
        url = f"http://{host}:{port}"
        if autoscale:
            await _autoscaled(url, config, runtime, agents, max_hosts, cpu, memory_mb, zones, serving)
            return
        prefix = "sim" if runtime == "sim" else "local"
        pool = agent_pool(
            runtime,
            url,
            agents,
            prefix,
            cpu,
            memory_mb,
            zones,
            log_retention,
            "",
            metrics,
            config.bootstrap_agent_token,
            state_dir=str(data_dir / "agents"),  # each host's own credential, kept across restarts
        )
        pool.start()
        await pool.wait_connected()
        console.print(
            f"[green]corral is up[/green]: master {url} (store {config.resolved_store_url}), "
            f"{agents} {runtime} agent{'s' if agents != 1 else ''}"
        )
        _greet(config, url)
        try:
            await serving
        finally:
            await pool.stop(kill_tasks=runtime == "sim")  # containers outlive the agent

    tune_gc()
    try:
        run_loop(run())
    except StoreError as e:
        console.print(f"[red]cannot start the master:[/red] {e}")
        raise typer.Exit(3) from e
    raise typer.Exit(status.code)


def _greet(config: "MasterConfig", url: str) -> None:
    if config.admin_token_file:
        secret = Path(config.admin_token_file).read_text().strip()
        console.print(f"  admin token ({config.admin_token_file}): {secret}")
        console.print("  the CLI finds it there when run from this directory, or: export CORRAL_TOKEN=...")
    else:
        console.print("  [yellow]authentication is off[/yellow]: anyone who reaches the port is an admin")
    console.print(f"  try: corral --master {url} job submit -f examples/batch.yaml")


async def _autoscaled(
    url: str,
    config: "MasterConfig",
    runtime: str,
    agents: int,
    max_hosts: int,
    cpu: float | None,
    memory_mb: int | None,
    zones: str,
    serving: "asyncio.Task[None]",
) -> None:
    """``up --autoscale``: host group ``local`` on the local provider, then serve; its agents stop with us."""
    import asyncio

    import httpx

    from corral.agent.local import local_resources
    from corral.domain.hostgroup import HostGroup
    from corral.providers import ProviderContext
    from corral.providers.local import LocalProvider

    if runtime not in RUNTIMES:
        console.print(f"[red]error[/red] unknown runtime {runtime!r} (available: {', '.join(RUNTIMES)})")
        raise typer.Exit(2)
    if runtime == "sim":
        resources = {"cpu": cpu or 8.0, "memory_mb": memory_mb or 32768, "disk_mb": 100_000}
    else:
        r = local_resources(cpu, memory_mb)
        resources = {"cpu": r.cpu, "memory_mb": r.memory_mb, "disk_mb": r.disk_mb}
    group = {
        "shape": {
            "resources": {**resources, "network_mbps": 10_000, "gpu": 0},
            "zones": [z for z in zones.split(",") if z],
            "instance_type": f"local-{runtime}",
        },
        "min_size": agents,
        "max_size": max(max_hosts, agents),
        "min_idle": 1 if max_hosts > agents else 0,
        "scale_up_cooldown_s": 5.0,
        "scale_down_cooldown_s": 30.0,
        "unneeded_for_s": 30.0,
        "pending_after_s": 3.0,
        "provider": {"kind": "local", "config": {"runtime": runtime}},
    }
    headers = {}
    if config.admin_token_file:
        token_file = Path(config.admin_token_file)
        secret = ""
        while not secret and not serving.done():  # the file exists a moment before the token is in it
            await asyncio.sleep(0.05)
            secret = token_file.read_text().strip() if token_file.exists() else ""  # noqa: ASYNC240
        headers["Authorization"] = f"Bearer {secret}"
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=10) as http:
        answer = await http.put("/api/v1/hostgroups/local", json=group)
        if answer.status_code != 200:
            console.print(f"[red]cannot configure host group local:[/red] {answer.text}")
            raise typer.Exit(3)
    console.print(
        f"[green]corral is up[/green]: master {url} (store {config.resolved_store_url}); host group `local` "
        f"autoscales {agents}..{max(max_hosts, agents)} {runtime} agents (corral hostgroup explain local)"
    )
    _greet(config, url)
    provider = LocalProvider(ProviderContext(url, config.bootstrap_agent_token, data_dir=config.data_dir))
    try:
        await serving
    finally:
        local = HostGroup("local")
        ids = [i.host_id for i in await asyncio.to_thread(provider.list, local) if i.state != "terminated"]
        if ids:
            await asyncio.to_thread(provider.terminate, local, ids)
