# The two commands: `make run` starts a local Corral and shows example jobs running; `make test` runs
# every check. Both install what they need first (scripts/setup.sh).
SHELL := /bin/bash
VENV ?= .venv
STAMP := $(VENV)/.installed

.PHONY: run test setup stop lint types layers unit integration bench clean

$(STAMP): pyproject.toml scripts/setup.sh
	@scripts/setup.sh

setup: $(STAMP)

run: setup
	@scripts/run.sh

stop: setup
	@scripts/stop.sh

test: setup
	@scripts/test.sh

lint: setup
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

types: setup
	$(VENV)/bin/mypy --strict src

layers: setup
	$(VENV)/bin/lint-imports

unit: setup
	$(VENV)/bin/pytest -q -m "not integration"

integration: setup
	$(VENV)/bin/pytest -q -m integration

bench: setup
	$(VENV)/bin/python bench/control_plane.py

clean:
	rm -rf $(VENV) .corral .mypy_cache .pytest_cache .ruff_cache .hypothesis
