# The two commands of the README: `make demo` and `make test`. Both build .venv from nothing.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: help demo test lint format unasync bench bench-smoke install clean

help:
	@echo "make demo   - install and run the zero-config demo against the built-in emulator"
	@echo "make test   - install every extra (Airflow included), lint, and run the whole suite"
	@echo "make lint   - ruff check, ruff format --check, mypy --strict, the generated sync client"
	@echo "make bench  - run the benchmark suite and print its table"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Runtime install (+ parquet) for the demo.
$(VENV)/.stamp-demo: pyproject.toml | $(BIN)/python
	$(PIP) install -e '.[parquet]'
	@touch $@

# Everything: Airflow (with the OpenLineage provider), pyarrow and the dev tools.
$(VENV)/.stamp-test: pyproject.toml | $(BIN)/python
	$(PIP) install -e '.[airflow,openlineage,parquet,dev]'
	@touch $@ $(VENV)/.stamp-demo

install: $(VENV)/.stamp-test

demo: $(VENV)/.stamp-demo
	$(BIN)/timbal-runs demo

# The sync client is generated from the async one: lint fails when it is stale.
lint: $(VENV)/.stamp-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python scripts/unasync.py --check

unasync: $(VENV)/.stamp-test
	$(BIN)/python scripts/unasync.py

format: $(VENV)/.stamp-test
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# TIMBAL_REQUIRE_AIRFLOW makes a skipped Airflow test a failure (see tests/conftest.py).
test: lint
	TIMBAL_REQUIRE_AIRFLOW=1 $(BIN)/python -m pytest

# The benchmark environment is separate: dlt (the comparison) never enters .venv.
BENCH := .venv-bench
$(BENCH)/.stamp: pyproject.toml
	$(PYTHON) -m venv $(BENCH)
	$(BENCH)/bin/python -m pip --disable-pip-version-check -q install -e '.[parquet,dev]' 'dlt[filesystem]>=1.0'
	@touch $@

bench: $(BENCH)/.stamp
	$(BENCH)/bin/python -m benchmarks

bench-smoke: $(VENV)/.stamp-test
	$(BIN)/python -m benchmarks --smoke

clean:
	rm -rf $(VENV) $(BENCH) build dist .mypy_cache .pytest_cache .ruff_cache timbal-demo
