"""Test-wide set-up: the credentials every test master seeds are what the CLI and agents present."""

from __future__ import annotations

import os

from tests.support.cluster import ADMIN_TOKEN, AGENT_TOKEN

os.environ.setdefault("CORRAL_TOKEN", ADMIN_TOKEN)
os.environ.setdefault("CORRAL_AGENT_TOKEN", AGENT_TOKEN)
