"""Test-wide set-up: the credentials every test master seeds are what the CLI and agents present, and
Hypothesis without its clock checks."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

from tests.support.cluster import ADMIN_TOKEN, AGENT_TOKEN

os.environ.setdefault("CORRAL_TOKEN", ADMIN_TOKEN)
os.environ.setdefault("CORRAL_AGENT_TOKEN", AGENT_TOKEN)

# Hypothesis times each example (a 200 ms deadline) and how long generating data takes (too_slow): on a
# loaded machine both fail tests whose properties hold. The properties are what is tested, not the pace;
# a test that sets its own settings inherits this profile for everything it does not set.
settings.register_profile("corral", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("corral")
