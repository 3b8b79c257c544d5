# The two commands of the README: `make demo` and `make test`. Both build their environments
# from nothing (`make test`: .venv, and .venv-prefect for Prefect, which Airflow excludes).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: help demo test test-main test-prefect lint format unasync bench bench-smoke install clean

help:
	@echo "make demo   - install and run the zero-config demo against the built-in emulator"
	@echo "make test   - install every extra (Airflow, Dagster; Prefect in .venv-prefect), lint,"
	@echo "              and run the whole suite in both environments"
	@echo "make lint   - ruff check, ruff format --check, mypy --strict (both environments),"
	@echo "              the generated sync client"
	@echo "make unasync - regenerate the sync client from the async one"
	@echo "make bench  - run the benchmark suite and print its table"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Runtime install (+ parquet) for the demo.
$(VENV)/.stamp-demo: pyproject.toml | $(BIN)/python
	$(PIP) install -e '.[parquet]'
	@touch $@

# Everything but Prefect: Airflow (with the OpenLineage provider), Dagster, pyarrow and
# the dev tools.
$(VENV)/.stamp-test: pyproject.toml | $(BIN)/python
	$(PIP) install -e '.[airflow,openlineage,dagster,parquet,dev]'
	@touch $@ $(VENV)/.stamp-demo

# Prefect 3 and Airflow 3 cannot share an environment (their fastapi pins conflict), so
# Prefect gets its own, built here; its tests (tests/prefect) and type check run in it.
PREFECT_VENV := .venv-prefect
PBIN := $(PREFECT_VENV)/bin
$(PREFECT_VENV)/.stamp: pyproject.toml
	$(PYTHON) -m venv $(PREFECT_VENV)
	$(PBIN)/python -m pip --disable-pip-version-check -q install -e '.[prefect,parquet,dev]'
	@touch $@

install: $(VENV)/.stamp-test $(PREFECT_VENV)/.stamp

demo: $(VENV)/.stamp-demo
	$(BIN)/timbal-runs demo

# The sync client is generated from the async one: lint fails when it is stale.
lint: $(VENV)/.stamp-test $(PREFECT_VENV)/.stamp
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(PBIN)/mypy -p prefect_timbal
	$(BIN)/python scripts/unasync.py --check

unasync: $(VENV)/.stamp-test
	$(BIN)/python scripts/unasync.py

format: $(VENV)/.stamp-test
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Two shares, both required: .venv runs everything but tests/prefect, .venv-prefect runs
# tests/prefect. TIMBAL_REQUIRE_* makes a skipped test of that framework a failure, and a
# share that runs no test fails too (see tests/conftest.py).
test: lint test-main test-prefect

test-main: $(VENV)/.stamp-test
	TIMBAL_REQUIRE_AIRFLOW=1 TIMBAL_REQUIRE_DAGSTER=1 $(BIN)/python -m pytest

test-prefect: $(PREFECT_VENV)/.stamp
	TIMBAL_REQUIRE_PREFECT=1 $(PBIN)/python -m pytest tests/prefect

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
	rm -rf $(VENV) $(PREFECT_VENV) $(BENCH) build dist .mypy_cache .pytest_cache .ruff_cache timbal-demo
