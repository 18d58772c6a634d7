# AEO Hub: `make run` starts the hub, `make test` runs every check. Both set themselves up.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test bench lint venv clean

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
	$(BIN)/mypy hub connectors config

test: $(STAMP) lint
	$(BIN)/pytest tests tests/benchmarks

bench: $(STAMP)
	AEOHUB_BENCH_SCALE=full $(BIN)/pytest tests/benchmarks -s -p no:randomly

clean:
	rm -rf $(VENV) instance build *.egg-info
