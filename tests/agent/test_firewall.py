"""Which rules keep task containers off the control ports (pure), and how they reach iptables (faked)."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

import pytest

from corral.agent.firewall import (
    FORWARD_CHAIN,
    INPUT_CHAIN,
    Endpoint,
    FirewallError,
    Rule,
    endpoints,
    install,
    remove,
    rules,
)

HOSTS = {"master.local": ["192.0.2.2"], "master.remote": ["198.51.100.7"], "localhost": ["127.0.0.1"]}


def resolve(host: str) -> list[str]:
    return HOSTS.get(host, [host])


def is_local(address: str) -> bool:
    return address in ("127.0.0.1", "192.0.2.2")


def test_a_master_here_is_closed_by_port_one_elsewhere_by_address_and_port() -> None:
    found = endpoints(
        ["http://master.local:8080", "https://master.remote", "localhost:9000"],
        [(9101, "agent metrics"), (0, "off")],
        resolve,
        is_local,
    )
    assert found == [
        Endpoint(8080, "master"),
        Endpoint(443, "master", "198.51.100.7"),
        Endpoint(9000, "master"),
        Endpoint(9101, "agent metrics"),
    ]


def test_the_same_port_twice_is_one_endpoint() -> None:
    found = endpoints(["http://127.0.0.1:8080", "http://master.local:8080"], [(8080, "x")], resolve, is_local)
    assert found == [Endpoint(8080, "master")]


@pytest.mark.parametrize("url", ["http://:80", "http://h:notaport"])
def test_a_bad_master_url_is_an_error(url: str) -> None:
    with pytest.raises(FirewallError):
        endpoints([url], [], resolve, is_local)


def test_a_master_without_an_address_is_an_error() -> None:
    with pytest.raises(FirewallError, match="no IPv4"):
        endpoints(["http://nowhere:1"], [], lambda _h: [], is_local)


def test_rules_reject_from_the_bridge_only() -> None:
    here, remote = rules([Endpoint(8080, "master"), Endpoint(443, "master", "198.51.100.7")], ["docker0"])
    assert here.chain == INPUT_CHAIN
    assert here.spec[:6] == ("-i", "docker0", "-p", "tcp", "--dport", "8080")
    assert here.spec[-4:] == ("-j", "REJECT", "--reject-with", "tcp-reset")
    assert "-d" not in here.spec  # every address of this host: the gateway and the others alike
    assert remote.chain == FORWARD_CHAIN
    assert remote.spec[:8] == ("-i", "docker0", "-p", "tcp", "-d", "198.51.100.7/32", "--dport", "443")
    assert remote.what == "corral: master 198.51.100.7:443"


class FakeIptables:
    """iptables as a dict of chains; answers -S, -N, -C, -A, -I, -D like the real one."""

    def __init__(self, chains: Sequence[str] = ("INPUT", "DOCKER-USER")) -> None:
        self.chains: dict[str, list[tuple[str, ...]]] = {c: [] for c in chains}
        self.calls: list[tuple[str, ...]] = []

    def __call__(self, args: Sequence[str]) -> subprocess.CompletedProcess[str]:
        self.calls.append(tuple(args))
        op, chain, *rest = args
        ok = True
        rules = self.chains.get(chain)
        if op == "-S":
            ok = rules is not None
        elif op == "-N":
            ok = rules is None
            self.chains.setdefault(chain, [])
        elif rules is None:
            ok = False
        elif op == "-C":
            ok = tuple(rest) in rules
        elif op == "-A":
            rules.append(tuple(rest))
        elif op == "-I":
            rules.insert(int(rest[0]) - 1, tuple(rest[1:]))
        elif op == "-D":
            rules.remove(tuple(rest))
        return subprocess.CompletedProcess(list(args), 0 if ok else 1, "", "" if ok else "no such thing")


WANTED = rules([Endpoint(8080, "master"), Endpoint(443, "master", "198.51.100.7")], ["docker0"])


def test_install_creates_chains_hooks_them_first_and_is_idempotent() -> None:
    ipt = FakeIptables()
    ipt.chains["INPUT"].append(("-j", "SOMETHING"))
    assert install(WANTED, ipt) == WANTED
    assert ipt.chains["INPUT"][0] == ("-j", INPUT_CHAIN)
    assert ipt.chains["DOCKER-USER"][0] == ("-j", FORWARD_CHAIN)
    assert ipt.chains[INPUT_CHAIN] == [WANTED[0].spec] and ipt.chains[FORWARD_CHAIN] == [WANTED[1].spec]
    before = {c: list(r) for c, r in ipt.chains.items()}
    assert install(WANTED, ipt) == []  # a second agent on this host: nothing added twice
    assert ipt.chains == before


def test_rules_another_agent_added_are_kept() -> None:
    ipt = FakeIptables()
    other = rules([Endpoint(9000, "master")], ["docker0"])
    install(other, ipt)
    install(WANTED, ipt)
    assert ipt.chains[INPUT_CHAIN] == [other[0].spec, WANTED[0].spec]
    remove(WANTED, ipt)
    assert ipt.chains[INPUT_CHAIN] == [other[0].spec] and ipt.chains[FORWARD_CHAIN] == []


def test_without_dockers_chain_it_refuses() -> None:
    with pytest.raises(FirewallError, match="DOCKER-USER"):
        install(WANTED, FakeIptables(chains=("INPUT",)))


def test_a_failing_iptables_is_an_error() -> None:
    def broken(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(list(args), 4, "", "Permission denied (you must be root)")

    with pytest.raises(FirewallError, match="Permission denied"):
        install([Rule(INPUT_CHAIN, ("-j", "REJECT"))], broken)
    assert install([], broken) == []  # nothing to close: nothing asked of iptables


def test_a_docker_agent_without_iptables_does_not_start(monkeypatch: pytest.MonkeyPatch) -> None:
    import typer

    from corral.agent import firewall
    from corral.cli import servers

    monkeypatch.setattr(firewall, "IPTABLES", "/nonexistent/iptables")
    with pytest.raises(typer.Exit) as refused:
        servers.isolate_or_exit("docker", "http://127.0.0.1:8080", 9101, enabled=True)
    assert refused.value.exit_code == 3
    servers.isolate_or_exit("docker", "http://127.0.0.1:8080", 9101, enabled=False)  # --no-port-isolation
    servers.isolate_or_exit("sim", "http://127.0.0.1:8080", 9101, enabled=True)  # no containers, no rules
