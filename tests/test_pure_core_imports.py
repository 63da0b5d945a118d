"""The pure core (domain, jobs, scheduler, fleet) imports no clock, randomness, I/O or network.

Complements the import-linter contracts in pyproject.toml: this check also sees ``__import__`` calls and
covers the standard library modules the contracts do not list (os, socket, threading, ...).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "corral"
PURE = ("domain", "jobs", "scheduler", "fleet", "disruption")
# Disruption windows are local hours in a time zone: zoneinfo works on datetime values. The package may
# import datetime to do arithmetic on the ``now`` it is given, never to read the clock (checked below).
ALLOWED = {"disruption": frozenset({"datetime"})}
CLOCK_READS = ("datetime.now(", "datetime.utcnow(", "date.today(", ".today(", "time.time(")
FORBIDDEN = frozenset(
    {
        "asyncio",
        "time",
        "random",
        "secrets",
        "datetime",
        "sqlalchemy",
        "socket",
        "threading",
        "multiprocessing",
        "os",
        "subprocess",
        "docker",
        "httpx",
        "websockets",
        "fastapi",
        "starlette",
        "uvicorn",
        "psycopg",
        "psycopg2",
        "prometheus_client",
    }
)


def imported_modules(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "__import__":
            names.update(str(a.value) for a in node.args[:1] if isinstance(a, ast.Constant))
    return names


def violations(source: str) -> list[str]:
    return sorted(m for m in imported_modules(ast.parse(source)) if m.split(".")[0] in FORBIDDEN)


MODULES = sorted(p for package in PURE for p in (SRC / package).rglob("*.py"))


def test_the_pure_core_is_where_we_think() -> None:
    assert {p.parent.name for p in MODULES} >= set(PURE)
    assert len(MODULES) >= 20


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_module_imports_nothing_impure(path: Path) -> None:
    package = path.relative_to(SRC).parts[0]
    source = path.read_text()
    allowed = ALLOWED.get(package, frozenset())
    assert [m for m in violations(source) if m.split(".")[0] not in allowed] == []
    assert [r for r in CLOCK_READS if r in source] == []


@pytest.mark.parametrize(
    "source",
    [
        "import time",
        "import os.path",
        "from datetime import datetime",
        "from asyncio import sleep",
        "import sqlalchemy.orm as orm",
        "def f():\n    import random\n",
        "__import__('socket')",
        "import psycopg",
        "from prometheus_client import Counter",
    ],
)
def test_the_check_catches_impure_imports(source: str) -> None:
    assert violations(source) != []


def test_the_check_allows_pure_imports() -> None:
    assert violations("import math\nfrom dataclasses import replace\nfrom corral.domain import job\n") == []
