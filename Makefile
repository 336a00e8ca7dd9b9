# The README's quick start: `make demo` and `make test`. Both create the virtual
# environment and install what they need on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SAMPLE ?= $(abspath ../shared/data/udacity)
export SPARKIFY_SAMPLE_DATA ?= $(if $(wildcard $(SAMPLE)/song_data),$(SAMPLE),)

.PHONY: demo test lint format bench bench-smoke bench-large clean

$(BIN)/sparkify: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	@touch $@

demo: $(BIN)/sparkify ## generate a sample, load it into sparkify.duckdb, show answers
	$(BIN)/sparkify demo

test: $(BIN)/sparkify ## the whole test suite (starts its own PostgreSQL and S3 servers)
	$(BIN)/pytest -q

lint: $(BIN)/sparkify ## ruff (lint + format check) and mypy (src, and benchmarks against its API)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples
	$(BIN)/mypy src benchmarks

format: $(BIN)/sparkify
	$(BIN)/ruff check --fix src tests benchmarks examples
	$(BIN)/ruff format src tests benchmarks examples

bench: $(BIN)/sparkify ## benchmarks at 100k and 1M events (figures in docs/performance.md)
	$(BIN)/python benchmarks/run.py --scales small,medium

bench-large: $(BIN)/sparkify ## adds the 10M-event scale (long)
	$(BIN)/python benchmarks/run.py --scales small,medium,large

bench-smoke: $(BIN)/sparkify ## a tiny scale, seconds: keeps the benchmark from rotting
	$(BIN)/python benchmarks/run.py --scales tiny

clean:
	rm -rf $(VENV) sample sparkify.duckdb report.html .pytest_cache .ruff_cache .mypy_cache
