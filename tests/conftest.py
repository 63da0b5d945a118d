"""Test-wide set-up: the credentials every test master seeds are what the CLI and agents present,
Hypothesis without its clock checks, and which tests may not run beside each other."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from tests.support.cluster import ADMIN_TOKEN, AGENT_TOKEN

os.environ.setdefault("CORRAL_TOKEN", ADMIN_TOKEN)
os.environ.setdefault("CORRAL_AGENT_TOKEN", AGENT_TOKEN)

# Hypothesis times each example (a 200 ms deadline) and how long generating data takes (too_slow): on a
# loaded machine both fail tests whose properties hold. The properties are what is tested, not the pace;
# a test that sets its own settings inherits this profile for everything it does not set.
settings.register_profile("corral", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("corral")

# Tests that share one machine-wide thing — the Docker Engine (containers found by label, images, the
# registry), the host's firewall rules, Chromium — run one at a time on one worker (``make test`` runs
# ``pytest -n 2 --dist loadgroup``); other modules run beside each other, each with its own masters,
# ports, data dirs and schemas.
EXCLUSIVE = (
    "tests/e2e/",
    "tests/bench/test_launch_bench.py",
    "tests/agent/test_docker_spec.py",
    "tests/agent/test_cgroups.py",
    "tests/agent/test_firewall.py",
)


@pytest.hookimpl(tryfirst=True)  # before xdist's own, which reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Each module's tests stay together on one worker, in order (several share a module's master and
    build on each other's traces); the machine-wide ones all on one."""
    if not config.pluginmanager.hasplugin("xdist"):
        return
    root = str(config.rootpath) + "/"
    for item in items:
        path = str(item.path).removeprefix(root)
        item.add_marker(pytest.mark.xdist_group("machine-wide" if path.startswith(EXCLUSIVE) else path))
