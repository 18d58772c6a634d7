# AEO Hub: `make run` starts the hub, `make test` runs every check. Both set themselves up.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test bench lint venv clean browser-deps

# Browser tests (tests/web): Debian's Chromium and axe-core from the npm registry (pinned).
CHROMIUM := /usr/bin/chromium
AXE_VERSION := 4.10.3
AXE_STAMP := tests/web/node/node_modules/.axe-core-$(AXE_VERSION)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel

$(STAMP): $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/aeohub demo

lint: $(STAMP)
	$(BIN)/ruff check hub connectors config tests
	$(BIN)/mypy --strict hub connectors config
	$(BIN)/mypy tests
	$(BIN)/lint-imports

# pytest-xdist spreads the suite over the cores: each worker creates its own databases
# (uuid-named), servers bind ephemeral loopback ports, and worksteal evens out the long
# process tests.
test: $(STAMP) lint browser-deps
	AEOHUB_WITH_BENCHMARKS=1 $(BIN)/pytest tests -n auto --dist worksteal

bench: $(STAMP)
	AEOHUB_WITH_BENCHMARKS=1 AEOHUB_BENCH_SCALE=full $(BIN)/pytest tests/benchmarks -s

browser-deps: $(AXE_STAMP)
	@if [ ! -x $(CHROMIUM) ]; then \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y chromium; \
	fi

$(AXE_STAMP):
	npm install --prefix tests/web/node --no-save --no-package-lock --no-audit --no-fund \
	  axe-core@$(AXE_VERSION)
	@touch $@

clean:
	rm -rf $(VENV) instance build *.egg-info
