"""Task containers must not reach the control plane: the masters' ports and the agent's metrics port.

A container on Docker's bridge reaches this host's own addresses (the bridge gateway, the host's other
interfaces) through the ``INPUT`` chain, and other hosts through ``FORWARD`` (Docker's ``DOCKER-USER``
hook). So the agent keeps two chains of its own, hooked first in each:

- ``CORRAL-ISOLATION`` (from ``INPUT``): from the bridge to this host's tcp port P, rejected;
- ``CORRAL-ISOLATION-FWD`` (from ``DOCKER-USER``): from the bridge to a remote master's address:port,
  rejected.

Rules are keyed by port (and address), added only when missing, and never removed by an agent: several
agents on one host share the chains, and a rule another agent needs must stay. A stale rule only stops
containers from reaching a port nobody serves any more.

``endpoints`` and ``rules`` are pure; ``install`` and ``remove`` are the thin calls to ``iptables``.
Only IPv4 is handled (Docker's bridge is IPv4 unless IPv6 is turned on in the daemon).
"""

from __future__ import annotations

import ipaddress
import socket
import subprocess
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

INPUT_CHAIN = "CORRAL-ISOLATION"
FORWARD_CHAIN = "CORRAL-ISOLATION-FWD"
HOOKS = (("INPUT", INPUT_CHAIN), ("DOCKER-USER", FORWARD_CHAIN))  # (Docker's or the kernel's, ours)
IPTABLES = "iptables"

Resolve = Callable[[str], list[str]]  # a host name to its IPv4 addresses
IsLocal = Callable[[str], bool]  # is this IPv4 address one of this host's own?
Run = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


class FirewallError(Exception):
    """The rules could not be worked out or installed."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A tcp port task containers must not reach: on this host (``address`` None) or on another."""

    port: int
    what: str  # "master", "agent metrics": shown in the rule's comment
    address: str | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    chain: str
    spec: tuple[str, ...]  # iptables match and target, after ``-A <chain>``
    what: str = ""  # what it closes, for people: also the rule's comment in iptables


def endpoints(
    master_urls: Iterable[str], local_ports: Iterable[tuple[int, str]], resolve: Resolve, is_local: IsLocal
) -> list[Endpoint]:
    """The endpoints to close, purely computed: each master on this host is closed by port, a master
    elsewhere by address and port; ``local_ports`` (the agent's own, e.g. metrics) by port."""
    found: list[Endpoint] = []
    for url in master_urls:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        try:
            port = parts.port or (443 if parts.scheme in ("https", "wss") else 80)
        except ValueError as e:
            raise FirewallError(f"bad master URL {url!r}: {e}") from e
        if not parts.hostname:
            raise FirewallError(f"bad master URL {url!r}: no host")
        addresses = resolve(parts.hostname)
        if not addresses:
            raise FirewallError(f"master host {parts.hostname!r} has no IPv4 address")
        for address in addresses:
            local = is_local(address)
            found.append(Endpoint(port, "master", None if local else address))
    found.extend(Endpoint(port, what) for port, what in local_ports if port)
    unique: dict[tuple[int, str | None], Endpoint] = {}
    for endpoint in found:
        unique.setdefault((endpoint.port, endpoint.address), endpoint)
    return list(unique.values())


def rules(closed: Iterable[Endpoint], bridges: Sequence[str]) -> list[Rule]:
    """One reject rule per (bridge, endpoint): a tcp reset, so a client fails at once, not after a timeout."""
    out: list[Rule] = []
    for e in closed:
        for bridge in bridges:
            match = ["-i", bridge, "-p", "tcp"]
            if e.address is not None:
                match += ["-d", f"{e.address}/32"]
            match += ["--dport", str(e.port)]
            comment = f"corral: {e.what} {e.address or 'this host'}:{e.port}"
            chain = INPUT_CHAIN if e.address is None else FORWARD_CHAIN
            spec = (*match, "-m", "comment", "--comment", comment, "-j", "REJECT")
            out.append(Rule(chain, (*spec, "--reject-with", "tcp-reset"), comment))
    return out


# -- the thin part: iptables ---------------------------------------------------------------------


def _run(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    try:
        # -w: wait for the xtables lock (Docker and other agents change rules too)
        return subprocess.run([IPTABLES, "-w", *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise FirewallError(f"cannot run {IPTABLES}: {e}") from e


def _must(run: Run, args: Sequence[str]) -> None:
    done = run(args)
    if done.returncode != 0:
        raise FirewallError(f"{IPTABLES} {' '.join(args)}: {(done.stderr or done.stdout).strip()}")


def _ensure_chain(run: Run, chain: str) -> None:
    if run(["-S", chain]).returncode != 0 and run(["-N", chain]).returncode != 0:
        _must(run, ["-S", chain])  # created meanwhile by another agent, or a real error


def install(wanted: Sequence[Rule], run: Run = _run) -> list[Rule]:
    """Add the rules that are missing (and the chains and hooks they need); the ones added."""
    if not wanted:
        return []
    added = []
    chains = {r.chain for r in wanted}
    for parent, chain in HOOKS:
        if chain not in chains:
            continue
        listed = run(["-S", parent])
        if listed.returncode != 0:
            raise FirewallError(
                f"cannot read chain {parent} ({(listed.stderr or listed.stdout).strip()}): "
                "is the agent root, and dockerd running with its iptables rules on?"
            )
        _ensure_chain(run, chain)
        if run(["-C", parent, "-j", chain]).returncode != 0:
            _must(run, ["-I", parent, "1", "-j", chain])
    for rule in wanted:
        if run(["-C", rule.chain, *rule.spec]).returncode != 0:
            _must(run, ["-A", rule.chain, *rule.spec])
            added.append(rule)
    return added


def remove(unwanted: Iterable[Rule], run: Run = _run) -> None:
    """Delete these rules where present (tests, or an operator closing down a host; agents never do)."""
    for rule in unwanted:
        while run(["-C", rule.chain, *rule.spec]).returncode == 0:
            _must(run, ["-D", rule.chain, *rule.spec])


def resolve_ipv4(host: str) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, None, socket.AF_INET, socket.SOCK_STREAM)
    except OSError as e:
        raise FirewallError(f"cannot resolve master host {host!r}: {e}") from e
    return sorted({str(info[4][0]) for info in infos})


def is_local_ipv4(address: str) -> bool:
    """An address is this host's own if a socket can bind to it (loopback and 0.0.0.0 included)."""
    ip = ipaddress.ip_address(address)
    if ip.is_loopback or ip.is_unspecified:
        return True
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((address, 0))
        except OSError:
            return False
    return True


def isolate(
    master_urls: Sequence[str], local_ports: Sequence[tuple[int, str]], bridges: Sequence[str]
) -> list[Rule]:
    """Close the masters and ``local_ports`` to containers on ``bridges``; the rules now in force."""
    wanted = rules(endpoints(master_urls, local_ports, resolve_ipv4, is_local_ipv4), bridges)
    install(wanted)
    return wanted
