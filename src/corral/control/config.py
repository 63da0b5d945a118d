"""The master's configuration: every knob an operator may turn, with defaults for a real cluster."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, get_type_hints

from corral.jobs.config import JobManagerConfig


@dataclass(frozen=True, slots=True)
class MasterConfig:
    data_dir: Path = Path(".corral")
    store_url: str = ""  # empty: SQLite in data_dir
    listen_host: str = "127.0.0.1"
    listen_port: int = 8080
    heartbeat_interval_s: float = 2.0  # told to agents when they register
    heartbeat_timeout_s: float = 10.0  # silence after which a host is unreachable
    batch_window_s: float = 0.005  # gather work this long before an iteration
    idle_tick_s: float = 0.5
    # Unknown tasks (agents run them, the leader has no record) killed in a leader's term, fleet-wide: at
    # most this many, or this percentage of the fleet's running tasks if larger; past it, alert, kill none.
    unknown_task_kill_limit: int = 5
    unknown_task_kill_pct: float = 1.0
    unknown_task_quorum_pct: float = 90.0  # judged only once this share of the expected hosts is back ...
    unknown_task_settle_s: float = 30.0  # ... and this long after taking office
    history_retention_s: float = 7 * 24 * 3600.0
    prune_interval_s: float = 3600.0
    sqlite_synchronous: str = "FULL"
    # Commit write batches in a child process (store/writer_process.py), not a thread of the leader's.
    store_writer_process: bool = True
    master_id: str = ""  # unique per master process (default: host, pid and a random suffix)
    advertise_url: str = ""  # how clients and agents reach this master (default: http://listen address)
    canary_interval_s: float = 0.0  # submit a canary job this often (0: no canary)
    canary_image: str = "corral/busybox:latest"
    host_quarantine_after: int = 5  # this many system errors on one host ... (0: never quarantine)
    host_quarantine_window_s: float = 600.0  # ... within this long quarantine it ...
    host_quarantine_s: float = 1800.0  # ... for this long (an operator may lift it early)
    host_quarantine_max_pct: float = 20.0  # never quarantine more of the fleet than this (at least 1 host)
    lease_ttl_s: float = 3.0  # a leader that cannot renew its lease for this long is replaced
    lease_poll_s: float = 0.25  # how often a standby looks at the lease (a leader renews every ttl / 3)
    # -- security (issue 7) --
    auth_enabled: bool = True  # off: every caller is an anonymous admin (only for a laptop)
    bootstrap_token: str = ""  # an admin token to seed (kept as its digest); at least 20 characters
    bootstrap_agent_token: str = ""  # an agent credential to seed likewise
    admin_token_file: str = ""  # when no usable admin token is in this file, create one and write it here
    read_scope: str = "all"  # "all": any principal reads every job; "team": users see their team's jobs
    submit_rate_per_s: float = 10.0  # per principal (a team may set its own); 0: unlimited
    submit_burst: int = 50
    rate_limit_admins: bool = False
    max_pending_tasks: int = 100_000  # submissions past this many waiting tasks are refused (503)
    idempotency_retention_s: float = 24 * 3600.0  # an Idempotency-Key finds its job this long
    tls_cert_file: str = ""  # with tls_key_file: serve HTTPS and WSS
    tls_key_file: str = ""
    max_body_bytes: int = 1024 * 1024  # a larger request body is refused (413) before it is read
    request_timeout_s: float = 10.0  # a request's headers, then its body, must arrive within this long
    autoscale_interval_s: float = 2.0  # the cluster autoscaler's round (0: no autoscaler)
    provider_list_s: float = 10.0  # ask each provider for its instances at most this often
    provider_agent_token: str = (
        ""  # the join token a provider gives the agents it starts (default: bootstrap)
    )
    jobs: JobManagerConfig = field(default_factory=JobManagerConfig)

    @property
    def url(self) -> str:
        scheme = "https" if self.tls_cert_file else "http"
        return self.advertise_url or f"{scheme}://{self.listen_host}:{self.listen_port}"

    @property
    def resolved_store_url(self) -> str:
        return self.store_url or f"sqlite:///{self.data_dir / 'corral.db'}"


ENV_PREFIX = "CORRAL_"


def from_env(base: MasterConfig | None = None, environ: dict[str, str] | None = None) -> MasterConfig:
    """Overlay ``CORRAL_<FIELD>`` environment variables (e.g. CORRAL_HEARTBEAT_TIMEOUT_S) on ``base``.

    Job manager knobs take the same form: CORRAL_LOST_AFTER_S, CORRAL_LAUNCHED_TIMEOUT_S, ...
    """
    env = os.environ if environ is None else environ
    config = base or MasterConfig()
    config = replace(config, **_overrides(config, env))
    return replace(config, jobs=replace(config.jobs, **_overrides(config.jobs, env)))


def _overrides(obj: Any, env: Any) -> dict[str, Any]:
    hints = get_type_hints(type(obj))
    out: dict[str, Any] = {}
    for f in fields(obj):
        raw = env.get(ENV_PREFIX + f.name.upper())
        if raw is None:
            continue
        kind = hints[f.name]
        if kind is bool:
            out[f.name] = raw.strip().lower() in ("1", "true", "yes", "on")
        elif kind in (int, float, str, Path):
            out[f.name] = kind(raw)
    return out
